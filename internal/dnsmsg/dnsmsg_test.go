package dnsmsg

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("NewRR(%q): %v", s, err)
	}
	return rr
}

func answer(t testing.TB, name string, qtype uint16, rcode int, ans, ns []string) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	m := new(dns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	for _, s := range ans {
		m.Answer = append(m.Answer, mustRR(t, s))
	}
	for _, s := range ns {
		m.Ns = append(m.Ns, mustRR(t, s))
	}
	return m
}

func TestKey(t *testing.T) {
	tests := []struct {
		name          string
		qtype, qclass uint16
		do, cd        bool
		want          string
	}{
		{"www.Example.COM", dns.TypeA, dns.ClassINET, false, false, "dns:{www.example.com.}:A:IN"},
		{"example.com.", dns.TypeAAAA, dns.ClassINET, true, false, "dns:{example.com.}:AAAA:IN:do"},
		{"example.com.", dns.TypeMX, dns.ClassCHAOS, true, true, "dns:{example.com.}:MX:CH:do:cd"},
		{"x.", 65280, 3, false, true, "dns:{x.}:TYPE65280:CH:cd"},
		{"x.", 1, 999, false, false, "dns:{x.}:A:CLASS999"},
	}
	for _, tt := range tests {
		if got := Key(tt.name, tt.qtype, tt.qclass, tt.do, tt.cd); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCacheTTL(t *testing.T) {
	soa := "example.com. 3600 IN SOA ns.example.com. h.example.com. 1 7200 900 1209600 300"
	p := Policy{MaxTTL: 86400 * time.Second}
	tests := []struct {
		name      string
		m         *dns.Msg
		p         Policy
		want      uint32
		cacheable bool
	}{
		{"positive minimum over answer and authority", answer(t, "a.example.com.", dns.TypeA, dns.RcodeSuccess,
			[]string{"a.example.com. 300 IN CNAME b.example.com.", "b.example.com. 60 IN A 192.0.2.1"},
			[]string{"example.com. 30 IN NS ns.example.com."}), p, 30, true},
		{"NXDOMAIN uses min(SOA TTL, MINIMUM)", answer(t, "x.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa}), p, 300, true},
		{"NODATA uses SOA TTL when lower", answer(t, "x.example.com.", dns.TypeA, dns.RcodeSuccess, nil,
			[]string{"example.com. 120 IN SOA ns.example.com. h.example.com. 1 7200 900 1209600 300"}), p, 120, true},
		{"negative without SOA is not cached", answer(t, "x.example.com.", dns.TypeA, dns.RcodeNameError, nil, nil), p, 0, false},
		{"SERVFAIL a few seconds", answer(t, "x.example.com.", dns.TypeA, dns.RcodeServerFailure, nil, nil), p, 5, true},
		{"SERVFAIL never above max-ttl", answer(t, "x.example.com.", dns.TypeA, dns.RcodeServerFailure, nil, nil), Policy{MaxTTL: 2 * time.Second}, 2, true},
		{"REFUSED not cached", answer(t, "x.example.com.", dns.TypeA, dns.RcodeRefused, nil, nil), p, 0, false},
		{"min-ttl raises", answer(t, "a.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"a.example.com. 5 IN A 192.0.2.1"}, nil),
			Policy{MinTTL: time.Minute, MaxTTL: time.Hour}, 60, true},
		{"max-ttl lowers", answer(t, "a.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"a.example.com. 604800 IN A 192.0.2.1"}, nil), p, 86400, true},
	}
	for _, tt := range tests {
		got, ok := tt.p.CacheTTL(tt.m)
		if got != tt.want || ok != tt.cacheable {
			t.Errorf("%s: CacheTTL = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.cacheable)
		}
	}

	top := answer(t, "a.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"a.example.com. 300 IN A 192.0.2.1"}, nil)
	top.Answer[0].Header().Ttl = 0x80000010
	if got, _ := p.CacheTTL(top); got != 0 {
		t.Errorf("TTL with the top bit set: CacheTTL = %d, want 0", got)
	}
	tc := answer(t, "a.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"a.example.com. 300 IN A 192.0.2.1"}, nil)
	tc.Truncated = true
	if _, ok := p.CacheTTL(tc); ok {
		t.Error("truncated answer is cacheable")
	}
}

func query(t testing.TB, name string, qtype uint16, edns, do bool) *Query {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0xBEEF
	if edns {
		m.SetEdns0(4096, do)
	}
	q, rej := ParseQuery(m)
	if rej != nil {
		t.Fatalf("ParseQuery: %+v", rej)
	}
	return &q
}

func TestReplyAgesPatchesAndKeepsRecords(t *testing.T) {
	m := answer(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{
		"www.example.com. 300 IN CNAME web.example.com.",
		"web.example.com. 120 IN A 192.0.2.1",
		"web.example.com. 120 IN A 192.0.2.2",
	}, nil)
	m.AuthenticatedData = true
	m.Authoritative = true
	m.RecursionAvailable = false
	m.SetEdns0(1232, false)
	ttl, ok := Policy{}.CacheTTL(m)
	st, err := Prepare(m, ttl, 0, ok)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Offsets) != 3 {
		t.Fatalf("%d TTL offsets, want 3 (OPT excluded)", len(st.Offsets))
	}
	q := query(t, "WwW.ExAmple.com.", dns.TypeA, true, false)
	wire := AppendReply(nil, st, q, ReplyOptions{Age: 20})
	got := new(dns.Msg)
	if err := got.Unpack(wire); err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if got.Id != 0xBEEF || !got.Response || !got.RecursionDesired || !got.RecursionAvailable || !got.Authoritative {
		t.Errorf("header: id %#x qr %v rd %v ra %v aa %v; want the query's ID, qr rd ra, and the answer's aa (a local zone's)", got.Id, got.Response, got.RecursionDesired, got.RecursionAvailable, got.Authoritative)
	}
	if got.AuthenticatedData {
		t.Error("AD set for a client that sent neither AD nor DO")
	}
	if got.Question[0].Name != "WwW.ExAmple.com." {
		t.Errorf("question name %q, want the client's spelling", got.Question[0].Name)
	}
	if len(got.Answer) != 3 {
		t.Fatalf("%d answers, want 3", len(got.Answer))
	}
	for _, rr := range got.Answer {
		// Stored TTLs are capped at the entry's 120 s, then aged by 20.
		if rr.Header().Ttl != 100 {
			t.Errorf("%s: TTL %d, want 100", rr, rr.Header().Ttl)
		}
	}
	opt := got.IsEdns0()
	if opt == nil || opt.UDPSize() != MaxUDPSize || opt.Version() != 0 {
		t.Fatalf("OPT %v, want one with size %d", opt, MaxUDPSize)
	}
	if st.Msg[0] != 0 || st.Msg[1] != 0 || binary.BigEndian.Uint32(st.Msg[st.Offsets[0]:]) != 120 {
		t.Error("AppendReply modified the stored message")
	}

	old := AppendReply(nil, st, q, ReplyOptions{Age: 500})
	got = new(dns.Msg)
	if err := got.Unpack(old); err != nil {
		t.Fatal(err)
	}
	for _, rr := range got.Answer {
		if rr.Header().Ttl != 0 {
			t.Errorf("aged past its TTL: %s shows %d", rr, rr.Header().Ttl)
		}
	}
}

func TestReplyStaleCarriesEDE3AndTTL30(t *testing.T) {
	m := answer(t, "a.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"a.example.com. 60 IN A 192.0.2.1"}, nil)
	st, err := Prepare(m, 60, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	wire := AppendReply(nil, st, query(t, "a.example.com.", dns.TypeA, true, true), ReplyOptions{Age: 4000, Stale: true})
	got := new(dns.Msg)
	if err := got.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	if got.Answer[0].Header().Ttl != StaleTTL {
		t.Errorf("stale TTL %d, want %d", got.Answer[0].Header().Ttl, StaleTTL)
	}
	opt := got.IsEdns0()
	if opt == nil || !opt.Do() {
		t.Fatalf("OPT %v: want DO echoed", opt)
	}
	var ede *dns.EDNS0_EDE
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			ede = e
		}
	}
	if ede == nil || ede.InfoCode != dns.ExtendedErrorCodeStaleAnswer {
		t.Errorf("EDE %v, want code 3", ede)
	}
	// Without EDNS the reply has no OPT at all.
	plain := AppendReply(nil, st, query(t, "a.example.com.", dns.TypeA, false, false), ReplyOptions{Stale: true})
	got = new(dns.Msg)
	if err := got.Unpack(plain); err != nil || got.IsEdns0() != nil || len(got.Extra) != 0 {
		t.Errorf("non-EDNS reply: err %v extra %v", err, got.Extra)
	}
}

func TestNegativeAnswerKeepsSOA(t *testing.T) {
	m := answer(t, "nx.example.com.", dns.TypeA, dns.RcodeNameError, nil,
		[]string{"example.com. 3600 IN SOA ns.example.com. h.example.com. 1 7200 900 1209600 300"})
	ttl, ok := Policy{}.CacheTTL(m)
	st, err := Prepare(m, ttl, 0, ok)
	if err != nil {
		t.Fatal(err)
	}
	got := new(dns.Msg)
	if err := got.Unpack(AppendReply(nil, st, query(t, "nx.example.com.", dns.TypeA, false, false), ReplyOptions{Age: 10})); err != nil {
		t.Fatal(err)
	}
	if got.Rcode != dns.RcodeNameError || len(got.Ns) != 1 || got.Ns[0].Header().Ttl != 290 {
		t.Errorf("rcode %d, authority %v: want NXDOMAIN with the SOA at TTL 290", got.Rcode, got.Ns)
	}
}

func TestFitTruncatesToSize(t *testing.T) {
	var ans []string
	for i := range 20 {
		ans = append(ans, "big.example.com. 60 IN TXT \""+strings.Repeat(string(rune('a'+i)), 200)+"\"")
	}
	m := answer(t, "big.example.com.", dns.TypeTXT, dns.RcodeSuccess, ans, nil)
	st, err := Prepare(m, 60, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	q := query(t, "big.example.com.", dns.TypeTXT, true, false)
	full := AppendReply(nil, st, q, ReplyOptions{})
	if len(full) <= MaxUDPSize {
		t.Fatalf("test answer only %d bytes", len(full))
	}
	fit := Fit(full, q.ReplySize())
	got := new(dns.Msg)
	if err := got.Unpack(fit); err != nil {
		t.Fatal(err)
	}
	if len(fit) > q.ReplySize() || !got.Truncated || got.IsEdns0() == nil || got.Id != q.ID {
		t.Errorf("fit: %d bytes (max %d), TC %v, OPT %v", len(fit), q.ReplySize(), got.Truncated, got.IsEdns0())
	}
	if same := Fit(full, 65535); len(same) != len(full) {
		t.Error("Fit changed a reply that fits")
	}
	if q512 := query(t, "big.example.com.", dns.TypeTXT, false, false); q512.ReplySize() != 512 {
		t.Errorf("reply size without EDNS: %d", q512.ReplySize())
	}
}

func TestParseQueryRejects(t *testing.T) {
	notify := new(dns.Msg)
	notify.SetNotify("example.com.")
	two := new(dns.Msg)
	two.SetQuestion("a.example.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	v1 := new(dns.Msg)
	v1.SetQuestion("a.example.", dns.TypeA)
	v1.SetEdns0(1232, false)
	v1.IsEdns0().SetVersion(1)
	twoOPT := new(dns.Msg)
	twoOPT.SetQuestion("a.example.", dns.TypeA)
	twoOPT.SetEdns0(1232, false)
	twoOPT.Extra = append(twoOPT.Extra, twoOPT.Extra[0])
	type0 := new(dns.Msg)
	type0.SetQuestion("a.example.", 0)
	class0 := new(dns.Msg)
	class0.SetQuestion("a.example.", dns.TypeA)
	class0.Question[0].Qclass = 0
	for name, tc := range map[string]struct {
		m     *dns.Msg
		rcode int
	}{
		"notify opcode":  {notify, dns.RcodeNotImplemented},
		"two questions":  {two, dns.RcodeFormatError},
		"EDNS version 1": {v1, dns.RcodeBadVers},
		"two OPT":        {twoOPT, dns.RcodeFormatError},
		"QTYPE 0":        {type0, dns.RcodeFormatError},
		"QCLASS 0":       {class0, dns.RcodeFormatError},
	} {
		_, rej := ParseQuery(tc.m)
		if rej == nil || rej.Rcode != tc.rcode {
			t.Errorf("%s: reject %+v, want rcode %d", name, rej, tc.rcode)
			continue
		}
		reply := ErrorReply(tc.m, rej.Rcode, rej.EDE, rej.Text)
		wire, err := reply.Pack()
		if err != nil {
			t.Errorf("%s: pack error reply: %v", name, err)
			continue
		}
		back := new(dns.Msg)
		if err := back.Unpack(wire); err != nil || back.Rcode != tc.rcode {
			t.Errorf("%s: error reply rcode %d (%v), want %d", name, back.Rcode, err, tc.rcode)
		}
	}
}

// FuzzTTLOffsets feeds arbitrary bytes to the wire walker: it must never
// panic, and every offset it returns must leave room for a TTL.
func FuzzTTLOffsets(f *testing.F) {
	m := answer(f, "www.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"www.example.com. 300 IN A 192.0.2.1"},
		[]string{"example.com. 300 IN NS ns.example.com."})
	m.SetEdns0(1232, true)
	wire, _ := m.Pack()
	f.Add(wire)
	f.Add(wire[:len(wire)-3])
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xC0})
	f.Add(make([]byte, 12))
	f.Fuzz(func(t *testing.T, b []byte) {
		offs, err := TTLOffsets(b)
		if err != nil {
			return
		}
		for _, o := range offs {
			if int(o)+4 > len(b) {
				t.Fatalf("offset %d past a %d-byte message", o, len(b))
			}
		}
		s := Stored{Msg: b, Offsets: offs}
		if len(b) >= headerSize {
			_ = AppendReply(nil, s, &Query{Name: "a.example.", EDNS: true}, ReplyOptions{Age: 1})
		}
	})
}

func TestLowerNameTouchesOnlyASCII(t *testing.T) {
	for in, want := range map[string]string{
		"WwW.Example.COM.": "www.example.com.",
		"a\x8fB.":          "a\x8fb.",
		"\xe2\x84\xaa.":    "\xe2\x84\xaa.", // KELVIN SIGN stays as it is, unlike strings.ToLower
		"lower.":           "lower.",
	} {
		if got := LowerName(in); got != want {
			t.Errorf("LowerName(%q) = %q, want %q", in, got, want)
		}
	}
	if Key("0\x8f.", 1, 1, false, false) == Key("0\x90.", 1, 1, false, false) {
		t.Error("two names differing in a high octet share a cache key")
	}
	if !EqualNames("A.b.", "a.B.") || EqualNames("a\x8f.", "a\x90.") {
		t.Error("EqualNames")
	}
}

func TestParseKeyRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name          string
		qtype, qclass uint16
		do, cd        bool
	}{
		{"www.Example.COM.", dns.TypeA, dns.ClassINET, false, false},
		{"example.com.", dns.TypeMX, dns.ClassINET, true, false},
		{"example.com.", 65280, dns.ClassCHAOS, true, true},
		{"x.example.", dns.TypeTXT, 3333, false, true},
		{".", dns.TypeNS, dns.ClassINET, false, false},
		{`a\.b\}:x.example.`, dns.TypeAAAA, dns.ClassINET, false, false},
	} {
		key := Key(c.name, c.qtype, c.qclass, c.do, c.cd)
		q, err := ParseKey(key)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", key, err)
			continue
		}
		if q.Name != LowerName(c.name) || q.Type != c.qtype || q.Class != c.qclass || q.DO != c.do || q.CD != c.cd || q.Key != key {
			t.Errorf("ParseKey(%q) = %+v", key, q)
		}
	}
	for _, bad := range []string{"", "dns:", "dns:{a.}", "dns:{a.}:A", "dns:{a.}:a:IN", "dns:{a.}:A:IN:cd:do", "dns:{a.}:A:IN:do:do",
		"dns:{a}:A:IN", "dns:{a.}:TYPE1:IN", "dns:{a.}:A:IN:x", "shardns:{stats}:frontends", "dns:{A.}:A:IN"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("dns:{www.example.com.}:A:IN")
	f.Add("dns:{x.}:TYPE65280:CLASS3:do:cd")
	f.Fuzz(func(t *testing.T, key string) {
		q, err := ParseKey(key)
		if err == nil && Key(q.Name, q.Type, q.Class, q.DO, q.CD) != key {
			t.Fatalf("ParseKey(%q) = %+v, which keys differently", key, q)
		}
	})
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]uint16{"": dns.TypeA, "aaaa": dns.TypeAAAA, "MX": dns.TypeMX, "65": 65, "type65280": 65280, "TYPE1": dns.TypeA} {
		if got, ok := ParseType(in); !ok || got != want {
			t.Errorf("ParseType(%q) = %d %v, want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"0", "TYPE0", "TYPE", "bogus", "70000", "-1"} {
		if _, ok := ParseType(bad); ok {
			t.Errorf("ParseType(%q) accepted", bad)
		}
	}
}
