package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/shardns/shardns/dnsd/transport"
	"github.com/shardns/shardns/internal/testutil/testcerts"
	"github.com/shardns/shardns/internal/tlsconf"
)

// encEnv is env with DoT, DoH and DoQ listeners and a CA that verifies
// them.
type encEnv struct {
	*env
	dot, doh, doq string
	ca            *testcerts.CA
	hc            *http.Client // DoH over HTTP/2, its connection kept
}

func startEncrypted(t testing.TB, h *handler, cfg transport.Config) *encEnv {
	t.Helper()
	e := &encEnv{env: start(t, h, cfg), ca: testcerts.NewCA(t, "transport test CA")}
	pair := e.ca.Server(t, "server", "127.0.0.1")
	e.listenAll(t, pair.Cert, pair.Key)
	tr := &http.Transport{TLSClientConfig: e.clientTLS(), ForceAttemptHTTP2: true}
	e.hc = &http.Client{Timeout: hangBound, Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return e
}

// listenAll opens DoT, DoH and DoQ listeners on loopback presenting the
// certificate in certFile and keyFile, and returns it (for a reload).
func (e *encEnv) listenAll(t testing.TB, certFile, keyFile string) *tlsconf.Certificate {
	t.Helper()
	cert, err := tlsconf.NewCertificate(tlsconf.File{Flag: "tls-cert", Path: certFile}, tlsconf.File{Flag: "tls-key", Path: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	tc := cert.ServerConfig()
	for _, l := range []struct {
		listen func([]string, *tls.Config) ([]net.Addr, error)
		addr   *string
	}{{e.srv.ListenDoT, &e.dot}, {e.srv.ListenDoH, &e.doh}, {e.srv.ListenDoQ, &e.doq}} {
		bound, err := l.listen([]string{"127.0.0.1:0"}, tc)
		if err != nil {
			t.Fatal(err)
		}
		*l.addr = bound[0].String()
	}
	return cert
}

func (e *encEnv) clientTLS(alpn ...string) *tls.Config {
	return &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", NextProtos: alpn}
}

func (e *encEnv) dialDoT(t testing.TB) *tls.Conn {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: hangBound}, "tcp", e.dot, e.clientTLS("dot"))
	if err != nil {
		t.Fatalf("dot: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *encEnv) dialDoQ(t testing.TB, cfg *quic.Config) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	c, err := quic.DialAddr(ctx, e.doq, e.clientTLS("doq"), cfg)
	if err != nil {
		t.Fatalf("doq: %v", err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

// askDoQ sends req on a stream of its own and returns the reply.
func askDoQ(c *quic.Conn, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	st.SetDeadline(time.Now().Add(hangBound))
	if _, err := st.Write(framed(req)); err != nil {
		return nil, err
	}
	st.Close()
	b, err := io.ReadAll(st)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return nil, errors.New("bad length prefix")
	}
	return b[2:], nil
}

func (e *encEnv) postDoH(req []byte) (*http.Response, []byte, error) {
	resp, err := e.hc.Post("https://"+e.doh+"/dns-query", "application/dns-message", bytes.NewReader(req))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// DoT reuses the TCP listener's connection code: pipelined queries are
// answered out of order, as lookups finish.
func TestDoTPipelinedOutOfOrder(t *testing.T) {
	h := newHandler()
	release := h.hold("slow")
	defer release()
	e := startEncrypted(t, h, transport.Config{})
	c := e.dialDoT(t)
	if p := c.ConnectionState().NegotiatedProtocol; p != "dot" {
		t.Errorf("ALPN %q, want dot", p)
	}
	send(t, c, framed(query(t, "slow", 1), query(t, "fast", 2)))
	if id := readReply(t, c); id != 2 {
		t.Fatalf("first reply %d, want 2 (the query not held)", id)
	}
	release()
	if id := readReply(t, c); id != 1 {
		t.Fatalf("second reply %d, want 1", id)
	}
	// A client offering only another protocol is refused.
	_, err := tls.DialWithDialer(&net.Dialer{Timeout: hangBound}, "tcp", e.dot, e.clientTLS("h2"))
	if err == nil {
		t.Error("dot handshake offering only h2 succeeded")
	}
}

// On Shutdown, every encrypted listener answers its queries in flight,
// then closes.
func TestEncryptedDrain(t *testing.T) {
	h := newHandler()
	release := h.hold("slow")
	defer release()
	e := startEncrypted(t, h, transport.Config{})
	dot := e.dialDoT(t)
	doq := e.dialDoQ(t, nil)
	send(t, dot, framed(query(t, "slow", 7)))
	type result struct {
		name string
		err  error
	}
	results := make(chan result, 3)
	go func() {
		reply, err := askDoQ(doq, query(t, "slow", 0))
		if err == nil && len(reply) < 12 {
			err = errors.New("short reply")
		}
		results <- result{"doq", err}
	}()
	go func() {
		resp, _, err := e.postDoH(query(t, "slow", 0))
		if err == nil && resp.StatusCode != 200 {
			err = errors.New(resp.Status)
		}
		results <- result{"doh", err}
	}()
	waitFor(t, "three queries held", func() bool { return h.running.Load() == 3 })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		defer cancel()
		shut <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond) // Shutdown under way, waiting for the three
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned with queries in flight: %v", err)
	default:
	}
	release()
	if id := readReply(t, dot); id != 7 {
		t.Errorf("dot reply %d, want 7", id)
	}
	for range 2 {
		if r := <-results; r.err != nil {
			t.Errorf("%s query in flight at shutdown: %v", r.name, r.err)
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	expectClosed(t, dot)
	select {
	case <-doq.Context().Done():
	case <-time.After(hangBound):
		t.Error("doq connection still open after Shutdown")
	}
}

// An encrypted connection with nothing to do is closed after the idle
// timeout, well before the read timeout (set long here) would close it.
func TestEncryptedIdleTimeout(t *testing.T) {
	const idle, readTimeout = 300 * time.Millisecond, 8 * time.Second
	e := startEncrypted(t, newHandler(), transport.Config{TCPIdleTimeout: idle, TCPReadTimeout: readTimeout})
	dot := e.dialDoT(t)
	doq := e.dialDoQ(t, &quic.Config{MaxIdleTimeout: time.Minute})
	if _, err := askDoQ(doq, query(t, "a", 0)); err != nil {
		t.Fatal(err)
	}
	if n := e.gaugeWith(t, "shardns_dns_encrypted_connections", "proto", "doq"); n != 1 {
		t.Fatalf("open DoQ connections: %v, want 1", n)
	}
	// DoH over HTTP/1.1: one request answered, then the connection idles.
	doh, err := tls.DialWithDialer(&net.Dialer{Timeout: hangBound}, "tcp", e.doh, e.clientTLS("http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer doh.Close()
	get := "GET /dns-query?dns=" + base64.RawURLEncoding.EncodeToString(query(t, "a", 0)) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	send(t, doh, []byte(get))
	doh.SetReadDeadline(time.Now().Add(hangBound))
	resp, err := http.ReadResponse(bufio.NewReader(doh), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("DoH over HTTP/1.1: %s", resp.Status)
	}
	start := time.Now()
	expectClosed(t, doh)
	expectClosed(t, dot)
	// QUIC closes an idle connection silently (RFC 9000 §10.1): the
	// server's count of open DoQ connections shows it.
	waitFor(t, "the idle DoQ connection closed", func() bool {
		return e.gaugeWith(t, "shardns_dns_encrypted_connections", "proto", "doq") == 0
	})
	if d := time.Since(start); d < idle*2/3 || d > readTimeout/2 {
		t.Errorf("idle connections closed after %v; the idle timeout is %v", d, idle)
	}
}

// A DoQ stream that breaks RFC 9250's framing closes the connection with
// DOQ_PROTOCOL_ERROR.
func TestDoQProtocolError(t *testing.T) {
	e := startEncrypted(t, newHandler(), transport.Config{})
	for name, stream := range map[string][]byte{
		"message ID not 0":  framed(query(t, "a", 5)),
		"length too short":  {0, 3, 1, 2, 3},
		"two queries":       framed(query(t, "a", 0), query(t, "b", 0)),
		"ended mid-message": framed(query(t, "a", 0))[:8],
	} {
		c := e.dialDoQ(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), hangBound)
		st, err := c.OpenStreamSync(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		st.Write(stream)
		st.Close()
		_, err = io.ReadAll(st)
		var ae *quic.ApplicationError
		if !errors.As(err, &ae) || ae.ErrorCode != transport.DoQProtocolError || !ae.Remote {
			t.Errorf("%s: %v, want the server's DOQ_PROTOCOL_ERROR", name, err)
		}
	}
	if n := e.metricWith(t, "shardns_dns_doq_errors_total", "code", "DOQ_PROTOCOL_ERROR"); n != 4 {
		t.Errorf("doq_errors_total{DOQ_PROTOCOL_ERROR} = %v, want 4", n)
	}
}

// A certificate reloaded while the listeners run is presented from the
// next handshake on, over DoT, DoH and DoQ; a connection made before
// keeps working.
func TestEncryptedCertificateReload(t *testing.T) {
	e := &encEnv{env: start(t, newHandler(), transport.Config{}), ca: testcerts.NewCA(t, "reload CA")}
	first, second := e.ca.Server(t, "first", "127.0.0.1"), e.ca.Server(t, "second", "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	copyTo := func(p testcerts.Pair) {
		for src, dst := range map[string]string{p.Cert: certFile, p.Key: keyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	copyTo(first)
	cert := e.listenAll(t, certFile, keyFile)
	// serials are the certificates' serial numbers each listener presents
	// to a new connection.
	serials := func() [3]string {
		var out [3]string
		dot := e.dialDoT(t)
		out[0] = dot.ConnectionState().PeerCertificates[0].SerialNumber.String()
		dot.Close()
		h, err := tls.DialWithDialer(&net.Dialer{Timeout: hangBound}, "tcp", e.doh, e.clientTLS("h2"))
		if err != nil {
			t.Fatal(err)
		}
		out[1] = h.ConnectionState().PeerCertificates[0].SerialNumber.String()
		h.Close()
		q := e.dialDoQ(t, nil)
		out[2] = q.ConnectionState().TLS.PeerCertificates[0].SerialNumber.String()
		q.CloseWithError(0, "")
		return out
	}
	before := serials()
	if before[0] != before[1] || before[1] != before[2] {
		t.Fatalf("listeners present different certificates: %v", before)
	}
	kept := e.dialDoT(t)
	copyTo(second)
	if err := cert.Reload(); err != nil {
		t.Fatal(err)
	}
	after := serials()
	for i, proto := range []string{"dot", "doh", "doq"} {
		if after[i] == before[i] {
			t.Errorf("%s presents the first certificate after Reload", proto)
		}
	}
	send(t, kept, framed(query(t, "a", 9)))
	if id := readReply(t, kept); id != 9 {
		t.Errorf("connection made before Reload: reply %d, want 9", id)
	}
	// Files that do not load leave the served certificate as it was.
	if err := os.WriteFile(keyFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cert.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	if got := serials(); got != after {
		t.Errorf("after a failed Reload: %v, want %v", got, after)
	}
}

// A listener without a certificate is refused at once, saying which.
func TestEncryptedNeedsCertificate(t *testing.T) {
	e := start(t, newHandler(), transport.Config{})
	for name, listen := range map[string]func([]string, *tls.Config) ([]net.Addr, error){
		"dot": e.srv.ListenDoT, "doh": e.srv.ListenDoH, "doq": e.srv.ListenDoQ,
	} {
		for _, cfg := range []*tls.Config{nil, {}} {
			if _, err := listen([]string{"127.0.0.1:0"}, cfg); err == nil || !strings.Contains(err.Error(), name+" needs a TLS configuration") {
				t.Errorf("%s with %v: %v", name, cfg, err)
			}
		}
	}
}
