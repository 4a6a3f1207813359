package redisopt

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/rawconn"
)

// DialFunc is the shape of go-redis's Options.Dialer.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer returns a go-redis dialer whose connections read and write with
// raw system calls (see rawconn) and, when cfg is set, run TLS over that
// socket, verifying the certificate against the host of the address
// dialed. The TCP connect and the TLS handshake are each bounded by
// timeout and by ctx.
func Dialer(timeout time.Duration, cfg *tls.Config) DialFunc {
	tcp := rawconn.WrapDial(redis.NewDialer(&redis.Options{DialTimeout: timeout}))
	if cfg == nil {
		return tcp
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := tcp(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, serverConfig(cfg, addr))
		hctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			c.Close()
			return nil, &HandshakeError{Addr: addr, Err: err}
		}
		return tc, nil
	}
}

// HandshakeError is a TLS handshake that failed.
type HandshakeError struct {
	Addr string
	Err  error
}

func (e *HandshakeError) Error() string { return "tls handshake with " + e.Addr + ": " + e.Err.Error() }
func (e *HandshakeError) Unwrap() error { return e.Err }

// serverConfig is cfg naming the host of addr as the server to verify,
// unless cfg names one itself.
func serverConfig(cfg *tls.Config, addr string) *tls.Config {
	if cfg.ServerName != "" {
		return cfg
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}
