package forward

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve runs srv until the returned stop function (also run at cleanup).
func serve(t testing.TB, srv *dns.Server) (stop func()) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start in 5s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = srv.Shutdown()
			<-errc
		})
	}
	t.Cleanup(stop)
	return stop
}

// startUDP serves h over UDP on addr ("127.0.0.1:0" for a free port).
func startUDP(t testing.TB, addr string, h dns.Handler) (string, func()) {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop := serve(t, &dns.Server{PacketConn: pc, Handler: h})
	return pc.LocalAddr().String(), stop
}

// startTCP serves h over TCP on addr.
func startTCP(t testing.TB, addr string, h dns.Handler) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop := serve(t, &dns.Server{Listener: ln, Handler: h})
	return ln.Addr().String(), stop
}

// startBoth serves h over UDP and TCP on the same loopback port.
func startBoth(t testing.TB, h dns.Handler) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		serve(t, &dns.Server{PacketConn: pc, Handler: h})
		serve(t, &dns.Server{Listener: ln, Handler: h})
		return pc.LocalAddr().String()
	}
	t.Fatal("no free port for UDP and TCP")
	return ""
}

// startTLS serves h over DNS over TLS with cert.
func startTLS(t testing.TB, h dns.Handler, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, &dns.Server{Listener: ln, Net: "tcp-tls", Handler: h})
	return ln.Addr().String()
}

// closedUDPPort returns a loopback UDP address nobody listens on.
func closedUDPPort(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// blackhole returns a UDP address that reads datagrams and never answers,
// and a function reporting how many it read.
func blackhole(t testing.TB) (string, func() int) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu sync.Mutex
		n  int
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for range 1_000_000 {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// reply builds an answer to r carrying an A record (an echo of r's OPT,
// as a real server would).
func reply(r *dns.Msg, ip string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Answer = append(m.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.ParseIP(ip),
	})
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	return m
}

// answerA answers every query with an A record of ip.
func answerA(ip string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) { _ = w.WriteMsg(reply(r, ip)) }
}

// answerRcode answers every query with rcode and no records.
func answerRcode(rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		_ = w.WriteMsg(m)
	}
}

// answerBare answers every query with rcode, a header and nothing else:
// no question, as NSD refuses a class it does not serve.
func answerBare(rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		m.Question = nil
		_ = w.WriteMsg(m)
	}
}

// recorder wraps a handler and records each query, its transport and peer.
type recorder struct {
	next    dns.Handler
	mu      sync.Mutex
	queries []*dns.Msg
	nets    []string
	remotes []net.Addr
}

func (rec *recorder) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	rec.mu.Lock()
	rec.queries = append(rec.queries, r.Copy())
	rec.nets = append(rec.nets, w.LocalAddr().Network())
	rec.remotes = append(rec.remotes, w.RemoteAddr())
	rec.mu.Unlock()
	rec.next.ServeDNS(w, r)
}

func (rec *recorder) snapshot() ([]*dns.Msg, []string, []net.Addr) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*dns.Msg(nil), rec.queries...), append([]string(nil), rec.nets...), append([]net.Addr(nil), rec.remotes...)
}

// bigTXT answers TXT queries with an RRset of about 2000 bytes, truncated
// (TC=1) over UDP as a real server would.
func bigTXT(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	for i := range 10 {
		m.Answer = append(m.Answer, &dns.TXT{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
			Txt: []string{strings.Repeat(string(rune('a'+i)), 200)},
		})
	}
	if w.LocalAddr().Network() == "udp" {
		size := dns.MinMsgSize
		if o := r.IsEdns0(); o != nil {
			size = int(o.UDPSize())
			m.SetEdns0(o.UDPSize(), o.Do())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// selfSigned makes a certificate for 127.0.0.1 and "dns.test", and a pool
// that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dns.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"dns.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// newForwarder builds a Forwarder closed at cleanup.
func newForwarder(t testing.TB, cfg Config) *Forwarder {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// query makes an A query for name with a fixed ID.
func query(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = 4242
	return q
}

// firstA returns the address of the first A record in m, or "".
func firstA(m *dns.Msg) string {
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// waitFor polls cond every 10ms for at most 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
