package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dohSeeds are queries to seed the DoH fuzzers with.
func dohSeeds(t testing.TB) [][]byte {
	t.Helper()
	notify := new(dns.Msg)
	notify.SetNotify("example.test.")
	two := new(dns.Msg)
	two.SetQuestion("www.example.test.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	seeds := [][]byte{
		dohQuery(t, "www.example.test.", dns.TypeA, 0, false),
		dohQuery(t, "www.example.test.", dns.TypeAAAA, 0xBEEF, true),
		dohQuery(t, "nope.example.test.", dns.TypeMX, 3, false),
		dohQuery(t, "example.test.", dns.TypeANY, 4, true),
		dohQuery(t, "example.test.", dns.TypeAXFR, 5, false),
		dohQuery(t, ".", dns.TypeNS, 6, false),
		{},
		make([]byte, 12),
		bytes.Repeat([]byte{0xff}, 30),
	}
	for _, m := range []*dns.Msg{notify, two} {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// checkDoH checks one DoH answer: 200 with a DNS answer to the query's ID,
// or a JSON error with one of the allowed statuses.
func checkDoH(t *testing.T, what string, rec *httptest.ResponseRecorder, query []byte, allowed ...int) {
	t.Helper()
	if rec.Code == http.StatusOK && rec.Header().Get("Content-Type") == mimeDNSMessage {
		m := new(dns.Msg)
		if err := m.Unpack(rec.Body.Bytes()); err != nil {
			t.Fatalf("%s: answer does not parse: %v", what, err)
		}
		if len(query) >= 2 && m.Id != binary.BigEndian.Uint16(query) {
			t.Fatalf("%s: answer ID %#x, query ID %#x", what, m.Id, binary.BigEndian.Uint16(query))
		}
		if !m.Response || !strings.HasPrefix(rec.Header().Get("Cache-Control"), "max-age=") {
			t.Fatalf("%s: QR %v Cache-Control %q", what, m.Response, rec.Header().Get("Cache-Control"))
		}
		return
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%s: status %d, body not JSON: %q", what, rec.Code, rec.Body)
	}
	for _, c := range allowed {
		if rec.Code == c {
			return
		}
	}
	t.Fatalf("%s: status %d: %s", what, rec.Code, rec.Body)
}

// parsesAsQuery reports whether wire is a DNS query the DoH routes must
// answer with 200.
func parsesAsQuery(wire []byte) bool {
	if len(wire) < 12 || wire[2]&0x80 != 0 {
		return false
	}
	return new(dns.Msg).Unpack(wire) == nil
}

func serveFuzz(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req = req.WithContext(ctx)
	req.RemoteAddr = "127.0.0.1:5000"
	req.Host = "127.0.0.1:8080"
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzDoHGet sends arbitrary query strings to GET /dns-query, with and
// without Accept: application/dns-json.
func FuzzDoHGet(f *testing.F) {
	for _, q := range dohSeeds(f) {
		f.Add("dns="+base64.RawURLEncoding.EncodeToString(q), false)
	}
	for _, s := range []string{"", "dns=", "dns=%", "dns=AA==", "dns=+/", "dns=a&dns=b", "name=www.example.test&type=AAAA", "ct=application/dns-json&name=x", "name=a..b"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, raw string, wantJSON bool) {
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/dns-query", RawQuery: raw}, Header: http.Header{}}
		if wantJSON {
			req.Header.Set("Accept", mimeDNSJSON)
		}
		rec := serveFuzz(fx.handler, req)
		if len(raw)+len("/dns-query") > maxURI {
			if rec.Code != http.StatusRequestURITooLong {
				t.Fatalf("%d-byte query: %d", len(raw), rec.Code)
			}
			return
		}
		checkDoH(t, raw, rec, nil, http.StatusOK, http.StatusBadRequest, http.StatusServiceUnavailable, http.StatusGatewayTimeout)
		v, _ := url.ParseQuery(raw)
		if enc, ok := v["dns"]; ok && len(enc) == 1 {
			wire, err := base64.RawURLEncoding.DecodeString(enc[0])
			if err == nil && parsesAsQuery(wire) {
				if rec.Code != http.StatusOK {
					t.Fatalf("%q: a parsable query got %d: %s", raw, rec.Code, rec.Body)
				}
				checkDoH(t, raw, rec, wire)
			}
		}
	})
}

// FuzzDoHPost sends arbitrary bodies and content types to POST /dns-query.
func FuzzDoHPost(f *testing.F) {
	for _, q := range dohSeeds(f) {
		f.Add(q, mimeDNSMessage)
	}
	f.Add(dohSeeds(f)[0], "application/dns-message; charset=binary")
	f.Add(dohSeeds(f)[0], "text/plain")
	f.Add(dohSeeds(f)[0], "")
	f.Add(dohSeeds(f)[0], "application/dns-message;;;")
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		req := &http.Request{
			Method: http.MethodPost, URL: &url.URL{Path: "/dns-query"},
			Header: http.Header{"Content-Type": {ctype}}, Body: httpBody(body), ContentLength: int64(len(body)),
		}
		rec := serveFuzz(fx.handler, req)
		checkDoH(t, "POST", rec, body, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
		if ctype == mimeDNSMessage && len(body) <= maxDNSMessage && parsesAsQuery(body) && rec.Code != http.StatusOK {
			t.Fatalf("a parsable query got %d: %s", rec.Code, rec.Body)
		}
	})
}

// FuzzCacheName sends arbitrary names and query strings to GET and DELETE
// /cache/{name} over an L1-only frontend.
func FuzzCacheName(f *testing.F) {
	for _, s := range []string{
		"www.example.test", "WWW.example.test.", "%2E", ".", "..", "a..b", "%2F", "0%2F25.2.0.192.in-addr.arpa",
		"a%5C.b", "%5C065.example.test", "*.example.test", strings.Repeat("a", 64), strings.Repeat("abcdefghi.", 26),
		"%00", "%FF%FE.example.test",
	} {
		for _, q := range []string{"", "type=AAAA", "type=0", "type=TYPE70000", "suffix=1", "suffix=x", "do=1&cd=1"} {
			f.Add(s, q, false)
			f.Add(s, q, true)
		}
	}
	m := newMember(f, testFlags(nil), zoneResolver(f, nil), nil)
	f.Fuzz(func(t *testing.T, seg, query string, del bool) {
		u, err := url.Parse("/cache/" + seg)
		if err != nil || strings.Contains(seg, "?") || strings.Contains(seg, "#") {
			return // no HTTP request carries it
		}
		u.RawQuery = query
		method := http.MethodGet
		if del {
			method = http.MethodDelete
		} else {
			// Something to find now and then.
			serveFuzz(m.h, &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/lookup", RawQuery: "name=www.example.test"}, Header: http.Header{}})
		}
		rec := serveFuzz(m.h, &http.Request{Method: method, URL: u, Header: http.Header{}})
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %q: body not JSON: %q", method, u, rec.Body)
		}
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestURITooLong:
		default:
			t.Fatalf("%s %q: status %d: %s", method, u, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			return
		}
		if del {
			var out flushed
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || !strings.HasSuffix(out.Name, ".") {
				t.Fatalf("DELETE %q: %s", u, rec.Body)
			}
			return
		}
		var e cacheEntry
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Tier != "l1" || e.TTLOriginal == 0 {
			t.Fatalf("GET %q: %s", u, rec.Body)
		}
	})
}

// httpBody is a request body over b.
func httpBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
