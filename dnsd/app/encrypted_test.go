package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/testcerts"
)

// encZones is a zone directory for the encrypted listeners' tests:
// web.example.test is on loopback, for curl to reach through DoH.
func encZones(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	zone := "$TTL 300\n" +
		"@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60\n" +
		"  IN NS ns1.example.test.\n" +
		"ns1 IN A 127.0.0.53\n" +
		"www 120 IN A 192.0.2.9\n" +
		"www 60 IN A 192.0.2.10\n" +
		"web IN A 127.0.0.1\n" +
		"txt IN TXT \"encrypted\"\n"
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// encDNSD is dnsd running in-process with every encrypted listener.
type encDNSD struct {
	udp, dot, doh, doq string
	ca                 *testcerts.CA
	logs               *procs.Buffer
}

var encBound = regexp.MustCompile(`msg="dnsd encrypted listeners" dot=tcp/([0-9.:]+) doh=tcp/([0-9.:]+) doq=udp/([0-9.:]+)`)

// startEncrypted runs dnsd with -dot, -doh and -doq on loopback, a
// certificate for 127.0.0.1 from a CA of the test's own, and extra flags.
func startEncrypted(t *testing.T, extra ...string) *encDNSD {
	t.Helper()
	ca := testcerts.NewCA(t, "dnsd test CA")
	pair := ca.Server(t, "dnsd", "127.0.0.1", "dns.example.test")
	args := append([]string{
		"-listen", "127.0.0.1:0", "-upstream", upstream(t), "-zones", encZones(t),
		"-dot", "127.0.0.1:0", "-doh", "127.0.0.1:0", "-doq", "127.0.0.1:0",
		"-tls-cert", pair.Cert, "-tls-key", pair.Key, "-drain-timeout", "3s",
	}, extra...)
	var cfg Config
	procs.Parse(t, &cfg, args...)
	udp, logs, stop := procs.RunInProcess(t, "dnsd", boundUDP, func(ctx context.Context, log *slog.Logger) error {
		return Run(ctx, cfg, log)
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("dnsd: %v", err)
		}
	})
	m := encBound.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no encrypted listeners in the log:\n%s", logs.String())
	}
	return &encDNSD{udp: udp, dot: m[1], doh: m[2], doq: m[3], ca: ca, logs: logs}
}

// answer is what the tests compare: the rcode and the answer records,
// TTLs aside (a cached answer's count down).
type answer struct {
	rcode string
	rrs   []string
}

func answerOf(r *dns.Msg) answer {
	a := answer{rcode: dns.RcodeToString[r.Rcode]}
	for _, rr := range r.Answer {
		rr.Header().Ttl = 0
		a.rrs = append(a.rrs, rr.String())
	}
	slices.Sort(a.rrs)
	return a
}

func (a answer) equal(b answer) bool { return a.rcode == b.rcode && slices.Equal(a.rrs, b.rrs) }

func (a answer) String() string { return a.rcode + " " + strings.Join(a.rrs, " | ") }

func udpAnswer(t *testing.T, addr, name string, qtype uint16) answer {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(q, addr)
	if err != nil {
		t.Fatalf("udp %s: %v", name, err)
	}
	return answerOf(r)
}

var (
	statusLine = regexp.MustCompile(`status: ([A-Z]+)`)
	// The transport each tool says it used.
	viaLine = map[string]*regexp.Regexp{
		"kdig +tls":       regexp.MustCompile(`(?m)^;; TLS session`),
		"kdig +https":     regexp.MustCompile(`(?m)^;; HTTP session \(HTTP/2-POST\)`),
		"kdig +https-get": regexp.MustCompile(`(?m)^;; HTTP session \(HTTP/2-GET\)`),
		"dig +tls":        regexp.MustCompile(`(?m)^;; SERVER: .*\(TLS\)`),
		"dig +https":      regexp.MustCompile(`(?m)^;; SERVER: .*\(HTTPS\)`),
		"dig +https-get":  regexp.MustCompile(`(?m)^;; SERVER: .*\(HTTPS-GET\)`),
	}
)

// parseToolAnswer reads the status and the answer section of dig's or
// kdig's output.
func parseToolAnswer(t *testing.T, out string) answer {
	t.Helper()
	m := statusLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no status in:\n%s", out)
	}
	a := answer{rcode: m[1]}
	_, section, ok := strings.Cut(out, ";; ANSWER SECTION:\n")
	if !ok {
		return a
	}
	for line := range strings.SplitSeq(section, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, ";;") {
			break
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("answer line %q: %v", line, err)
		}
		rr.Header().Ttl = 0
		a.rrs = append(a.rrs, rr.String())
	}
	slices.Sort(a.rrs)
	return a
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// doqExchange asks q over DoQ as RFC 9250 says: a stream of its own,
// message ID 0, a 2-byte length, FIN; the reply is read to the stream's
// end.
func doqExchange(ctx context.Context, conn *quic.Conn, q *dns.Msg) (*dns.Msg, error) {
	q = q.Copy()
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	st.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Write(binary.BigEndian.AppendUint16(nil, uint16(len(wire)))); err != nil {
		return nil, err
	}
	if _, err := st.Write(wire); err != nil {
		return nil, err
	}
	st.Close()
	b, err := io.ReadAll(st)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return nil, fmt.Errorf("doq reply of %d bytes: bad length prefix", len(b))
	}
	r := new(dns.Msg)
	return r, r.Unpack(b[2:])
}

func dialDoQ(t *testing.T, e *encDNSD) (*quic.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return quic.DialAddr(ctx, e.doq, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"doq"}}, &quic.Config{HandshakeIdleTimeout: 5 * time.Second})
}

// Every encrypted listener, asked by real clients (kdig, dig, a Go DoQ
// client), gives the answer UDP gives for the same question.
func TestEncryptedAnswersEqualUDP(t *testing.T) {
	e := startEncrypted(t)
	dotHost, dotPort := hostPort(t, e.dot)
	dohHost, dohPort := hostPort(t, e.doh)
	questions := []struct {
		name  string
		qtype uint16
	}{
		{"www.example.test.", dns.TypeA},   // two records, from a local zone
		{"txt.example.test.", dns.TypeTXT}, // another type
		{"nx.example.test.", dns.TypeA},    // NXDOMAIN
		{"up.test.", dns.TypeA},            // from the upstream
	}
	qc, err := dialDoQ(t, e)
	if err != nil {
		t.Fatalf("doq dial: %v", err)
	}
	defer qc.CloseWithError(0, "")
	if p := qc.ConnectionState().TLS.NegotiatedProtocol; p != "doq" {
		t.Errorf("doq ALPN %q", p)
	}
	for _, q := range questions {
		want := udpAnswer(t, e.udp, q.name, q.qtype)
		if want.rcode == "NOERROR" && len(want.rrs) == 0 {
			t.Fatalf("udp %s: an empty answer; the test wants records", q.name)
		}
		qt := dns.TypeToString[q.qtype]
		tools := map[string][]string{
			"kdig +tls":       {"kdig", "@" + dotHost, "-p", dotPort, "+tls", "+tls-ca=" + e.ca.File, "+tls-hostname=127.0.0.1", q.name, qt},
			"kdig +https":     {"kdig", "@" + dohHost, "-p", dohPort, "+https", "+tls-ca=" + e.ca.File, "+tls-hostname=127.0.0.1", q.name, qt},
			"kdig +https-get": {"kdig", "@" + dohHost, "-p", dohPort, "+https-get", "+tls-ca=" + e.ca.File, "+tls-hostname=127.0.0.1", q.name, qt},
			"dig +tls":        {"dig", "@" + dotHost, "-p", dotPort, "+tls", "+tls-ca=" + e.ca.File, "+tls-hostname=127.0.0.1", q.name, qt},
			"dig +https":      {"dig", "@" + dohHost, "-p", dohPort, "+https", "+tls-ca=" + e.ca.File, "+tls-hostname=127.0.0.1", q.name, qt},
			"dig +https-get":  {"dig", "@" + dohHost, "-p", dohPort, "+https-get", "+tls-ca=" + e.ca.File, "+tls-hostname=127.0.0.1", q.name, qt},
		}
		for tool, cmd := range tools {
			out := runTool(t, cmd[0], cmd[1:]...)
			if !viaLine[tool].MatchString(out) {
				t.Errorf("%s %s: the output does not show the transport (%s):\n%s", tool, q.name, viaLine[tool], out)
			}
			if got := parseToolAnswer(t, out); !got.equal(want) {
				t.Errorf("%s %s %s: %v; udp: %v\n%s", tool, q.name, qt, got, want, out)
			}
		}
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := doqExchange(ctx, qc, m)
		cancel()
		if err != nil {
			t.Fatalf("doq %s: %v", q.name, err)
		}
		if r.Id != 0 {
			t.Errorf("doq reply ID %d, want 0", r.Id)
		}
		if got := answerOf(r); !got.equal(want) {
			t.Errorf("doq %s %s: %v; udp: %v", q.name, qt, got, want)
		}
	}
}

// curl resolves a name of a local zone through dnsd's DoH listener,
// verified with the test's CA, and fetches a page from it.
func TestCurlThroughDoH(t *testing.T) {
	e := startEncrypted(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "served to %s", r.Host)
	}), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	_, port := hostPort(t, ln.Addr().String())
	url := "http://web.example.test:" + port + "/"
	out := runTool(t, "curl", "-sS", "--max-time", "15", "--doh-url", "https://"+e.doh+"/dns-query", "--cacert", e.ca.File, url)
	if want := "served to web.example.test:" + port; out != want {
		t.Errorf("curl %s: %q, want %q", url, out, want)
	}
	// A CA the listener's certificate is not from: curl refuses it.
	other := testcerts.NewCA(t, "another CA")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "15", "--doh-url", "https://"+e.doh+"/dns-query", "--cacert", other.File, url).CombinedOutput()
	if err == nil {
		t.Errorf("curl with another CA fetched %q", bad)
	}
}

// dohClient is an HTTP/2 client trusting the test's CA.
func dohClient(e *encDNSD) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1"},
		ForceAttemptHTTP2: true,
	}}
}

// DoH's HTTP side: Cache-Control from the answer's smallest TTL, and
// the status codes of RFC 8484 for requests it cannot serve.
func TestDoHRequests(t *testing.T) {
	e := startEncrypted(t)
	c := dohClient(e)
	base := "https://" + e.doh + "/dns-query"
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, url, ctype string, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	get := base + "?dns=" + base64.RawURLEncoding.EncodeToString(wire)
	for _, r := range []struct {
		method, url, ctype string
		body               []byte
	}{{"GET", get, "", nil}, {"POST", base, "application/dns-message", wire}} {
		resp, b := do(r.method, r.url, r.ctype, r.body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/dns-message" {
			t.Fatalf("%s: %s %q", r.method, resp.Status, b)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("%s over %s, want HTTP/2", r.method, resp.Proto)
		}
		// The smallest TTL of the two records (60 and 120); the cache
		// may have counted down since.
		var maxAge int
		if _, err := fmt.Sscanf(resp.Header.Get("Cache-Control"), "max-age=%d", &maxAge); err != nil || maxAge > 60 || maxAge < 50 {
			t.Errorf("%s: Cache-Control %q, want max-age near 60", r.method, resp.Header.Get("Cache-Control"))
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil || len(m.Answer) != 2 {
			t.Errorf("%s: reply %v, %v", r.method, m, err)
		}
	}
	big := make([]byte, 65536)
	copy(big, wire)
	short := base + "?dns=" + base64.RawURLEncoding.EncodeToString(wire[:5])
	for _, bad := range []struct {
		name, method, url, ctype string
		body                     []byte
		want                     int
	}{
		{"PUT", "PUT", base, "application/dns-message", wire, 405},
		{"DELETE", "DELETE", base, "", nil, 405},
		{"wrong content type", "POST", base, "application/json", wire, 415},
		{"no content type", "POST", base, "", wire, 415},
		{"body over 65535", "POST", base, "application/dns-message", big, 413},
		{"no dns parameter", "GET", base, "", nil, 400},
		{"padded base64", "GET", get + "=", "", nil, 400},
		{"not base64", "GET", base + "?dns=***", "", nil, 400},
		{"shorter than a header", "GET", short, "", nil, 400},
		{"empty body", "POST", base, "application/dns-message", nil, 400},
		{"other path", "GET", "https://" + e.doh + "/other", "", nil, 404},
	} {
		resp, b := do(bad.method, bad.url, bad.ctype, bad.body)
		if resp.StatusCode != bad.want {
			t.Errorf("%s: %s %q, want %d", bad.name, resp.Status, b, bad.want)
		}
	}
	// HTTP/1.1 is served too.
	h1 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	resp, err := h1.Get(get)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Errorf("HTTP/1.1 GET: %s %s", resp.Proto, resp.Status)
	}
}

// queryMsg is a query for name's A records.
func queryMsg(name string) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	return q
}

// A client outside -allow: its DoT connection is closed at accept, DoH
// answers it 403, its DoQ connection is closed with an RFC 9250 error
// code once the handshake is done.
func TestEncryptedACL(t *testing.T) {
	e := startEncrypted(t, "-allow", "10.0.0.0/8")
	if r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(queryMsg("www.example.test."), e.udp); err != nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("udp from outside -allow: %v, %v; want REFUSED", r, err)
	}
	dot := &dns.Client{Net: "tcp-tls", Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"dot"}}}
	if r, _, err := dot.Exchange(queryMsg("www.example.test."), e.dot); err == nil {
		t.Errorf("dot from outside -allow answered: %v", r)
	}
	resp, err := dohClient(e).Get("https://" + e.doh + "/dns-query?dns=" + packB64(t, queryMsg("www.example.test.")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("doh from outside -allow: %s, want 403", resp.Status)
	}
	qc, err := dialDoQ(t, e)
	if err == nil {
		_, err = doqExchange(context.Background(), qc, queryMsg("www.example.test."))
	}
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || ae.ErrorCode != 0x5 {
		t.Errorf("doq from outside -allow: %v, want DOQ_UNSPECIFIED_ERROR (0x5) from the server", err)
	}
}

func packB64(t *testing.T, m *dns.Msg) string {
	t.Helper()
	m.Id = 0
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// -rate-limit applies to UDP only, as for TCP: a client whose UDP
// queries are dropped over the limit has every DoT, DoH and DoQ query
// answered (a completed handshake proves its address).
func TestEncryptedRateLimit(t *testing.T) {
	e := startEncrypted(t, "-rate-limit", "1", "-rate-slip", "0", "-cookies=false")
	const n = 20
	udp := &dns.Client{Timeout: 300 * time.Millisecond}
	answered := 0
	for range n {
		if _, _, err := udp.Exchange(queryMsg("www.example.test."), e.udp); err == nil {
			answered++
		}
	}
	if answered >= n/2 {
		t.Fatalf("udp: %d of %d answered at 1 query/s; the limit does not bite", answered, n)
	}
	dot := &dns.Client{Net: "tcp-tls", Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"dot"}}}
	conn, err := dot.Dial(e.dot)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	qc, err := dialDoQ(t, e)
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	hc := dohClient(e)
	for i := range n {
		if r, _, err := dot.ExchangeWithConn(queryMsg("www.example.test."), conn); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("dot query %d: %v, %v", i, r, err)
		}
		if r, err := doqExchange(context.Background(), qc, queryMsg("www.example.test.")); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("doq query %d: %v, %v", i, r, err)
		}
		resp, err := hc.Get("https://" + e.doh + "/dns-query?dns=" + packB64(t, queryMsg("www.example.test.")))
		if err != nil {
			t.Fatalf("doh query %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("doh query %d: %s", i, resp.Status)
		}
	}
}

// -max-tcp-per-client counts DoT, DoH and DoQ connections with TCP's: a
// client holding its one connection over DoT has its DoH connection
// closed at accept and its DoQ one closed with DOQ_EXCESSIVE_LOAD; once
// the DoT connection closes, DoH serves it again.
func TestEncryptedConnectionCaps(t *testing.T) {
	e := startEncrypted(t, "-max-tcp-per-client", "1")
	dot := &dns.Client{Net: "tcp-tls", Timeout: 5 * time.Second, TLSConfig: &tls.Config{RootCAs: e.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"dot"}}}
	conn, err := dot.Dial(e.dot)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dot.ExchangeWithConn(queryMsg("www.example.test."), conn); err != nil {
		t.Fatalf("dot: %v", err)
	}
	get := "https://" + e.doh + "/dns-query?dns=" + packB64(t, queryMsg("www.example.test."))
	if resp, err := dohClient(e).Get(get); err == nil {
		resp.Body.Close()
		t.Errorf("doh over the per-client cap: %s, want the connection closed", resp.Status)
	}
	qc, err := dialDoQ(t, e)
	if err == nil {
		_, err = doqExchange(context.Background(), qc, queryMsg("www.example.test."))
	}
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || ae.ErrorCode != 0x4 {
		t.Errorf("doq over the per-client cap: %v, want DOQ_EXCESSIVE_LOAD (0x4) from the server", err)
	}
	conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := dohClient(e).Get(get)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("doh after the dot connection closed: %s", resp.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("doh still refused after the dot connection closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Encrypted listeners without a certificate, or a certificate without a
// listener, are refused at start with a clear error.
func TestEncryptedFlagErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "flags CA")
	pair := ca.Server(t, "dnsd", "127.0.0.1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dot", "127.0.0.1:0"}, "need -tls-cert and -tls-key"},
		{[]string{"-doh", "127.0.0.1:0", "-tls-cert", pair.Cert}, "need -tls-cert and -tls-key"},
		{[]string{"-tls-cert", pair.Cert, "-tls-key", pair.Key}, "none is set"},
		{[]string{"-doq", "127.0.0.1:0", "-tls-cert", pair.Cert, "-tls-key", pair.Cert}, "no PEM private key"},
	} {
		var cfg Config
		procs.Parse(t, &cfg, append([]string{"-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1", "-zones", encZones(t)}, tc.args...)...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := Run(ctx, cfg, slog.New(slog.DiscardHandler))
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
