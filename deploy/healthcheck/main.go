// Command healthcheck probes one shardns daemon from inside its container
// image, which has no shell, curl or grpc_health_probe. It exits 0 when the
// daemon answers and 1 when it does not (Docker reserves 2), which is all
// Docker's HEALTHCHECK and Kubernetes exec probes read:
//
//	healthcheck http http://127.0.0.1:8080/healthz   # a 2xx status (cacheapi, dnsd -http)
//	healthcheck grpc 127.0.0.1:50051 [service]       # grpc.health.v1 says SERVING (resolverd)
//	healthcheck dns 127.0.0.1:5353                   # a DNS reply over UDP and over TCP (dnsd)
//
// -timeout bounds the whole probe (default 2s). A resolverd serving TLS
// is probed with -tls-ca (the CA that verifies it), and with -tls-cert and
// -tls-key under mutual TLS; -tls-server-name is the name to verify when
// it is not the probed host. Any of them turns TLS on.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shardns/shardns/internal/tlsconf"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run probes what args name and returns the exit code.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "bound on the whole probe")
	ca := fs.String("tls-ca", "", "grpc: PEM file of the CA certificates that verify the server; turns TLS on")
	cert := fs.String("tls-cert", "", "grpc: PEM client certificate, for a server with -tls-client-ca (with -tls-key); turns TLS on")
	key := fs.String("tls-key", "", "grpc: PEM private key of -tls-cert")
	serverName := fs.String("tls-server-name", "", "grpc: name the server's certificate must carry, when it is not the probed host; turns TLS on")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 1
	}
	tlsCfg, err := tlsconf.Client(
		tlsconf.File{Flag: "tls-ca", Path: *ca},
		tlsconf.File{Flag: "tls-cert", Path: *cert},
		tlsconf.File{Flag: "tls-key", Path: *key},
		*serverName)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := probe(ctx, fs.Args(), tlsCfg); err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	return 0
}

const usage = "usage: healthcheck [-timeout 2s] http URL | [-tls-ca FILE] [-tls-cert FILE -tls-key FILE] [-tls-server-name NAME] grpc HOST:PORT [SERVICE] | dns HOST:PORT"

// probe runs the probe args name; tlsCfg (nil: plaintext) is gRPC's.
func probe(ctx context.Context, args []string, tlsCfg *tls.Config) error {
	if len(args) < 2 {
		return errors.New(usage)
	}
	mode, target, rest := args[0], args[1], args[2:]
	switch {
	case mode == "http" && len(rest) == 0:
		return probeHTTP(ctx, target)
	case mode == "grpc" && len(rest) <= 1:
		service := ""
		if len(rest) == 1 {
			service = rest[0]
		}
		return probeGRPC(ctx, target, service, tlsCfg)
	case mode == "dns" && len(rest) == 0:
		return probeDNS(ctx, target)
	}
	return errors.New(usage)
}
