// Package redisopt holds the security settings of shardns's Redis clients
// (the cache shards, a Redis Cluster, the work queue's Redis): the ACL
// user, the password and TLS. It defines their flags once for every
// daemon, reads the password from a file or the environment (never from
// the command line), and checks at start that each server takes them.
package redisopt

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The environment variables that hold passwords. There is no password
// flag, so that a password is never on a command line (ps, shell history,
// unit files).
const (
	PasswordEnv      = "SHARDNS_REDIS_PASSWORD"
	QueuePasswordEnv = "SHARDNS_QUEUE_REDIS_PASSWORD"
)

// maxSecretFile bounds a password file: a password is short, and a large
// file was named by mistake.
const maxSecretFile = 64 << 10

// Auth is how one Redis client logs in and protects its connections. The
// zero value is a plain connection as the default user without password.
type Auth struct {
	// User is the ACL user ("": the default user).
	User string
	// Password is User's password ("": none).
	Password string
	// TLS is the client's TLS configuration (nil: plain TCP). It names no
	// server: each connection verifies the host of the address it dials.
	TLS *tls.Config

	// flag is the prefix of the flags these came from ("redis",
	// "queue-redis"), for the hints in Check's reasons; "" for none.
	flag string
}

// Apply sets opt's user, password and TLS to a's, each only when a has
// one, so that a redis:// or rediss:// URL's own are kept otherwise.
func (a Auth) Apply(opt *redis.Options) {
	if a.User != "" {
		opt.Username = a.User
	}
	if a.Password != "" {
		opt.Password = a.Password
	}
	if a.TLS != nil {
		opt.TLSConfig = a.TLS
	}
}

// Flags are the security flags of the cache's Redis and the queue's. A
// queue flag left unset (neither on the command line nor in its SHARDNS_
// variable) takes the cache flag's value.
type Flags struct {
	User         string
	PasswordFile string
	TLS          bool
	TLSCA        string

	QueueUser         String
	QueuePasswordFile String
	QueueTLS          Bool
	QueueTLSCA        String

	// Getenv reads the password variables (nil: os.Getenv).
	Getenv func(string) string
}

// Register defines the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.User, "redis-user", "", "ACL user the cache shards (and Cluster nodes) are logged in as; needs a password; empty: the default user")
	fs.StringVar(&f.PasswordFile, "redis-password-file", "", "file holding the cache shards' password (one trailing newline is trimmed); or put the password itself in $"+PasswordEnv+" (setting both is an error)")
	fs.BoolVar(&f.TLS, "redis-tls", false, "connect to the cache shards over TLS (1.2 or later), verifying their certificates")
	fs.StringVar(&f.TLSCA, "redis-tls-ca", "", "PEM file of the CA certificates the shards' certificates are checked against (with -redis-tls); empty: the system's roots")
	fs.Var(&f.QueueUser, "queue-redis-user", "ACL `user` of the queue's Redis (unset: -redis-user's)")
	fs.Var(&f.QueuePasswordFile, "queue-redis-password-file", "`file` holding the queue's Redis password; or $"+QueuePasswordEnv+" (setting both is an error); neither: the cache shards' password")
	fs.Var(&f.QueueTLS, "queue-redis-tls", "connect to the queue's Redis over TLS (unset: -redis-tls's)")
	fs.Var(&f.QueueTLSCA, "queue-redis-tls-ca", "PEM `file` of the CA certificates for the queue's Redis (unset: -redis-tls-ca's)")
}

// Load reads the password files, the password variables and the CA files
// the flags name, and returns the settings of the cache's clients and of
// the queue's. Any setting that cannot be used is an error: an unreadable
// or empty file, a password given both ways, a user without a password, a
// CA without TLS.
func (f *Flags) Load() (cache, queue Auth, err error) {
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	cache.flag, queue.flag = "redis", "queue-redis"
	cache.User = f.User
	if cache.Password, err = password("-redis-password-file", f.PasswordFile, PasswordEnv, getenv); err != nil {
		return Auth{}, Auth{}, err
	}
	if cache.User != "" && cache.Password == "" {
		return Auth{}, Auth{}, fmt.Errorf("redisopt: -redis-user %s needs a password: -redis-password-file or %s", cache.User, PasswordEnv)
	}
	if f.TLSCA != "" && !f.TLS {
		return Auth{}, Auth{}, errors.New("redisopt: -redis-tls-ca is set without -redis-tls")
	}
	var pools poolCache
	if f.TLS {
		if cache.TLS, err = pools.config("-redis-tls-ca", f.TLSCA); err != nil {
			return Auth{}, Auth{}, err
		}
	}

	queue.User = f.User
	if f.QueueUser.Given {
		queue.User = f.QueueUser.Value
	}
	queue.Password = cache.Password
	if own, err := password("-queue-redis-password-file", f.QueuePasswordFile.Value, QueuePasswordEnv, getenv); err != nil {
		return Auth{}, Auth{}, err
	} else if own != "" {
		queue.Password = own
	}
	if queue.User != "" && queue.Password == "" {
		return Auth{}, Auth{}, fmt.Errorf("redisopt: -queue-redis-user %s needs a password: -queue-redis-password-file or %s", queue.User, QueuePasswordEnv)
	}
	useTLS, ca := f.TLS, f.TLSCA
	if f.QueueTLS.Given {
		useTLS = f.QueueTLS.Value
	}
	if f.QueueTLSCA.Given {
		if f.QueueTLSCA.Value != "" && !useTLS {
			return Auth{}, Auth{}, errors.New("redisopt: -queue-redis-tls-ca is set but the queue's Redis is not reached over TLS (-queue-redis-tls)")
		}
		ca = f.QueueTLSCA.Value
	}
	if useTLS {
		if queue.TLS, err = pools.config("-queue-redis-tls-ca", ca); err != nil {
			return Auth{}, Auth{}, err
		}
	}
	return cache, queue, nil
}

// password is the password from the file named by flagName (path) or from
// the variable env: "" when neither is set, an error when both are.
func password(flagName, path, env string, getenv func(string) string) (string, error) {
	fromEnv := getenv(env)
	switch {
	case path != "" && fromEnv != "":
		return "", fmt.Errorf("redisopt: both %s and %s are set: give the password one way", flagName, env)
	case fromEnv != "":
		return fromEnv, nil
	case path == "":
		return "", nil
	}
	b, err := readSmall(path)
	if err != nil {
		return "", fmt.Errorf("redisopt: %s: %w", flagName, err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", fmt.Errorf("redisopt: %s: %s is empty", flagName, path)
	}
	return string(b), nil
}

// readSmall reads a file of at most maxSecretFile bytes.
func readSmall(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s is over %d bytes", path, maxSecretFile)
	}
	return b, nil
}

// poolCache reads each CA file once.
type poolCache map[string]*x509.CertPool

// config returns a client TLS configuration, TLS 1.2 at least, trusting
// the certificates in the PEM file path ("": the system's roots).
func (p *poolCache) config(flagName, path string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if path == "" {
		return cfg, nil
	}
	if *p == nil {
		*p = poolCache{}
	}
	if pool, ok := (*p)[path]; ok {
		cfg.RootCAs = pool
		return cfg, nil
	}
	b, err := readSmall(path)
	if err != nil {
		return nil, fmt.Errorf("redisopt: %s: %w", flagName, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("redisopt: %s: no PEM certificate in %s", flagName, path)
	}
	(*p)[path] = pool
	cfg.RootCAs = pool
	return cfg, nil
}

// String is a string flag that knows whether it was set.
type String struct {
	Value string
	Given bool
}

// String returns the value (flag.Value).
func (s *String) String() string {
	if s == nil {
		return ""
	}
	return s.Value
}

// Set sets the value and marks it set (flag.Value). An empty value set
// explicitly is kept: e.g. -queue-redis-user= is the default user even
// when -redis-user names another.
func (s *String) Set(v string) error {
	s.Value, s.Given = v, true
	return nil
}

// Bool is a boolean flag that knows whether it was set.
type Bool struct {
	Value bool
	Given bool
}

// String returns the value (flag.Value).
func (b *Bool) String() string {
	if b == nil {
		return "false"
	}
	return strconv.FormatBool(b.Value)
}

// Set parses the value and marks it set (flag.Value).
func (b *Bool) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	b.Value, b.Given = x, true
	return nil
}

// IsBoolFlag lets the flag be given without a value (-queue-redis-tls).
func (b *Bool) IsBoolFlag() bool { return true }
