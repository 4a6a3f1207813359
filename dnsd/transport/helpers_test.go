package transport_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shardns/shardns/dnsd/transport"
)

// hangBound is how long a test waits for something that must happen before
// it calls it a hang. It is generous: the tests run on loaded machines and
// under the race detector, and never measure speed.
const hangBound = 10 * time.Second

// handler is a transport.Handler under the test's control. It echoes every
// message back with QR set, after waiting at the gate of the query's first
// label, if the test set one (see hold). Replies to labels starting with
// "big" are padded to bigSize bytes. It counts calls, and how many run at
// once in all and per client.
type handler struct {
	bigSize int

	mu    sync.Mutex
	gates map[string]gate
	peers map[netip.AddrPort]*peerCount
	gids  map[uint64]bool // goroutines that called ServeMessage

	calls      atomic.Int64 // ServeMessage calls
	running    atomic.Int64 // calls under way
	maxRunning atomic.Int64 // most calls under way at once
	canceled   atomic.Int64 // calls that ended because ctx did
	finished   atomic.Int64 // calls that returned a reply
}

type peerCount struct{ running, max int }

type gate struct {
	ch      chan struct{}
	release func()
}

var _ transport.Handler = (*handler)(nil)

func newHandler() *handler {
	return &handler{gates: map[string]gate{}, peers: map[netip.AddrPort]*peerCount{}, gids: map[uint64]bool{}}
}

// hold makes queries whose first label is label wait until release is
// called or the server's context ends. release may be called many times.
func (h *handler) hold(label string) (release func()) {
	g := gate{ch: make(chan struct{})}
	g.release = sync.OnceFunc(func() { close(g.ch) })
	h.mu.Lock()
	h.gates[label] = g
	h.mu.Unlock()
	return g.release
}

// releaseAll opens every gate.
func (h *handler) releaseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, g := range h.gates {
		g.release()
	}
}

// gate is the channel queries for label wait on, or nil.
func (h *handler) gate(label string) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gates[label].ch
}

// goroutines is how many goroutines have called ServeMessage.
func (h *handler) goroutines() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.gids)
}

// goroutineID is the calling goroutine's number, as its stack trace gives it.
func goroutineID() uint64 {
	var b [64]byte
	f := strings.Fields(string(b[:runtime.Stack(b[:], false)]))
	if len(f) < 2 || f[0] != "goroutine" {
		panic("unexpected stack header " + string(b[:]))
	}
	id, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		panic(err)
	}
	return id
}

// countStacks is how many goroutines have fn in their stacks.
func countStacks(fn string) int {
	b := make([]byte, 1<<20)
	return strings.Count(string(b[:runtime.Stack(b, true)]), fn)
}

// maxFor is the most calls that ran at once for one client.
func (h *handler) maxFor(p netip.AddrPort) int {
	p = unmap(p)
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.peers[p]; c != nil {
		return c.max
	}
	return 0
}

// unmap turns ::ffff:a.b.c.d into a.b.c.d, so clients compare equal
// however the socket API spelled them.
func unmap(p netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
}

func (h *handler) enter(p netip.AddrPort) {
	p = unmap(p)
	n := h.running.Add(1)
	for m := h.maxRunning.Load(); n > m && !h.maxRunning.CompareAndSwap(m, n); m = h.maxRunning.Load() {
	}
	h.mu.Lock()
	h.gids[goroutineID()] = true
	c := h.peers[p]
	if c == nil {
		c = &peerCount{}
		h.peers[p] = c
	}
	c.running++
	c.max = max(c.max, c.running)
	h.mu.Unlock()
}

func (h *handler) leave(p netip.AddrPort) {
	p = unmap(p)
	h.mu.Lock()
	h.peers[p].running--
	h.mu.Unlock()
	h.running.Add(-1)
}

// Serve leaves every message to a wait call of its own, as a handler
// that must wait for each (a lookup) does, and answers it there with
// ServeMessage.
func (h *handler) Serve(ctx context.Context, ms []transport.Msg, wait bool) {
	if !wait || len(ms) > 1 {
		return
	}
	ms[0].Reply, ms[0].Done = h.ServeMessage(ctx, ms[0].Req, ms[0].From, ms[0].Dst), true
}

// ServeMessage echoes req as described on handler.
func (h *handler) ServeMessage(ctx context.Context, req []byte, from transport.Peer, dst []byte) []byte {
	h.calls.Add(1)
	h.enter(from.Addr)
	defer h.leave(from.Addr)
	label := firstLabel(req)
	if g := h.gate(label); g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			h.canceled.Add(1)
			return nil
		}
	}
	start := len(dst)
	dst = append(dst, req...)
	dst[start+2] |= 0x80
	if strings.HasPrefix(label, "big") && h.bigSize > len(req) {
		dst = append(dst, make([]byte, h.bigSize-len(req))...)
	}
	h.finished.Add(1)
	return dst
}

// firstLabel is the lowercased first label of req's question, or "".
func firstLabel(req []byte) string {
	m := new(dns.Msg)
	if m.Unpack(req) != nil || len(m.Question) == 0 {
		return ""
	}
	name := strings.ToLower(m.Question[0].Name)
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

// env is a running transport.Server on 127.0.0.1 with its own registry.
type env struct {
	srv *transport.Server
	h   *handler
	reg *prometheus.Registry
	udp string
	tcp string
}

// start runs a server for h with cfg on 127.0.0.1:0. When the test ends it
// opens h's gates and shuts the server down.
func start(t testing.TB, h *handler, cfg transport.Config) *env {
	t.Helper()
	return startOn(t, h, cfg, "127.0.0.1:0")
}

// listenUntilCleanup has srv listen on listen until the test ends, then
// calls release (to let held queries go) and shuts srv down.
func listenUntilCleanup(t testing.TB, srv *transport.Server, release func(), listen string) {
	t.Helper()
	if err := srv.Listen([]string{listen}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		release()
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
}

// startOn is start on listen.
func startOn(t testing.TB, h *handler, cfg transport.Config, listen string) *env {
	t.Helper()
	e := &env{h: h, reg: prometheus.NewRegistry()}
	cfg.Handler, cfg.Registerer = h, e.reg
	e.srv = transport.New(cfg)
	listenUntilCleanup(t, e.srv, h.releaseAll, listen)
	addrs := e.srv.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("Addrs() = %v, want UDP and TCP", addrs)
	}
	e.udp, e.tcp = addrs[0].String(), addrs[1].String()
	return e
}

// metric is the value of the counter or gauge name in e's registry.
func (e *env) metric(t testing.TB, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// metricWith is the value of the counter name{label="value"} in e's
// registry.
func (e *env) metricWith(t testing.TB, name, label, value string) float64 {
	t.Helper()
	m := e.series(t, name, label, value)
	if m == nil {
		t.Fatalf("metric %s{%s=%q} not found", name, label, value)
	}
	return m.GetCounter().GetValue()
}

// gaugeWith is the value of the gauge name{label=value} in e's registry
// (0 when it has no such series yet).
func (e *env) gaugeWith(t testing.TB, name, label, value string) float64 {
	t.Helper()
	return e.series(t, name, label, value).GetGauge().GetValue()
}

// series is the series name{label="value"} in e's registry, nil when
// there is none.
func (e *env) series(t testing.TB, name, label, value string) *dto.Metric {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m
				}
			}
		}
	}
	return nil
}

// waitFor polls cond until it holds, failing the test after hangBound.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", hangBound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// query is a packed query for label.test. with the given ID.
func query(t testing.TB, label string, id uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(label+".test.", dns.TypeA)
	m.Id = id
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// framed puts each message behind its two-byte length, as over TCP.
func framed(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

// dialTCP connects to addr; the connection is closed when the test ends.
func dialTCP(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	return dialTCPFrom(t, "", addr)
}

// dialTCPFrom is dialTCP from the local address from ("": any).
func dialTCPFrom(t *testing.T, from, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: hangBound}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// send writes b to c or fails the test.
func send(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(hangBound))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readFrame reads one length-prefixed message from c within wait.
func readFrame(c net.Conn, wait time.Duration) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	return b, nil
}

// readReply reads one reply from c and returns its ID, failing the test on
// any error or on a message that is not a reply.
func readReply(t *testing.T, c net.Conn) uint16 {
	t.Helper()
	b, err := readFrame(c, hangBound)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return replyID(t, b)
}

func replyID(t *testing.T, b []byte) uint16 {
	t.Helper()
	if len(b) < 12 || b[2]&0x80 == 0 {
		t.Fatalf("not a reply: % x", b[:min(len(b), 12)])
	}
	return binary.BigEndian.Uint16(b)
}

// expectClosed fails the test unless the server closes c (a read ends in
// EOF or a reset, not a timeout) within hangBound. Bytes still arriving
// before the close are skipped.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(hangBound))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %v", hangBound)
		}
		return
	}
}

// dialUDP returns a UDP socket connected to addr, closed when the test ends.
func dialUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// readDatagram reads one datagram from c within wait; nil when none came.
func readDatagram(c *net.UDPConn, wait time.Duration) []byte {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}
