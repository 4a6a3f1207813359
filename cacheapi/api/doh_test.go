package api

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dohQuery packs a query for name and qtype with the given ID.
func dohQuery(t testing.TB, name string, qtype uint16, id uint16, edns bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	if edns {
		m.SetEdns0(4096, true)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dohGetQuery sends wire as GET /dns-query?dns=<base64url>.
func dohGetQuery(t testing.TB, srv *member, wire []byte) (*http.Response, []byte) {
	t.Helper()
	return do(t, srv.srv, http.MethodGet, "/dns-query?dns="+base64.RawURLEncoding.EncodeToString(wire), nil, nil)
}

var dnsMessage = http.Header{"Content-Type": {mimeDNSMessage}}

func dohPostQuery(t testing.TB, srv *member, wire []byte) (*http.Response, []byte) {
	t.Helper()
	return do(t, srv.srv, http.MethodPost, "/dns-query", dnsMessage, wire)
}

// mustDNS checks a DoH answer and returns it parsed.
func mustDNS(t testing.TB, what string, resp *http.Response, body []byte, id uint16) *dns.Msg {
	t.Helper()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mimeDNSMessage {
		t.Fatalf("%s: status %d type %q: %s", what, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	m := new(dns.Msg)
	if err := m.Unpack(body); err != nil {
		t.Fatalf("%s: answer does not parse: %v", what, err)
	}
	if m.Id != id || !m.Response {
		t.Errorf("%s: ID %#x QR %v, want the query's ID %#x", what, m.Id, m.Response, id)
	}
	return m
}

func TestDoHRoundTrip(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	for _, c := range []struct {
		name string
		send func(testing.TB, *member, []byte) (*http.Response, []byte)
	}{{"GET", dohGetQuery}, {"POST", dohPostQuery}} {
		for _, id := range []uint16{0, 0xBEEF} { // RFC 8484 clients use 0; echo any
			resp, body := c.send(t, m, dohQuery(t, "www.example.test.", dns.TypeA, id, false))
			ans := mustDNS(t, c.name, resp, body, id)
			if len(ans.Answer) != 1 || ans.Answer[0].(*dns.A).A.String() != "192.0.2.1" || ans.Rcode != dns.RcodeSuccess {
				t.Errorf("%s: answer %v", c.name, ans.Answer)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "max-age="+strconv.FormatUint(uint64(ans.Answer[0].Header().Ttl), 10) {
				t.Errorf("%s: Cache-Control %q, answer TTL %d", c.name, cc, ans.Answer[0].Header().Ttl)
			}
		}
	}
	// EDNS with DO: the reply carries an OPT record with DO.
	resp, body := dohPostQuery(t, m, dohQuery(t, "www.example.test.", dns.TypeAAAA, 7, true))
	ans := mustDNS(t, "EDNS", resp, body, 7)
	if opt := ans.IsEdns0(); opt == nil || !opt.Do() || len(ans.Answer) != 1 {
		t.Errorf("EDNS answer: OPT %v, answers %v", ans.IsEdns0(), ans.Answer)
	}
	// NXDOMAIN: fresh for the negative TTL (RFC 2308: min(300, 60)).
	resp, body = dohGetQuery(t, m, dohQuery(t, "nope.example.test.", dns.TypeA, 9, false))
	if ans := mustDNS(t, "NXDOMAIN", resp, body, 9); ans.Rcode != dns.RcodeNameError || resp.Header.Get("Cache-Control") != "max-age=60" {
		t.Errorf("NXDOMAIN: rcode %d Cache-Control %q", ans.Rcode, resp.Header.Get("Cache-Control"))
	}
	// The question's case comes back as sent.
	resp, body = dohGetQuery(t, m, dohQuery(t, "WwW.Example.TEST.", dns.TypeA, 1, false))
	if ans := mustDNS(t, "0x20", resp, body, 1); ans.Question[0].Name != "WwW.Example.TEST." {
		t.Errorf("question %q", ans.Question[0].Name)
	}
}

func TestDoHDNSErrorsAre200(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, newForwarder(t, deadAddr(t), time.Second)), nil)
	notify := new(dns.Msg)
	notify.SetNotify("example.test.")
	notify.Id = 11
	two := new(dns.Msg)
	two.SetQuestion("a.example.test.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	two.Id = 12
	v1 := new(dns.Msg)
	v1.SetQuestion("a.example.test.", dns.TypeA)
	v1.SetEdns0(1232, false)
	v1.IsEdns0().SetVersion(1)
	v1.Id = 13
	any := new(dns.Msg)
	any.SetQuestion("www.example.test.", dns.TypeANY)
	any.Id = 14
	axfr := new(dns.Msg)
	axfr.SetQuestion("example.test.", dns.TypeAXFR)
	axfr.Id = 15
	fail := new(dns.Msg)
	fail.SetQuestion("www.example.net.", dns.TypeA) // forwarded to a dead upstream
	fail.SetEdns0(1232, false)
	fail.Id = 16
	for _, c := range []struct {
		name  string
		q     *dns.Msg
		rcode int
	}{
		{"NOTIFY", notify, dns.RcodeNotImplemented},
		{"two questions", two, dns.RcodeFormatError},
		{"EDNS version 1", v1, dns.RcodeBadVers},
		{"ANY", any, dns.RcodeSuccess},
		{"AXFR", axfr, dns.RcodeRefused},
		{"resolver down", fail, dns.RcodeServerFailure},
	} {
		wire, err := c.q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		resp, body := dohPostQuery(t, m, wire)
		ans := mustDNS(t, c.name, resp, body, c.q.Id)
		if ans.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[ans.Rcode], dns.RcodeToString[c.rcode])
		}
		if c.rcode != dns.RcodeSuccess && resp.Header.Get("Cache-Control") != "max-age=0" {
			t.Errorf("%s: Cache-Control %q", c.name, resp.Header.Get("Cache-Control"))
		}
	}
	// The SERVFAIL says why (RFC 8914).
	wire, _ := fail.Pack()
	_, body := dohGetQuery(t, m, wire)
	ans := new(dns.Msg)
	if err := ans.Unpack(body); err != nil || ans.IsEdns0() == nil || len(ans.IsEdns0().Option) != 1 {
		t.Errorf("SERVFAIL without an EDE: %v %v", err, ans)
	}
}

func TestDoHBadRequests(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	good := dohQuery(t, "www.example.test.", dns.TypeA, 0, false)
	enc := base64.RawURLEncoding.EncodeToString(good)
	response := bytes.Clone(good)
	response[2] |= 0x80
	countsLie := bytes.Clone(good)
	countsLie[7] = 2 // ANCOUNT 2, and no answer records
	for _, c := range []struct {
		what, path string
		code       int
	}{
		{"no dns parameter", "/dns-query", http.StatusBadRequest},
		{"padding", "/dns-query?dns=" + base64.URLEncoding.EncodeToString(good[:len(good)-1]), http.StatusBadRequest},
		{"standard alphabet", "/dns-query?dns=" + strings.NewReplacer("-", "+", "_", "/").Replace(enc) + "%2B%2F", http.StatusBadRequest},
		{"not base64", "/dns-query?dns=%21%21%21", http.StatusBadRequest},
		{"two dns parameters", "/dns-query?dns=" + enc + "&dns=" + enc, http.StatusBadRequest},
		{"short", "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(good[:5]), http.StatusBadRequest},
		{"truncated in the name", "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(good[:16]), http.StatusBadRequest},
		{"a response", "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(response), http.StatusBadRequest},
		{"query string too long", "/dns-query?dns=" + strings.Repeat("A", maxURI), http.StatusRequestURITooLong},
	} {
		resp, body := do(t, m.srv, http.MethodGet, c.path, nil, nil)
		mustJSONError(t, c.what, resp, body, c.code)
	}
	for _, c := range []struct {
		what  string
		ctype string
		body  []byte
		code  int
	}{
		{"no content type", "", good, http.StatusUnsupportedMediaType},
		{"JSON body", "application/json", good, http.StatusUnsupportedMediaType},
		{"bad media type", "application/dns-message; ;", good, http.StatusUnsupportedMediaType},
		{"too big", mimeDNSMessage, make([]byte, maxDNSMessage+1), http.StatusRequestEntityTooLarge},
		{"empty", mimeDNSMessage, []byte{}, http.StatusBadRequest},
		{"garbage", mimeDNSMessage, bytes.Repeat([]byte{0xff}, 40), http.StatusBadRequest},
		{"a response", mimeDNSMessage, response, http.StatusBadRequest},
		{"counts that lie", mimeDNSMessage, countsLie, http.StatusBadRequest},
	} {
		h := http.Header{}
		if c.ctype != "" {
			h.Set("Content-Type", c.ctype)
		}
		resp, body := do(t, m.srv, http.MethodPost, "/dns-query", h, c.body)
		mustJSONError(t, "POST "+c.what, resp, body, c.code)
	}
	// A body too big with no Content-Length (chunked) is cut off too.
	resp, body := do(t, m.srv, http.MethodPost, "/dns-query", dnsMessage, nil)
	mustJSONError(t, "POST no body", resp, body, http.StatusBadRequest)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, m.srv.URL+"/dns-query", struct{ *bytes.Reader }{bytes.NewReader(make([]byte, 70000))})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mimeDNSMessage)
	r2, err := m.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body of 70000 bytes: %d", r2.StatusCode)
	}
	resp, body = do(t, m.srv, http.MethodPut, "/dns-query", dnsMessage, good)
	mustJSONError(t, "PUT", resp, body, http.StatusMethodNotAllowed)
}

func TestDoHJSON(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	for _, c := range []struct {
		path   string
		header http.Header
	}{
		{"/dns-query?name=www.example.test&type=AAAA", http.Header{"Accept": {"application/dns-json"}}},
		{"/dns-query?name=www.example.test&type=AAAA", http.Header{"Accept": {"text/html, application/dns-json;q=0.9"}}},
		{"/dns-query?name=www.example.test&type=AAAA&ct=application/dns-json", nil},
	} {
		resp, body := do(t, m.srv, http.MethodGet, c.path, c.header, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != mimeDNSJSON {
			t.Errorf("%s %v: %d %q", c.path, c.header, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		a := decodeAnswer(t, body)
		if len(a.Answer) != 1 || a.Answer[0].Data != "2001:db8::1" || a.Source == "" {
			t.Errorf("%s: %+v", c.path, a)
		}
	}
	resp, body := do(t, m.srv, http.MethodGet, "/dns-query?name=a..b", http.Header{"Accept": {mimeDNSJSON}}, nil)
	mustJSONError(t, "dns-json with a bad name", resp, body, http.StatusBadRequest)
}
