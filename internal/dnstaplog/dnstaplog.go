// Package dnstaplog writes dnstap (https://dnstap.info) messages: what a
// daemon was asked and what it answered (CLIENT_QUERY, CLIENT_RESPONSE),
// and what it asked upstream servers and got back (RESOLVER_QUERY,
// RESOLVER_RESPONSE), as Frame Streams to a file or to a collector's Unix
// socket (`dnstap -u PATH`, fstrm_capture, a dnstap-enabled collector).
//
// The query path never waits for the log: each exchange is copied into a
// bounded queue and a single goroutine encodes and writes it. When the
// queue is full (the collector is slow, gone, or being reconnected to with
// backoff) the exchange is dropped and counted in
// shardns_dnstap_dropped_total.
package dnstaplog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	framestream "github.com/farsightsec/golang-framestream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// Defaults for Config.
const (
	DefaultQueue    = 8192
	DefaultRetryMin = 100 * time.Millisecond
	DefaultRetryMax = 10 * time.Second
	// ioTimeout bounds one write to the collector, its handshake and its
	// acknowledgement of the end of the stream: a collector that stops
	// reading is disconnected and dialled again.
	ioTimeout = 2 * time.Second
)

// Config is what Open needs.
type Config struct {
	// Target is a file path (created, or truncated) or "unix:PATH", the
	// Frame Streams socket a collector listens on.
	Target string
	// Identity names the server in every message; "": the host name.
	Identity string
	// Version names the software in every message; "": "shardns" and the
	// module version the binary was built from.
	Version string
	// Queue bounds the exchanges waiting to be written (default
	// DefaultQueue); more are dropped and counted.
	Queue int
	// RetryMin and RetryMax bound the wait between attempts to connect to
	// a socket target: it doubles from RetryMin up to RetryMax while the
	// collector is away (defaults DefaultRetryMin, DefaultRetryMax).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// Registerer gets shardns_dnstap_dropped_total and
	// shardns_dnstap_written_total; nil registers neither.
	Registerer prometheus.Registerer
}

// Protocol names, as Client and Exchanged take them.
const (
	UDP = "udp"
	TCP = "tcp"
	DoT = "dot"
	DoH = "doh"
	DoQ = "doq"
	TLS = "tls" // an upstream's DNS over TLS, as resolverd/forward names it
)

// socketProtocolDoQ is DNS over QUIC in dnstap.proto's SocketProtocol
// (DOQ = 7, after DNSCryptUDP 5 and DNSCryptTCP 6), which the Go bindings
// of v0.4.0 predate.
const socketProtocolDoQ dnstap.SocketProtocol = 7

// socketProtocol is name's dnstap SocketProtocol; UDP for an unknown name.
func socketProtocol(name string) dnstap.SocketProtocol {
	switch name {
	case TCP:
		return dnstap.SocketProtocol_TCP
	case DoT, TLS:
		return dnstap.SocketProtocol_DOT
	case DoH:
		return dnstap.SocketProtocol_DOH
	case DoQ:
		return socketProtocolDoQ
	}
	return dnstap.SocketProtocol_UDP
}

// exchange is one query and its response (nil when none came) as queued.
// Both messages share one copy.
type exchange struct {
	resolver     bool // RESOLVER_*; else CLIENT_*
	proto        string
	peer         netip.AddrPort // the client, or the upstream
	qtime, rtime time.Time
	query, resp  []byte
}

// frames is how many dnstap messages e makes.
func (e *exchange) frames() int { return frames(e.resp) }

// Logger writes dnstap messages; its methods are safe for concurrent use.
// A nil *Logger logs nothing.
type Logger struct {
	target   string
	sockPath string // for a unix: target
	identity []byte
	version  []byte
	retryMin time.Duration
	retryMax time.Duration
	log      *slog.Logger
	file     *os.File // for a file target

	queue   chan exchange
	dropped prometheus.Counter
	written prometheus.Counter

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Open starts a Logger writing to cfg.Target: a file is created at once
// (an error if it cannot be); a socket is dialled in the background, again
// and again while no collector listens.
func Open(cfg Config) (*Logger, error) {
	if cfg.Target == "" {
		return nil, errors.New("dnstap: no target: give a file or unix:PATH")
	}
	l := &Logger{
		target: cfg.Target, retryMin: cfg.RetryMin, retryMax: cfg.RetryMax, log: cfg.Logger,
		identity: []byte(cfg.Identity), version: []byte(cfg.Version),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if len(l.identity) == 0 {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("dnstap: identity: %w", err)
		}
		l.identity = []byte(host)
	}
	if len(l.version) == 0 {
		l.version = []byte(DefaultVersion())
	}
	if l.retryMin <= 0 {
		l.retryMin = DefaultRetryMin
	}
	if l.retryMax < l.retryMin {
		l.retryMax = max(DefaultRetryMax, l.retryMin)
	}
	n := cfg.Queue
	if n <= 0 {
		n = DefaultQueue
	}
	l.queue = make(chan exchange, n)
	l.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "shardns", Subsystem: "dnstap", Name: "dropped_total",
		Help: "dnstap messages not written: the queue was full (the collector slow or away) or the write failed.",
	})
	l.written = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "shardns", Subsystem: "dnstap", Name: "written_total",
		Help: "dnstap messages written to the file or the collector's socket.",
	})
	if path, ok := strings.CutPrefix(cfg.Target, "unix:"); ok {
		if path == "" {
			return nil, fmt.Errorf("dnstap: %q: no socket path after unix:", cfg.Target)
		}
		l.sockPath = path
	} else {
		f, err := os.Create(cfg.Target)
		if err != nil {
			return nil, fmt.Errorf("dnstap: %w", err)
		}
		l.file = f
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{l.dropped, l.written} {
			if err := cfg.Registerer.Register(c); err != nil {
				if l.file != nil {
					l.file.Close()
				}
				return nil, fmt.Errorf("dnstap: register metrics: %w", err)
			}
		}
	}
	go l.run()
	return l, nil
}

// DefaultVersion is the version dnstap messages carry when none is given.
func DefaultVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "shardns " + bi.Main.Version
	}
	return "shardns"
}

// Client logs a query a client sent (CLIENT_QUERY, at received) and the
// response it was sent (CLIENT_RESPONSE, at sent). proto is one of UDP,
// TCP, DoT, DoH, DoQ. query and resp are copied: the caller may reuse
// them once Client returns.
func (l *Logger) Client(proto string, client netip.AddrPort, received, sent time.Time, query, resp []byte) {
	l.enqueue(false, proto, client, received, sent, query, resp)
}

// Exchanged logs a query sent to an upstream server (RESOLVER_QUERY, at
// sent) and, when resp is not nil, the response taken from it
// (RESOLVER_RESPONSE, at received): the messages as they went on the
// wire. proto is UDP, TCP or TLS. It satisfies resolverd/forward's Tap.
func (l *Logger) Exchanged(proto string, upstream netip.AddrPort, sent, received time.Time, query, resp []byte) {
	l.enqueue(true, proto, upstream, sent, received, query, resp)
}

func (l *Logger) enqueue(resolver bool, proto string, peer netip.AddrPort, qt, rt time.Time, query, resp []byte) {
	if l == nil {
		return
	}
	e := exchange{resolver: resolver, proto: proto, peer: peer, qtime: qt, rtime: rt}
	if len(l.queue) == cap(l.queue) { // full: drop before copying
		l.dropped.Add(float64(frames(resp)))
		return
	}
	buf := make([]byte, len(query)+len(resp))
	n := copy(buf, query)
	e.query = buf[:n:n]
	if resp != nil {
		copy(buf[n:], resp)
		e.resp = buf[n:]
	}
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(float64(e.frames()))
	}
}

// frames is how many dnstap messages an exchange with response resp makes.
func frames(resp []byte) int {
	if resp == nil {
		return 1
	}
	return 2
}

// Dropped is the count of messages dropped so far.
func (l *Logger) Dropped() uint64 { return counterValue(l.dropped) }

// Written is the count of messages written so far (to the kernel: a
// collector that goes away loses what its socket held).
func (l *Logger) Written() uint64 { return counterValue(l.written) }

// Close writes what is queued (to a socket only while it stays
// connected), ends the stream (a collector acknowledges it) and closes
// the file or socket. It returns once all of that is done, within a few
// seconds.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

// sink is an open Frame Streams writer and what it writes to.
type sink struct {
	w       *framestream.Writer
	c       interface{ Close() error }
	pending int // messages written since the last flush
}

// run is the writing goroutine: it opens the sink (again, with backoff,
// when a socket's collector goes away), writes the queue to it, flushes
// when the queue runs dry, and on stop writes what is left and closes.
func (l *Logger) run() {
	defer close(l.done)
	var s *sink
	wait := l.retryMin
	failing := false
	for {
		if s == nil {
			var err error
			s, err = l.open()
			if err != nil {
				if l.file != nil { // a file that cannot take the header takes nothing
					l.log.Error("dnstap: the file cannot be written; messages are dropped", "file", l.target, "err", err)
					l.discard()
					return
				}
				if !failing {
					l.log.Warn("dnstap: cannot reach the collector; retrying with backoff, messages are dropped while the queue is full", "socket", l.sockPath, "err", err)
					failing = true
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-l.stop:
					t.Stop()
					l.dropQueued()
					return
				}
				wait = min(2*wait, l.retryMax)
				continue
			}
			if failing {
				l.log.Info("dnstap: connected to the collector", "socket", l.sockPath)
			}
			failing, wait = false, l.retryMin
		}
		select {
		case e := <-l.queue:
			if err := l.write(s, &e); err != nil {
				s = l.broken(s, err)
				continue
			}
			if len(l.queue) == 0 {
				if err := l.flush(s); err != nil {
					s = l.broken(s, err)
				}
			}
		case <-l.stop:
			l.finish(s)
			return
		}
	}
}

// open starts the stream: the file's header, or a connection to the
// collector and its handshake (content type negotiated).
func (l *Logger) open() (*sink, error) {
	if l.file != nil {
		w, err := framestream.NewWriter(l.file, &framestream.WriterOptions{ContentTypes: [][]byte{dnstap.FSContentType}})
		if err != nil {
			return nil, err
		}
		return &sink{w: w, c: l.file}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", l.sockPath)
	if err != nil {
		return nil, err
	}
	w, err := framestream.NewWriter(conn, &framestream.WriterOptions{
		ContentTypes: [][]byte{dnstap.FSContentType}, Bidirectional: true, Timeout: ioTimeout,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return &sink{w: w, c: conn}, nil
}

// write encodes e's messages into s's buffer.
func (l *Logger) write(s *sink, e *exchange) error {
	for i := range e.frames() {
		b, err := proto.Marshal(l.message(e, i == 1))
		if err != nil { // a message of set fields always encodes
			l.dropped.Inc()
			continue
		}
		if _, err := s.w.WriteFrame(b); err != nil {
			l.dropped.Add(float64(e.frames() - i))
			return err
		}
		s.pending++
	}
	return nil
}

func (l *Logger) flush(s *sink) error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	l.written.Add(float64(s.pending))
	s.pending = 0
	return nil
}

// broken counts what s held unflushed as dropped and closes it; a file
// takes nothing more (its stream cannot be resumed in the middle).
func (l *Logger) broken(s *sink, err error) *sink {
	l.dropped.Add(float64(s.pending))
	s.c.Close()
	if l.file != nil {
		l.log.Error("dnstap: write to the file failed; messages are dropped", "file", l.target, "err", err)
		l.discard()
		return nil
	}
	l.log.Warn("dnstap: lost the collector; reconnecting", "socket", l.sockPath, "err", err)
	return nil
}

// discard drops, counting them, the queued exchanges and every later one
// until Close, when the file is unusable.
func (l *Logger) discard() {
	for {
		select {
		case e := <-l.queue:
			l.dropped.Add(float64(e.frames()))
		case <-l.stop:
			l.dropQueued()
			return
		}
	}
}

// dropQueued counts what is left in the queue as dropped.
func (l *Logger) dropQueued() {
	for {
		select {
		case e := <-l.queue:
			l.dropped.Add(float64(e.frames()))
		default:
			return
		}
	}
}

// finish writes what is queued to s and ends the stream.
func (l *Logger) finish(s *sink) {
	var err error
	for err == nil {
		select {
		case e := <-l.queue:
			err = l.write(s, &e)
			continue
		default:
		}
		break
	}
	if err == nil {
		err = l.flush(s)
	}
	if err != nil {
		l.dropped.Add(float64(s.pending))
		l.dropQueued()
		s.c.Close()
		return
	}
	if err := s.w.Close(); err != nil { // STOP, and for a socket FINISH
		l.log.Warn("dnstap: ending the stream", "target", l.target, "err", err)
	}
	if err := s.c.Close(); err != nil {
		l.log.Warn("dnstap: close", "target", l.target, "err", err)
	}
}

// message is e's query message, or with resp its response message.
func (l *Logger) message(e *exchange, resp bool) *dnstap.Dnstap {
	m := &dnstap.Message{
		SocketProtocol: socketProtocol(e.proto).Enum(),
		QueryTimeSec:   proto.Uint64(uint64(e.qtime.Unix())),
		QueryTimeNsec:  proto.Uint32(uint32(e.qtime.Nanosecond())),
	}
	addr := e.peer.Addr().Unmap()
	if addr.IsValid() {
		fam := dnstap.SocketFamily_INET
		if addr.Is6() {
			fam = dnstap.SocketFamily_INET6
		}
		m.SocketFamily = fam.Enum()
		port := uint32(e.peer.Port())
		if e.resolver { // the upstream is the responder
			m.ResponseAddress, m.ResponsePort = addr.AsSlice(), &port
		} else { // the client is the initiator
			m.QueryAddress, m.QueryPort = addr.AsSlice(), &port
		}
	}
	var t dnstap.Message_Type
	switch {
	case e.resolver && resp:
		t = dnstap.Message_RESOLVER_RESPONSE
	case e.resolver:
		t = dnstap.Message_RESOLVER_QUERY
	case resp:
		t = dnstap.Message_CLIENT_RESPONSE
	default:
		t = dnstap.Message_CLIENT_QUERY
	}
	m.Type = t.Enum()
	if resp {
		m.ResponseMessage = e.resp
		m.ResponseTimeSec = proto.Uint64(uint64(e.rtime.Unix()))
		m.ResponseTimeNsec = proto.Uint32(uint32(e.rtime.Nanosecond()))
	} else {
		m.QueryMessage = e.query
	}
	return &dnstap.Dnstap{
		Identity: l.identity,
		Version:  l.version,
		Type:     dnstap.Dnstap_MESSAGE.Enum(),
		Message:  m,
	}
}
