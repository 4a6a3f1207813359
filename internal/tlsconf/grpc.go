package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// GRPCClient returns gRPC transport credentials for a client under cfg
// that report a server's refusal of the client (its certificate, or the
// lack of one) as such, where gRPC's own report a broken pipe.
func GRPCClient(cfg *tls.Config) credentials.TransportCredentials {
	return refusalAware{credentials.NewTLS(cfg)}
}

// refusalWait bounds how long a TLS client waits for the server's first
// bytes after the handshake (see refusalAware).
const refusalWait = time.Second

// refusalAware is TLS client credentials. Under TLS 1.3 a server that
// wants a client certificate judges the one shown, or its absence, after
// the client's handshake is over, and a refusal is an alert the client
// learns of only when it reads; gRPC writes first, into a connection the
// server has closed, and reports a broken pipe. So the handshake here waits (up to refusalWait)
// for the server's first bytes, an HTTP/2 server's SETTINGS: a refusal
// fails the handshake with the server's reason ("unknown certificate
// authority", "certificate required"). The bytes read are handed on.
type refusalAware struct {
	credentials.TransportCredentials
}

// ClientHandshake runs the TLS handshake, then waits for the server's first
// bytes when it was TLS 1.3.
func (r refusalAware) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		return nil, nil, err
	}
	if ti, ok := info.(credentials.TLSInfo); !ok || ti.State.Version < tls.VersionTLS13 {
		return conn, info, nil // TLS 1.2 refuses within the handshake
	}
	wait := time.Now().Add(refusalWait)
	if d, ok := ctx.Deadline(); ok && d.Before(wait) {
		wait = d
	}
	if err := conn.SetReadDeadline(wait); err != nil {
		conn.Close()
		return nil, nil, err
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, nil, err
	}
	if ne, ok := err.(net.Error); err != nil && !(ok && ne.Timeout() && n == 0) {
		conn.Close()
		return nil, nil, fmt.Errorf("tls: server refused the connection after the handshake: %w", err)
	}
	// A server slower than refusalWait to speak is not held against it.
	return &prefixConn{Conn: conn, prefix: buf[:n]}, info, nil
}

// Clone copies the credentials.
func (r refusalAware) Clone() credentials.TransportCredentials {
	return refusalAware{r.TransportCredentials.Clone()}
}

// prefixConn reads prefix before what is left on Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// GRPCServer returns gRPC transport credentials for a server under cfg
// that log a refused handshake at Warn (at most one every interval), with
// the client's address and the reason: a client certificate from another
// CA, none, a plaintext client. gRPC itself says nothing at its default
// log level. A connection closed before its first byte (a TCP probe) is
// not logged.
func GRPCServer(cfg *tls.Config, log *slog.Logger, interval time.Duration) credentials.TransportCredentials {
	return &refusalLog{TransportCredentials: credentials.NewTLS(cfg), log: log, interval: interval}
}

type refusalLog struct {
	credentials.TransportCredentials
	log      *slog.Logger
	interval time.Duration
	next     atomic.Int64 // unix nanoseconds before which nothing is logged
}

// ServerHandshake runs the TLS handshake and logs its failure.
func (r *refusalLog) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ServerHandshake(raw)
	if err != nil && !errors.Is(err, io.EOF) {
		now := time.Now().UnixNano()
		if n := r.next.Load(); now >= n && r.next.CompareAndSwap(n, now+int64(r.interval)) {
			r.log.Warn("refused a gRPC client's TLS handshake", "client", raw.RemoteAddr().String(), "err", err)
		}
	}
	return conn, info, err
}

// Clone copies the credentials, with a clock of their own.
func (r *refusalLog) Clone() credentials.TransportCredentials {
	return &refusalLog{TransportCredentials: r.TransportCredentials.Clone(), log: r.log, interval: r.interval}
}
