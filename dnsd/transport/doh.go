package transport

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DoHPath is where the DoH listener answers (RFC 8484 §3's example, and
// what clients default to).
const DoHPath = "/dns-query"

// dohContentType is RFC 8484's media type for a DNS message.
const dohContentType = "application/dns-message"

// maxDoHMessage is the largest DNS message a DoH request may carry: what
// a 2-byte length prefix allows over TCP.
const maxDoHMessage = 65535

// dohMaxHeaderBytes bounds a request's header, GET's URL included:
// room for the longest message in base64url (87,380 characters).
const dohMaxHeaderBytes = 128 << 10

// ListenDoH serves DNS over HTTPS (RFC 8484), HTTP/2 and HTTP/1.1, on
// every address (host:port; port 0 picks one), at DoHPath, GET and POST.
// A client outside TCPAllow gets 403; connections count against the TCP
// caps (one over a cap is closed at accept) and close after
// TCPIdleTimeout idle. It returns the bound addresses.
func (s *Server) ListenDoH(addrs []string, cfg *tls.Config) ([]net.Addr, error) {
	tc, err := withALPN(cfg, protoDoH, "h2", "http/1.1")
	if err != nil {
		return nil, err
	}
	m := s.encMetrics()
	var bound []net.Addr
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return bound, fmt.Errorf("transport: doh listen %s: %w", addr, err)
		}
		hs := &http.Server{
			Handler:           http.HandlerFunc(s.serveDoH),
			TLSConfig:         tc,
			ReadHeaderTimeout: s.cfg.TCPReadTimeout,
			ReadTimeout:       s.cfg.TCPReadTimeout,
			// A reply waits for its lookup, then is written.
			WriteTimeout:   s.cfg.TCPReadTimeout + s.cfg.WriteTimeout + lookupAllowance,
			IdleTimeout:    s.cfg.TCPIdleTimeout,
			MaxHeaderBytes: dohMaxHeaderBytes,
			// As many requests at once on one connection as TCP has
			// queries in flight on one.
			HTTP2: &http.HTTP2Config{MaxConcurrentStreams: s.cfg.MaxTCPInFlight},
			// Handshake failures and bad requests from the Internet are
			// not the operator's errors.
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
			BaseContext: func(net.Listener) context.Context {
				return s.ctx
			},
		}
		s.mu.Lock()
		if s.stopping.Load() {
			s.mu.Unlock()
			ln.Close()
			return bound, fmt.Errorf("transport: doh listen %s: %w", addr, net.ErrClosed)
		}
		s.wg.Add(1)
		s.mu.Unlock()
		cl := &capListener{Listener: ln, s: s, m: m}
		go func() {
			defer s.wg.Done()
			if err := hs.ServeTLS(cl, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("doh listener stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
		s.addStop(func(ctx context.Context) {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				// Requests in flight are answered; then, or when ctx
				// ends, every connection is closed.
				if err := hs.Shutdown(ctx); err != nil {
					hs.Close()
				}
			}()
		})
		bound = append(bound, ln.Addr())
		s.log.Info("serving DNS over HTTPS", "doh", ln.Addr().String(), "path", DoHPath)
	}
	return bound, nil
}

// lookupAllowance is the room WriteTimeout leaves for a lookup: dnsd's
// budget per query is under 2 s.
const lookupAllowance = 2 * time.Second

// capListener admits connections under the TCP caps, and gives the slot
// back when the connection closes.
type capListener struct {
	net.Listener
	s *Server
	m *encMetrics
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(addrPort(conn.RemoteAddr()).Addr())
		if v := l.s.takeSlot(key); v != slotTaken {
			l.m.rejected(protoDoH, v)
			if tc, ok := conn.(*net.TCPConn); ok {
				refuse(tc)
			} else {
				conn.Close()
			}
			continue
		}
		l.m.conns.WithLabelValues(protoDoH).Inc()
		return &slotConn{Conn: conn, release: func() {
			l.s.releaseSlot(key)
			l.m.conns.WithLabelValues(protoDoH).Dec()
		}}, nil
	}
}

// slotConn is a connection holding a slot, given back at its first Close.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// dohError is a request the DoH listener refuses, with its HTTP status.
type dohError struct {
	status int
	msg    string
}

func (e *dohError) Error() string { return fmt.Sprintf("doh: %d: %s", e.status, e.msg) }

func dohErr(status int, format string, args ...any) *dohError {
	return &dohError{status: status, msg: fmt.Sprintf(format, args...)}
}

// dohQuery is the DNS message a DoH request carries (RFC 8484 §4.1): for
// GET, the dns parameter of rawQuery in base64url without padding; for
// POST, a body of type application/dns-message (contentLength -1:
// unknown). A request it refuses gets a *dohError with its status: 405
// for another method, 415 for another content type, 413 for a message
// over 65,535 bytes, 400 for anything else malformed.
func dohQuery(method, rawQuery, contentType string, contentLength int64, body io.Reader) ([]byte, *dohError) {
	var msg []byte
	switch method {
	case http.MethodGet:
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, "query string: %v", err)
		}
		vs := q["dns"]
		if len(vs) != 1 {
			return nil, dohErr(http.StatusBadRequest, "want one dns parameter, got %d", len(vs))
		}
		if base64.RawURLEncoding.DecodedLen(len(vs[0])) > maxDoHMessage {
			return nil, dohErr(http.StatusRequestEntityTooLarge, "dns parameter: a message over %d bytes", maxDoHMessage)
		}
		msg, err = base64.RawURLEncoding.DecodeString(vs[0])
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, "dns parameter is not base64url without padding: %v", err)
		}
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != dohContentType {
			return nil, dohErr(http.StatusUnsupportedMediaType, "content type %q, want %s", contentType, dohContentType)
		}
		if contentLength > maxDoHMessage {
			return nil, dohErr(http.StatusRequestEntityTooLarge, "body of %d bytes, over %d", contentLength, maxDoHMessage)
		}
		msg, err = io.ReadAll(io.LimitReader(body, maxDoHMessage+1))
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, "reading the body: %v", err)
		}
		if len(msg) > maxDoHMessage {
			return nil, dohErr(http.StatusRequestEntityTooLarge, "body over %d bytes", maxDoHMessage)
		}
	default:
		return nil, dohErr(http.StatusMethodNotAllowed, "method %s, want GET or POST", method)
	}
	if len(msg) < headerLen {
		return nil, dohErr(http.StatusBadRequest, "DNS message of %d bytes, shorter than a header", len(msg))
	}
	return msg, nil
}

// headerLen is the length of a DNS message header.
const headerLen = 12

// serveDoH answers one DoH request.
func (s *Server) serveDoH(w http.ResponseWriter, r *http.Request) {
	m := s.encMetrics()
	fail := func(e *dohError) {
		m.dohResponses.WithLabelValues(strconv.Itoa(e.status)).Inc()
		if e.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		http.Error(w, e.Error(), e.status)
	}
	if r.URL.Path != DoHPath {
		fail(dohErr(http.StatusNotFound, "no such path; DNS queries go to %s", DoHPath))
		return
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		fail(dohErr(http.StatusInternalServerError, "client address %q: %v", r.RemoteAddr, err))
		return
	}
	if s.cfg.TCPAllow != nil && !s.cfg.TCPAllow.Allowed(peer.Addr()) {
		fail(dohErr(http.StatusForbidden, "client %s is not allowed", peer.Addr()))
		return
	}
	req, derr := dohQuery(r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), r.ContentLength, r.Body)
	if derr != nil {
		fail(derr)
		return
	}
	ms := []Msg{{Req: req, From: Peer{Addr: peer, TCP: true, Proto: ProtoDoH}, Dst: make([]byte, 0, 512)}}
	s.cfg.Handler.Serve(r.Context(), ms, true)
	reply := ms[0].Reply
	if !ms[0].Done || len(reply) == 0 {
		fail(dohErr(http.StatusBadRequest, "the message is not a query the server answers"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", dohContentType)
	h.Set("Content-Length", strconv.Itoa(len(reply)))
	h.Set("Cache-Control", "max-age="+strconv.FormatUint(uint64(replyMaxAge(reply)), 10))
	m.dohResponses.WithLabelValues("200").Inc()
	_, _ = w.Write(reply)
}

// replyMaxAge is how long an HTTP cache may keep a reply (RFC 8484 §5.1):
// the smallest TTL of its answer records; for an answer with none, the
// negative caching time of the SOA in its authority section (RFC 2308
// §5: the smaller of the SOA's TTL and its MINIMUM); 0 for a reply with
// neither (an error, or one that does not parse).
func replyMaxAge(reply []byte) uint32 {
	var r dns.Msg
	if err := r.Unpack(reply); err != nil {
		return 0
	}
	if len(r.Answer) > 0 {
		least := r.Answer[0].Header().Ttl
		for _, rr := range r.Answer[1:] {
			least = min(least, rr.Header().Ttl)
		}
		return least
	}
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}
