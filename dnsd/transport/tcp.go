package transport

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// tcpConn is one client connection: a reader that takes queries off the
// stream as they come (pipelining) and hands each to its own goroutine, and
// replies written whole, one at a time, in the order lookups finish.
type tcpConn struct {
	conn *net.TCPConn
	peer Peer
	key  netip.Addr    // the client, as MaxTCPPerClient counts it
	sem  chan struct{} // queries in flight on this connection
	wmu  sync.Mutex
	wg   sync.WaitGroup

	// rw is what queries are read from and replies written to: conn, or
	// a TLS session over it (DoT, RFC 7858).
	rw  net.Conn
	tls *tls.Conn // the session in rw, handshaken first; nil: plain TCP
	// onClose, when set, runs once the connection is closed.
	onClose func()
}

// acceptTCP accepts connections on ln; with tlsCfg they are DoT: each
// carries a TLS session, and TCP's framing inside it.
func (s *Server) acceptTCP(ln *net.TCPListener, tlsCfg *tls.Config) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		conn, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, don't spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("tcp accept", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		peer := addrPort(conn.RemoteAddr())
		if s.cfg.TCPAllow != nil && !s.cfg.TCPAllow.Allowed(peer.Addr()) {
			s.metrics.tcpRejectedACL.Inc()
			refuse(conn)
			continue
		}
		c := &tcpConn{conn: conn, rw: conn, sem: make(chan struct{}, s.cfg.MaxTCPInFlight), key: clientKey(peer.Addr())}
		c.peer = Peer{Addr: peer, TCP: true}
		if tlsCfg != nil {
			c.tls = tls.Server(conn, tlsCfg)
			c.rw = c.tls
			c.peer.Proto = ProtoDoT
		}
		s.mu.Lock()
		stopping := s.stopping.Load() // accepted as Shutdown began
		full := len(s.conns)+s.enc.others >= s.cfg.MaxTCPConns
		over := !full && s.perClient[c.key] >= s.cfg.MaxTCPPerClient
		if !stopping && !over && !full {
			s.conns[c] = struct{}{}
			s.perClient[c.key]++
		}
		s.mu.Unlock()
		switch {
		case stopping:
			conn.Close()
			continue
		case full:
			s.metrics.tcpRejectedFull.Inc()
			refuse(conn)
			continue
		case over:
			s.metrics.tcpRejectedPerClient.Inc()
			refuse(conn)
			continue
		}
		s.metrics.tcpConns.Inc()
		s.wg.Add(1)
		go s.serveTCP(c)
	}
}

// refuse closes a connection the server will not serve, with a reset
// (SO_LINGER 0): the client learns at once, and the server keeps no
// TIME_WAIT entry for a peer that may be opening them by the thousand.
func refuse(conn *net.TCPConn) {
	_ = conn.SetLinger(0)
	conn.Close()
}

// clientKey is what MaxTCPPerClient counts by: the IPv4 address, or the
// IPv6 /64, of a client.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// idleTimeout is the configured idle timeout, cut to one second while more
// than half of the connection slots are taken (RFC 7766 §6.2.3 lets a busy
// server close idle connections sooner).
func (s *Server) idleTimeout() time.Duration {
	s.mu.Lock()
	busy := len(s.conns)+s.enc.others > s.cfg.MaxTCPConns/2
	s.mu.Unlock()
	if busy {
		return min(time.Second, s.cfg.TCPIdleTimeout)
	}
	return s.cfg.TCPIdleTimeout
}

func (s *Server) serveTCP(c *tcpConn) {
	defer func() {
		c.wg.Wait() // replies still being written need the connection
		c.rw.Close()
		s.mu.Lock()
		delete(s.conns, c)
		if s.perClient[c.key]--; s.perClient[c.key] <= 0 {
			delete(s.perClient, c.key)
		}
		s.mu.Unlock()
		s.metrics.tcpConns.Dec()
		if c.onClose != nil {
			c.onClose()
		}
		s.wg.Done()
	}()
	if c.tls != nil && !s.handshake(c) {
		return
	}
	var lenBuf [2]byte
	for !s.stopping.Load() {
		// Wait for the next length prefix; the idle timeout applies only
		// while no query is in flight.
		c.conn.SetReadDeadline(time.Now().Add(s.idleTimeout()))
		if _, err := io.ReadFull(c.rw, lenBuf[:1]); err != nil {
			if isTimeout(err) && len(c.sem) > 0 {
				continue
			}
			return
		}
		c.conn.SetReadDeadline(time.Now().Add(s.cfg.TCPReadTimeout))
		if _, err := io.ReadFull(c.rw, lenBuf[1:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if n < 12 {
			s.metrics.tcpBadLength.Inc()
			return // RFC 7766 §8: a malformed stream cannot be resynchronised
		}
		req := make([]byte, n)
		if _, err := io.ReadFull(c.rw, req); err != nil {
			return
		}
		select {
		case c.sem <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		c.wg.Add(1)
		go s.answerTCP(c, req)
	}
}

func (s *Server) answerTCP(c *tcpConn, req []byte) {
	defer func() { <-c.sem; c.wg.Done() }()
	out := make([]byte, 2, 514)
	ms := []Msg{{Req: req, From: c.peer, Dst: out[2:2]}}
	s.cfg.Handler.Serve(s.ctx, ms, true)
	reply := ms[0].Reply
	if !ms[0].Done || len(reply) == 0 {
		return
	}
	if len(reply) > 0xffff {
		s.log.Warn("reply too long for TCP", "bytes", len(reply))
		return
	}
	if &reply[:1][0] == &out[2:3][0] {
		out = out[:2+len(reply)]
	} else {
		out = append(out[:2], reply...)
	}
	binary.BigEndian.PutUint16(out, uint16(len(reply)))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := c.rw.Write(out); err != nil {
		// A client that does not read its replies loses the connection.
		c.conn.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
