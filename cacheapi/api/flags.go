package api

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/shardns/shardns/cacheapi/token"
	"github.com/shardns/shardns/internal/config"
)

// DefaultRate is -http-rate's default: requests per second one client may
// make to /lookup and /dns-query. A browser or stub resolver using the API
// as its DoH server asks a few names per second, and a page load a burst
// of some tens; 50 per second (a bucket of 50) lets that through and caps
// one client at what dnsdist's common MaxQPSIPRule(50) allows over UDP.
const DefaultRate = 50

// Flags are the REST API's access flags, the same on cacheapi and on
// dnsd -http.
type Flags struct {
	Token     string
	TokenFile string
	Hosts     string
	Rate      float64
}

// Register defines -token, -token-file, -http-host and -http-rate on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Token, "token", "", "bearer token of the REST API: every call that changes state (DELETE /cache/..., POST and DELETE /jobs) and GET /cache/... needs it, from every client; empty: the token of -token-file")
	fs.StringVar(&f.TokenFile, "token-file", token.DefaultFile(), "file holding the REST API's token when -token is empty: read when it holds one, else a random token is made at start and written there (mode 0600)")
	fs.StringVar(&f.Hosts, "http-host", "", "comma list of further names (or addresses) the REST API answers to in the Host header, e.g. a proxy's public name; localhost, loopback addresses and the listen address always are, and on a wildcard listen address (:8080) every IP address; other names get 421 (DNS rebinding)")
	fs.Float64Var(&f.Rate, "http-rate", DefaultRate, "requests per second each client (IPv4 address, IPv6 /64) may make to /lookup and /dns-query, in bursts of as many; 0 turns the limit off")
}

// Check reports a bad flag value.
func (f *Flags) Check() error {
	if f.Rate < 0 {
		return fmt.Errorf("api: -http-rate %v is negative", f.Rate)
	}
	if f.Token != "" {
		if err := token.Check(f.Token); err != nil {
			return fmt.Errorf("api: -token: %w", err)
		}
	}
	return nil
}

// HostList is -http-host as a list.
func (f *Flags) HostList() []string { return config.List(f.Hosts) }

// LoadToken returns -token, else the token -token-file holds, else a new
// one written there. A token file that holds something unusable, or
// cannot be read, is an error. When a new token cannot be written (a
// read-only file system, no home folder) the API still starts, with a
// random token nobody knows: lookups work, calls that need the token are
// refused until the server is given -token or a writable -token-file.
func (f *Flags) LoadToken(log *slog.Logger) (string, error) {
	if f.Token != "" {
		return f.Token, nil
	}
	if f.TokenFile != "" {
		if _, err := token.Read(f.TokenFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("api: -token-file: %w", err)
		}
		tok, err := token.Load(f.TokenFile, log)
		if err == nil {
			return tok, nil
		}
		log.Warn("API token could not be written; calls that need it are refused until -token or a writable -token-file is given",
			"token_file", f.TokenFile, "err", err)
	} else {
		log.Warn("no -token and no -token-file: calls that need the API token are refused")
	}
	return token.New()
}
