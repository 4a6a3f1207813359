package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The encrypted listeners (DoT, DoH, DoQ) carry queries to the same
// Handler as UDP and TCP, a message at a time as TCP does, with
// Peer.TCP set: each connection has completed a handshake, so its
// source address is not spoofed and the handler treats it as TCP (no
// rate limit, no truncation). Their connections count against the same
// caps as TCP's (MaxTCPConns, MaxTCPPerClient), close after
// TCPIdleTimeout with nothing to do, and drain on Shutdown as TCP's do.

// encState is the Server's part for DoH and DoQ; guarded by Server.mu.
type encState struct {
	// others counts the open DoH and DoQ connections, which share the
	// TCP connection caps with the TCP and DoT connections in conns.
	others int
	// stops begin the shutdown of each DoH and DoQ listener: they stop
	// accepting, and their connections drain in Server.wg.
	stops []func(ctx context.Context)

	metricsOnce sync.Once
	metrics     *encMetrics
}

// Protocol names, as the metrics label them.
const (
	protoDoT = "dot"
	protoDoH = "doh"
	protoDoQ = "doq"
)

// slotVerdict is whether a connection may be served.
type slotVerdict int

const (
	slotTaken slotVerdict = iota
	slotStopping
	slotFull
	slotPerClient
)

// takeSlot counts a DoH or DoQ connection from the client key against
// the connection caps, unless they are reached or Shutdown has begun.
func (s *Server) takeSlot(key netip.Addr) slotVerdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopping.Load():
		return slotStopping
	case len(s.conns)+s.enc.others >= s.cfg.MaxTCPConns:
		return slotFull
	case s.perClient[key] >= s.cfg.MaxTCPPerClient:
		return slotPerClient
	}
	s.enc.others++
	s.perClient[key]++
	return slotTaken
}

// releaseSlot gives back a slot takeSlot took.
func (s *Server) releaseSlot(key netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.enc.others--
	if s.perClient[key]--; s.perClient[key] <= 0 {
		delete(s.perClient, key)
	}
}

// rejected counts a DoH or DoQ connection refused for v.
func (m *encMetrics) rejected(proto string, v slotVerdict) {
	reason := "shutdown"
	switch v {
	case slotFull:
		reason = "max_conns"
	case slotPerClient:
		reason = "per_client"
	}
	m.rejectedTotal.WithLabelValues(proto, reason).Inc()
}

// addStop registers a listener's shutdown; a listener bound after
// Shutdown began is stopped at once.
func (s *Server) addStop(stop func(ctx context.Context)) {
	s.mu.Lock()
	stopping := s.stopping.Load()
	if !stopping {
		s.enc.stops = append(s.enc.stops, stop)
	}
	s.mu.Unlock()
	if stopping {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		defer cancel()
		stop(ctx)
	}
}

// withALPN is cfg for the listener proto: a copy that offers only alpn.
func withALPN(cfg *tls.Config, proto string, alpn ...string) (*tls.Config, error) {
	if cfg == nil || (len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil) {
		return nil, fmt.Errorf("transport: %s needs a TLS configuration with a certificate", proto)
	}
	c := cfg.Clone()
	c.NextProtos = alpn
	return c, nil
}

// ListenDoT serves DNS over TLS (RFC 7858, ALPN "dot") on every address
// (host:port; port 0 picks one), with the TCP listener's framing,
// pipelining, out-of-order replies, ACL, caps and timeouts (the TLS
// handshake must finish within TCPReadTimeout). It returns the bound
// addresses.
func (s *Server) ListenDoT(addrs []string, cfg *tls.Config) ([]net.Addr, error) {
	tc, err := withALPN(cfg, protoDoT, "dot")
	if err != nil {
		return nil, err
	}
	s.encMetrics() // registered with the first encrypted listener
	var bound []net.Addr
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return bound, fmt.Errorf("transport: dot listen %s: %w", addr, err)
		}
		s.mu.Lock()
		if s.stopping.Load() {
			s.mu.Unlock()
			ln.Close()
			return bound, fmt.Errorf("transport: dot listen %s: %w", addr, net.ErrClosed)
		}
		s.lns = append(s.lns, ln.(*net.TCPListener))
		s.wg.Add(1)
		s.mu.Unlock()
		go s.acceptTCP(ln.(*net.TCPListener), tc)
		bound = append(bound, ln.Addr())
		s.log.Info("serving DNS over TLS", "dot", ln.Addr().String())
	}
	return bound, nil
}

// handshake runs a DoT connection's TLS handshake, within
// TCPReadTimeout; false closes the connection.
func (s *Server) handshake(c *tcpConn) bool {
	c.conn.SetDeadline(time.Now().Add(s.cfg.TCPReadTimeout))
	if err := c.tls.HandshakeContext(s.ctx); err != nil {
		s.encMetrics().handshakeFailed.WithLabelValues(protoDoT).Inc()
		s.log.Debug("dot handshake", "client", c.peer.Addr.String(), "err", err)
		return false
	}
	s.encMetrics().conns.WithLabelValues(protoDoT).Inc()
	c.conn.SetDeadline(time.Time{})
	// Counted down when the connection closes: serveTCP's deferred
	// close runs after this function's caller returns.
	c.onClose = func() { s.encMetrics().conns.WithLabelValues(protoDoT).Dec() }
	return true
}

// encMetrics are the encrypted listeners' metrics.
type encMetrics struct {
	conns           *prometheus.GaugeVec
	rejectedTotal   *prometheus.CounterVec
	handshakeFailed *prometheus.CounterVec
	dohResponses    *prometheus.CounterVec
	doqErrors       *prometheus.CounterVec
}

// encMetrics returns the metrics, made and registered on first use, so
// that a server with no encrypted listener exports none of them.
func (s *Server) encMetrics() *encMetrics {
	s.enc.metricsOnce.Do(func() {
		m := &encMetrics{
			conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Namespace: "shardns", Subsystem: "dns", Name: "encrypted_connections",
				Help: "Open encrypted client connections by protocol (dot, doh, doq); DoT's are also in shardns_dns_tcp_connections.",
			}, []string{"proto"}),
			rejectedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: "shardns", Subsystem: "dns", Name: "encrypted_rejected_total",
				Help: "DoH and DoQ connections closed as soon as they were accepted, by protocol and reason: " +
					"max_conns, per_client (the caps they share with TCP), acl (DoQ; DoH answers 403), shutdown. DoT's are in shardns_dns_tcp_rejected_total.",
			}, []string{"proto", "reason"}),
			handshakeFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: "shardns", Subsystem: "dns", Name: "tls_handshake_failures_total",
				Help: "DoT connections whose TLS handshake failed or timed out.",
			}, []string{"proto"}),
			dohResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: "shardns", Subsystem: "dns", Name: "doh_responses_total",
				Help: "DoH responses by HTTP status code.",
			}, []string{"code"}),
			doqErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: "shardns", Subsystem: "dns", Name: "doq_errors_total",
				Help: "DoQ connections and streams closed with an RFC 9250 error code, by code name.",
			}, []string{"code"}),
		}
		if s.cfg.Registerer != nil {
			s.cfg.Registerer.MustRegister(m.conns, m.rejectedTotal, m.handshakeFailed, m.dohResponses, m.doqErrors)
		}
		s.enc.metrics = m
	})
	return s.enc.metrics
}
