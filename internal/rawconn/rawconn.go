// Package rawconn makes a socket's reads and writes as raw system calls,
// which the Go scheduler is not told of.
//
// A call the scheduler is told of (what net.Conn makes) wakes the runtime's
// monitor thread when the process was idle, and, when it lasts a monitor
// tick (20 µs), hands the caller's P to another thread that wakes, finds
// nothing to do and sleeps again. On a quiet server each hop to Redis, to
// resolverd or to an upstream pays those context switches: at 1000 misses
// a second they were a third of dnsd's. The sockets here are non-blocking,
// so a raw call returns at once: with nothing to read or no room to write it
// returns EAGAIN, and the caller waits in the poller as net.Conn does.
// Deadlines, Close and the addresses are the wrapped net.Conn's own.
//
// A wrapped conn does not give out its descriptor (no SyscallConn), so
// go-redis skips its peek at a pooled connection before each use, itself
// a call the scheduler is told of on every pipeline: a connection Redis
// closed (a restart) fails its next command instead and is dropped. After
// a restart of every shard under load the query path saw the same one
// failed read and one failed write per shard either way.
package rawconn

import (
	"context"
	"net"
)

// Wrap returns c reading and writing with raw calls when c is a TCP or UDP
// connection on a system that has them; otherwise c itself.
func Wrap(c net.Conn) net.Conn { return wrap(c) }

// DialFunc is the shape of net.Dialer.DialContext and of go-redis's
// Options.Dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// WrapDial wraps every connection dial returns.
func WrapDial(dial DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return Wrap(c), nil
	}
}

// Listener wraps every connection ln accepts.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
