package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// FuzzParseLookup sends arbitrary raw query strings to GET /lookup through
// a real chain (local zone, no upstream). The handler must not panic and
// must answer 200, 400, 503 or 504 with a JSON body; a 200 answers the
// name and type asked, and parseLookup accepts only names the DNS can carry.
func FuzzParseLookup(f *testing.F) {
	for _, seed := range []string{
		"name=www.example.test&type=A",
		"name=www.example.test.&type=28",
		"name=WWW.EXAMPLE.TEST&type=aaaa&do=1&cd=true",
		"name=nope.example.test&type=MX",
		"name=www.example.net",
		"name=.",
		"name=",
		"",
		"type=A",
		"name=a..b",
		"name=" + strings.Repeat("a", 300),
		"name=" + strings.Repeat("abcdefghi.", 26),
		"name=www.example.test&type=TYPE65535",
		"name=www.example.test&type=0",
		"name=www.example.test&type=ANY",
		"name=www.example.test&type=AXFR",
		"name=www.example.test&type=OPT",
		"name=%00.example.test",
		`name=a\.b.example.test`,
		`name=\065.example.test`,
		`name=\`,
		"name=%ZZ&type=%",
		"name=www.example.test&name=other.test",
		"name=*.example.test&type=txt",
		"name=x;type=A",
		// Found by fuzzing: high octets near the 255-octet limit once grew
		// past it when lowercased as UTF-8 (500 from the stored answer).
		"name=" + strings.Repeat("0", 59) + "." + strings.Repeat("0", 59) + "." + strings.Repeat("0", 62) + "." +
			strings.Repeat("0", 49) + ".0000000%FF%FF00000000",
		"name=0%8F.example.test",
		"name=" + strings.Repeat("a", maxURI),
	} {
		f.Add(seed)
	}
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, raw string) {
		req := &http.Request{
			Method: http.MethodGet,
			URL:    &url.URL{Path: "/lookup", RawQuery: raw},
			Header: http.Header{},
		}
		rec := serveFuzz(fx.handler, req)

		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: body is not JSON: %q", raw, rec.Body)
		}
		if len(raw)+len("/lookup") > maxURI {
			if rec.Code != http.StatusRequestURITooLong {
				t.Fatalf("%d-byte query: status %d", len(raw), rec.Code)
			}
			return
		}
		q, msg := parseLookup(req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			t.Fatalf("%q: status %d: %s", raw, rec.Code, rec.Body)
		}
		// 400 exactly when parseLookup refuses the request; 503 and 504
		// are the chain's own failures (a loaded machine can hit the budget).
		if (msg != "") != (rec.Code == http.StatusBadRequest) {
			t.Fatalf("%q: parseLookup says %q, handler answered %d", raw, msg, rec.Code)
		}
		if msg != "" {
			return
		}
		if _, ok := dns.IsDomainName(q.Name); !ok || !dns.IsFqdn(q.Name) || q.Type == 0 || q.Class != dns.ClassINET {
			t.Fatalf("%q: accepted %+v", raw, q)
		}
		if q.Key != dnsmsg.Key(q.Name, q.Type, q.Class, q.DO, q.CD) {
			t.Fatalf("%q: key %q", raw, q.Key)
		}
		if rec.Code != http.StatusOK {
			return
		}
		var a jsonAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if len(a.Question) != 1 || a.Question[0].Type != q.Type {
			t.Fatalf("%q: question %+v, asked type %d", raw, a.Question, q.Type)
		}
		if !strings.EqualFold(a.Question[0].Name, canonicalText(q.Name)) {
			t.Fatalf("%q: question %+v, asked %q type %d", raw, a.Question, q.Name, q.Type)
		}
	})
}

// canonicalText is name as the DNS library prints it after a round trip
// through the wire (escapes normalised).
func canonicalText(name string) string {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return name
	}
	s, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return name
	}
	return s
}
