// Package transport carries DNS messages between dnsd and its clients: UDP
// sockets and TCP connections (RFC 7766) with pipelining, answered out of
// order as lookups finish, under bounds on connections, queries in flight
// and time, so no client, slow or hostile, holds resources for long.
package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Peer is who sent a message and how.
type Peer struct {
	Addr netip.AddrPort
	TCP  bool
	// Proto is the encrypted protocol the message came over, set by the
	// listener of that protocol; ProtoPlain for plain DNS, UDP or TCP as
	// TCP says. The query logs report it.
	Proto Proto
}

// Proto is a protocol DNS messages are carried over beyond plain UDP and
// TCP.
type Proto uint8

// The protocols of Peer.Proto.
const (
	ProtoPlain Proto = iota // UDP or TCP (RFC 1035)
	ProtoDoT                // DNS over TLS (RFC 7858)
	ProtoDoH                // DNS over HTTPS (RFC 8484)
	ProtoDoQ                // DNS over QUIC (RFC 9250)
)

// Protocol names the protocol p's message came over: udp, tcp, dot, doh
// or doq.
func (p Peer) Protocol() string {
	switch p.Proto {
	case ProtoDoT:
		return "dot"
	case ProtoDoH:
		return "doh"
	case ProtoDoQ:
		return "doq"
	}
	if p.TCP {
		return "tcp"
	}
	return "udp"
}

// Handler answers DNS messages, a batch at a time: the datagrams of one
// UDP read, or one TCP message (and so any later listener: a batch of
// one). It parses each message once, in its first call, and keeps what it
// needs for the next in the message's State.
type Handler interface {
	// Serve answers what it can of ms, setting Done and Reply (nil for
	// silence) on each message it answers. With wait false it runs on
	// the goroutine reading the socket and must not wait for anything:
	// it answers what needs no I/O and leaves the rest. The transport
	// calls it again, with wait true, on an answering goroutine, with
	// the messages it left. A wait call on several messages may leave
	// some again (after one read of the cache for all, say); each is
	// then given a wait call of its own, which must answer it: a message
	// a wait call on one message leaves gets no reply. ctx ends when the
	// server shuts down.
	Serve(ctx context.Context, ms []Msg, wait bool)
}

// Msg is one message of a Serve call. Req stays valid until the message is
// answered; Dst is set anew for each call.
type Msg struct {
	Req   []byte
	From  Peer
	Dst   []byte // room for the reply: Reply may be a part of it
	Reply []byte
	Done  bool
	// State is the Handler's, carried from one call on the message to
	// the next; the transport does not look at it.
	State any
}

// Config holds the server's bounds; zero values take the defaults.
type Config struct {
	Handler Handler // required
	Logger  *slog.Logger
	// MaxUDPInFlight bounds UDP queries being answered at once; a datagram
	// arriving beyond it is dropped (default 4096).
	MaxUDPInFlight int
	// MaxTCPConns bounds open TCP connections; more are closed at once
	// (default 1024).
	MaxTCPConns int
	// MaxTCPPerClient bounds the open TCP connections of one client: an
	// IPv4 address, or an IPv6 /64 (a host picks any address of its /64
	// at will, so a cap per /128 would cap nothing). More are closed at
	// once. Default DefaultMaxTCPPerClient; never more than MaxTCPConns.
	MaxTCPPerClient int
	// TCPAllow, when set, says who may open a TCP connection: one from
	// any other address is closed as soon as it is accepted, before
	// anything is read from it. Nil allows everyone.
	TCPAllow Allower
	// MaxTCPInFlight bounds queries in flight on one connection; the
	// connection is not read further until one finishes (default 64).
	MaxTCPInFlight int
	// TCPIdleTimeout closes a connection with nothing to do (default 10s,
	// RFC 7766 §6.2.3). Past half of MaxTCPConns it drops to 1s.
	TCPIdleTimeout time.Duration
	// TCPReadTimeout bounds reading one message once its length has
	// arrived (default 2s): a client trickling bytes is cut off.
	TCPReadTimeout time.Duration
	// WriteTimeout bounds writing one reply (default 2s).
	WriteTimeout time.Duration
	// UDPSockets is how many UDP sockets share each address, bound with
	// SO_REUSEPORT so the kernel spreads datagrams over them, each read by
	// its own goroutine (default GOMAXPROCS). On Linux each has a
	// send-only socket beside it for its replies (see sendSocket).
	UDPSockets int
	Registerer prometheus.Registerer
}

// Allower says whether a client may use the server.
type Allower interface {
	Allowed(netip.Addr) bool
}

// DefaultMaxTCPPerClient is MaxTCPPerClient's default. A stub resolver
// holds one connection per query it retries over TCP, and a forwarding
// resolver pipelines on a few (Unbound reuses up to outgoing-num-tcp, 10,
// per thread); with MaxTCPInFlight 64 each, 32 connections carry 2048
// queries at once. Against the default MaxTCPConns (1024) it takes 32
// addresses (or IPv6 /64s) to hold every slot, not one.
const DefaultMaxTCPPerClient = 32

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxUDPInFlight <= 0 {
		c.MaxUDPInFlight = 4096
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = 1024
	}
	if c.MaxTCPPerClient <= 0 {
		c.MaxTCPPerClient = DefaultMaxTCPPerClient
	}
	c.MaxTCPPerClient = min(c.MaxTCPPerClient, c.MaxTCPConns)
	if c.MaxTCPInFlight <= 0 {
		c.MaxTCPInFlight = 64
	}
	if c.TCPIdleTimeout <= 0 {
		c.TCPIdleTimeout = 10 * time.Second
	}
	if c.TCPReadTimeout <= 0 {
		c.TCPReadTimeout = 2 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 2 * time.Second
	}
	if c.UDPSockets <= 0 {
		c.UDPSockets = runtime.GOMAXPROCS(0)
	}
}

// Server serves DNS over UDP and TCP on any number of addresses.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	// udpInFlight counts the UDP queries being answered by workers, at
	// most MaxUDPInFlight: a counter rather than a channel of slots, so
	// that taking and giving back a slot costs one atomic add each.
	udpInFlight atomic.Int64
	bufs        sync.Pool     // *[]byte, udpReadSize
	udpPeekWait time.Duration // udpPeekWait; the tests set their own

	ctx    context.Context // ends at Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // readers, accept loops, connections, handlers

	// stopping is set (under mu) when Shutdown begins: readers stop and
	// connections accepted from then on are closed.
	stopping atomic.Bool

	mu        sync.Mutex
	pcs       []*net.UDPConn
	senders   []replySocket // send-only sockets beside pcs (see sendSocket)
	lns       []*net.TCPListener
	conns     map[*tcpConn]struct{}
	perClient map[netip.Addr]int // open connections by clientKey
	addrs     []net.Addr
	enc       encState // DoH and DoQ listeners (see encrypted.go)
}

// udpReadSize is the largest query read over UDP. Real queries are far
// smaller; a longer datagram is cut and fails to parse.
const udpReadSize = 4096

// New returns a Server; Listen starts it.
func New(cfg Config) *Server {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger, metrics: newMetrics(cfg.Registerer), udpPeekWait: udpPeekWait,
		ctx: ctx, cancel: cancel, conns: map[*tcpConn]struct{}{}, perClient: map[netip.Addr]int{},
	}
	s.bufs.New = func() any { b := make([]byte, udpReadSize); return &b }
	return s
}

// Listen binds UDP and TCP on every address (host:port; port 0 picks a port
// free for both) and starts serving. It returns once all are bound.
func (s *Server) Listen(addrs []string) error {
	for _, addr := range addrs {
		pcs, ln, err := listenPair(addr, s.cfg.UDPSockets)
		if err != nil {
			return err
		}
		dstInfo := isWildcard(pcs[0].LocalAddr())
		if dstInfo {
			if err := recvDstInfo(pcs); err != nil {
				for _, pc := range pcs {
					pc.Close()
				}
				ln.Close()
				return fmt.Errorf("transport: udp %s: %w", addr, err)
			}
			if !dstInfoWorks {
				s.log.Warn("replies from a wildcard address leave from the address the routes pick, not always the one asked; listen on specific addresses", "addr", pcs[0].LocalAddr().String())
			}
		}
		ws, err := openSendSockets(pcs)
		if err != nil {
			s.log.Warn("udp replies leave through the reading sockets", "addr", pcs[0].LocalAddr().String(), "err", err)
		}
		s.mu.Lock()
		s.pcs = append(s.pcs, pcs...)
		s.lns = append(s.lns, ln)
		s.addrs = append(s.addrs, pcs[0].LocalAddr(), ln.Addr())
		s.senders = append(s.senders, ws...)
		s.mu.Unlock()
		s.wg.Add(len(pcs) + 1)
		for i, pc := range pcs {
			var w dgramWriter
			if ws != nil {
				w = ws[i]
			}
			go s.readUDP(pc, w, dstInfo && dstInfoWorks)
		}
		go s.acceptTCP(ln, nil)
		s.log.Info("serving DNS", "udp", pcs[0].LocalAddr().String(), "udp_sockets", len(pcs), "tcp", ln.Addr().String())
	}
	return nil
}

// isWildcard says whether a is an unspecified address (0.0.0.0, ::),
// which takes datagrams sent to any of the host's addresses.
func isWildcard(a net.Addr) bool {
	ua, ok := a.(*net.UDPAddr)
	return ok && ua.IP.IsUnspecified()
}

// pairAttempts bounds how many ports listenPair tries for port 0.
const pairAttempts = 20

// listenPair binds n UDP sockets on addr, then TCP on the port UDP got, so
// ":0" gives one port for both; with port 0 another is tried if TCP's is
// taken. The UDP sockets are bound with SO_REUSEPORT where it works, so that
// they (and their send sockets) share the port.
func listenPair(addr string, n int) ([]*net.UDPConn, *net.TCPListener, error) {
	attempts := 1
	if _, port, err := net.SplitHostPort(addr); err == nil && (port == "0" || port == "") {
		attempts = pairAttempts
	}
	var lc net.ListenConfig
	if !reusePortWorks {
		n = 1
	}
	if reusePortWorks {
		// Even for one reading socket: the send sockets join it.
		lc.Control = reusePort
	}
	ctx := context.Background()
	var err error
	for range attempts {
		pc, uerr := lc.ListenPacket(ctx, "udp", addr)
		if uerr != nil {
			return nil, nil, fmt.Errorf("transport: listen udp %s: %w", addr, uerr)
		}
		bound := pc.LocalAddr().String()
		ln, terr := net.Listen("tcp", bound)
		if terr != nil {
			pc.Close()
			err = fmt.Errorf("transport: listen tcp %s: %w", addr, terr)
			continue
		}
		pcs := []*net.UDPConn{pc.(*net.UDPConn)}
		for len(pcs) < n {
			more, uerr := lc.ListenPacket(ctx, "udp", bound)
			if uerr != nil {
				for _, c := range pcs {
					c.Close()
				}
				ln.Close()
				return nil, nil, fmt.Errorf("transport: listen udp %s, socket %d: %w", addr, len(pcs)+1, uerr)
			}
			pcs = append(pcs, more.(*net.UDPConn))
		}
		return pcs, ln.(*net.TCPListener), nil
	}
	return nil, nil, err
}

// Addrs are the bound addresses, UDP then TCP for each -listen address.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Shutdown stops accepting and reading, and waits for the queries in
// flight until ctx ends; their replies still go out. Then it cancels the
// queries left and closes every socket.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping.Store(true)
	var errs []error
	for _, pc := range s.pcs {
		// Wakes the reader; the socket stays open for replies in flight.
		errs = append(errs, pc.SetReadDeadline(time.Unix(1, 0)))
	}
	for _, ln := range s.lns {
		errs = append(errs, ln.Close())
	}
	for c := range s.conns {
		// The reader ends; serveTCP closes the connection once the
		// replies in flight are written.
		_ = c.conn.CloseRead()
	}
	pcs, senders := s.pcs, s.senders
	stops := s.enc.stops
	s.pcs, s.lns, s.senders, s.enc.stops = nil, nil, nil, nil
	s.mu.Unlock()
	for _, stop := range stops {
		stop(ctx) // DoH and DoQ: stop accepting, drain in s.wg
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
		errs = append(errs, ctx.Err())
	}
	s.cancel()
	for _, pc := range pcs {
		errs = append(errs, pc.Close())
	}
	for _, w := range senders {
		errs = append(errs, w.Close())
	}
	return errors.Join(ignoreClosed(errs)...)
}

func ignoreClosed(errs []error) []error {
	var out []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			out = append(out, err)
		}
	}
	return out
}
