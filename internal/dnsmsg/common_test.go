package dnsmsg

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// commonSeeds are queries of the common shape and near misses.
func commonSeeds(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	add := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	for _, name := range []string{"www.example.com.", "WwW.ExAmPlE.CoM.", ".", "_srv._tcp.x-y.example.", "*.wild.example.", `a\.b.example.`, `\200.example.`} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		add(m)
		m.SetEdns0(1232, true)
		m.CheckingDisabled = true
		add(m)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0011223344556677"})
		add(m)
	}
	for _, qt := range []uint16{dns.TypeAAAA, dns.TypeHTTPS, 65280, dns.TypeANY, 0} {
		m := new(dns.Msg)
		m.SetQuestion("example.org.", qt)
		m.SetEdns0(512, false)
		add(m)
	}
	m := new(dns.Msg)
	m.SetQuestion("example.org.", dns.TypeA)
	m.SetEdns0(4096, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 9)})
	add(m)
	m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{192, 0, 2, 0}}}
	add(m)
	// COOKIE options: after padding, twice, empty, of the longest length
	// and beyond it (ParseCommon reads any length; the server judges it).
	pad := &dns.EDNS0_PADDING{Padding: make([]byte, 3)}
	full := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "00112233445566770100000011223344aabbccddeeff0011"}
	for _, opts := range [][]dns.EDNS0{
		{pad, full},
		{full, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "8899aabbccddeeff"}},
		{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: ""}},
		{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: strings.Repeat("ab", 40)}, pad},
		{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: strings.Repeat("cd", 41)}},
	} {
		m.IsEdns0().Option = opts
		add(m)
	}
	return out
}

// firstCookie returns the data of m's first COOKIE option.
func firstCookie(t *testing.T, m *dns.Msg) (data []byte, found bool) {
	opt := m.IsEdns0()
	if opt == nil {
		return nil, false
	}
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			b, err := hex.DecodeString(c.Cookie)
			if err != nil {
				t.Fatal(err)
			}
			return b, true
		}
	}
	return nil, false
}

// checkCommon fails when ParseCommon accepts b but miekg/dns and
// ParseQuery read it differently, or would not send it to the lookup
// chain, or when the reply made from the wire name differs from the one
// made from the parsed name.
func checkCommon(t *testing.T, b []byte) bool {
	var q Query
	key, end, ok := ParseCommon(b, &q, nil)
	if !ok {
		return false
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("ParseCommon accepted %x, which miekg/dns rejects: %v", b, err)
	}
	if m.Response {
		t.Fatalf("ParseCommon accepted a response: %x", b)
	}
	want, rej := ParseQuery(m)
	if rej != nil {
		t.Fatalf("ParseCommon accepted %x, which ParseQuery rejects: %+v", b, rej)
	}
	if local, _ := LocalAnswer(m, &want); local != nil {
		t.Fatalf("ParseCommon accepted %x, answered locally", b)
	}
	if string(key) != want.Key {
		t.Fatalf("key %q, want %q", key, want.Key)
	}
	got := q
	got.Name, got.Key = want.Name, want.Key
	if got != want {
		t.Fatalf("ParseCommon read %+v, ParseQuery %+v", got, want)
	}
	var buf [256]byte
	n, err := dns.PackDomainName(want.Name, buf[:], 0, nil, false)
	if err != nil || !bytes.Equal(buf[:n], b[headerSize:end]) {
		t.Fatalf("name %x as sent, %x packed from %q (%v)", b[headerSize:end], buf[:n], want.Name, err)
	}
	// A stored answer for the name in lower case, patched both ways.
	ans := new(dns.Msg)
	ans.SetQuestion(LowerName(want.Name), want.Type)
	ans.Response = true
	ans.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: ans.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}}
	st, err := Prepare(ans, 60, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	o := ReplyOptions{Age: 7}
	if r1, r2 := AppendReplyName(nil, st, &q, b[headerSize:end], o), AppendReply(nil, st, &want, o); !bytes.Equal(r1, r2) {
		t.Fatalf("reply from the wire name\n%x\nfrom the parsed name\n%x", r1, r2)
	}
	// The COOKIE option as miekg/dns reads it, and a reply carrying one
	// (with an EDE beside it) that it reads back.
	wantCookie, wantFound := firstCookie(t, m)
	if c, found := CommonCookie(b, end); found != wantFound || !bytes.Equal(c, wantCookie) {
		t.Fatalf("CommonCookie %x (%v), miekg/dns read %x (%v)", c, found, wantCookie, wantFound)
	}
	o.Cookie = []byte("0123456789abcdefghijklmn")
	o.EDE, o.Text = dns.ExtendedErrorCodeStaleAnswer, "stale"
	r := new(dns.Msg)
	if err := r.Unpack(AppendReplyName(nil, st, &q, b[headerSize:end], o)); err != nil {
		t.Fatalf("reply with a cookie: %v", err)
	}
	if got, found := firstCookie(t, r); found != q.EDNS || (found && !bytes.Equal(got, o.Cookie)) {
		t.Fatalf("reply COOKIE %q (%v), want %q when the query had EDNS (%v)", got, found, o.Cookie, q.EDNS)
	}
	return true
}

func TestParseCommonSeeds(t *testing.T) {
	accepted := 0
	for _, b := range commonSeeds(t) {
		if checkCommon(t, b) {
			accepted++
		}
	}
	// Escapes, ANY, QTYPE 0 and ECS leave the common shape; every COOKIE
	// seed is of it.
	if want := 5*3 + 3 + 1 + 5; accepted != want {
		t.Errorf("%d seeds of the common shape accepted, want %d", accepted, want)
	}
}

// FuzzParseCommon checks the hand parser against miekg/dns and
// ParseQuery: whatever it accepts, they read the same way.
func FuzzParseCommon(f *testing.F) {
	for _, b := range commonSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkCommon(t, b)
	})
}
