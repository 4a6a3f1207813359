package dnsmsg

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// prepared is the outcome of laying out one answer for the cache.
type prepared struct {
	st        Stored
	ttl       uint32
	cacheable bool
	err       error
}

// prepareOld is the dns.Msg way: unpack, CacheTTL, Prepare.
func prepareOld(p Policy, wire []byte) prepared {
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return prepared{err: err}
	}
	ttl, ok := p.CacheTTL(m)
	st, err := Prepare(m, ttl, uint32(p.MinTTL/time.Second), ok)
	return prepared{st: st, ttl: ttl, cacheable: ok, err: err}
}

// prepareNew is PrepareWire on a copy of wire.
func prepareNew(p Policy, wire []byte) prepared {
	st, ttl, ok, err := p.PrepareWire(bytes.Clone(wire))
	return prepared{st: st, ttl: ttl, cacheable: ok, err: err}
}

// samePrepared says how a and b differ, "" when they do not: the same
// error or none, TTL and cacheability, the same message once unpacked,
// and the same TTL values at their offsets, in order.
func samePrepared(a, b prepared) string {
	if (a.err == nil) != (b.err == nil) {
		return "errors: " + errString(a.err) + " | " + errString(b.err)
	}
	if a.err != nil {
		return ""
	}
	if a.ttl != b.ttl || a.cacheable != b.cacheable {
		return "ttl/cacheable differ"
	}
	ma, mb := new(dns.Msg), new(dns.Msg)
	if err := ma.Unpack(a.st.Msg); err != nil {
		return "old stored: " + err.Error()
	}
	if err := mb.Unpack(b.st.Msg); err != nil {
		return "new stored: " + err.Error()
	}
	// Packed again without compression, which each way may choose
	// differently, the two must be the same octets.
	pa, erra := ma.Pack()
	pb, errb := mb.Pack()
	if erra != nil || errb != nil || !bytes.Equal(pa, pb) {
		return "stored messages differ:\n" + ma.String() + "\n----\n" + mb.String()
	}
	if len(a.st.Offsets) != len(b.st.Offsets) {
		return "offset counts differ"
	}
	for i := range a.st.Offsets {
		va := binary.BigEndian.Uint32(a.st.Msg[a.st.Offsets[i]:])
		vb := binary.BigEndian.Uint32(b.st.Msg[b.st.Offsets[i]:])
		if va != vb {
			return "TTL values differ"
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// policies are the clamps the differential tests run under.
var policies = []Policy{
	{},
	{MaxTTL: 24 * time.Hour, MaxNegativeTTL: time.Hour},
	{MinTTL: 60 * time.Second, MaxTTL: 3600 * time.Second},
	{MinTTL: 600 * time.Second, MaxTTL: 300 * time.Second, MaxNegativeTTL: 30 * time.Second, ServfailTTL: 2 * time.Second},
	{MaxTTL: 3 * time.Second},
}

// randomAnswer builds an answer of the shapes resolvers send and some
// they should not: every section, SOAs, OPT records (with extended
// RCODEs, in any place), TTLs with the top bit set, TC, any RCODE, with
// and without compression.
func randomAnswer(r *rand.Rand) *dns.Msg {
	names := []string{"www.example.com.", "example.com.", "WwW.ExAmPlE.cOm.", "a.b.c.example.net.", ".", "ns1.example.com."}
	name := func() string { return names[r.IntN(len(names))] }
	ttl := func() uint32 {
		switch r.IntN(5) {
		case 0:
			return 0
		case 1:
			return 0x80000000 | r.Uint32()
		case 2:
			return r.Uint32()
		}
		return uint32(r.IntN(100000))
	}
	rr := func() dns.RR {
		h := dns.RR_Header{Name: name(), Class: dns.ClassINET, Ttl: ttl()}
		switch r.IntN(7) {
		case 0:
			h.Rrtype = dns.TypeA
			return &dns.A{Hdr: h, A: []byte{192, 0, 2, byte(r.IntN(256))}}
		case 1:
			h.Rrtype = dns.TypeAAAA
			return &dns.AAAA{Hdr: h, AAAA: make([]byte, 16)}
		case 2:
			h.Rrtype = dns.TypeCNAME
			return &dns.CNAME{Hdr: h, Target: name()}
		case 3:
			h.Rrtype = dns.TypeNS
			return &dns.NS{Hdr: h, Ns: name()}
		case 4:
			h.Rrtype = dns.TypeMX
			return &dns.MX{Hdr: h, Preference: 10, Mx: name()}
		case 5:
			h.Rrtype = dns.TypeTXT
			return &dns.TXT{Hdr: h, Txt: []string{strings.Repeat("x", r.IntN(40))}}
		}
		return soa(h, ttl())
	}
	m := new(dns.Msg)
	m.SetQuestion(name(), dns.TypeA)
	m.Response = true
	m.Id = uint16(r.Uint32())
	m.Authoritative = r.IntN(2) == 0
	m.RecursionAvailable = r.IntN(2) == 0
	m.Truncated = r.IntN(8) == 0
	m.AuthenticatedData = r.IntN(4) == 0
	m.Rcode = []int{0, 0, 0, 3, 3, 2, 5, 1, 4}[r.IntN(9)]
	m.Compress = r.IntN(3) != 0
	for range r.IntN(4) {
		m.Answer = append(m.Answer, rr())
	}
	for range r.IntN(3) {
		if r.IntN(2) == 0 {
			h := dns.RR_Header{Name: name(), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl()}
			m.Ns = append(m.Ns, soa(h, ttl()))
		} else {
			m.Ns = append(m.Ns, rr())
		}
	}
	for range r.IntN(3) {
		m.Extra = append(m.Extra, rr())
	}
	if r.IntN(4) != 0 {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(1232)
		opt.SetDo(r.IntN(2) == 0)
		if r.IntN(10) == 0 {
			opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		}
		// Mostly last, as resolvers send it; sometimes not.
		at := len(m.Extra)
		if r.IntN(6) == 0 {
			at = r.IntN(len(m.Extra) + 1)
		}
		m.Extra = append(m.Extra[:at], append([]dns.RR{opt}, m.Extra[at:]...)...)
		if r.IntN(10) == 0 {
			m.Rcode = dns.RcodeBadCookie // extended: packed into the OPT record
		}
	}
	return m
}

func soa(h dns.RR_Header, minimum uint32) *dns.SOA {
	h.Rrtype = dns.TypeSOA
	return &dns.SOA{Hdr: h, Ns: "ns1.example.com.", Mbox: "hostmaster.example.com.", Serial: 1, Refresh: 2, Retry: 3, Expire: 4, Minttl: minimum}
}

// TestPrepareWireMatchesPrepare compares the wire walk with the dns.Msg
// path on many answers under several policies: same TTL and
// cacheability, same stored message once unpacked, same TTLs.
func TestPrepareWireMatchesPrepare(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	compared, failed, viaMsg := 0, 0, 0
	for i := 0; i < n; i++ {
		m := randomAnswer(r)
		wire, err := m.Pack()
		if err != nil {
			continue
		}
		p := policies[i%len(policies)]
		old, neu := prepareOld(p, wire), prepareNew(p, wire)
		if d := samePrepared(old, neu); d != "" {
			t.Fatalf("answer %d under %+v: %s\n%v", i, p, d, m)
		}
		if w, err := walkAnswer(wire); err == nil && w.optInside {
			viaMsg++
		}
		if old.err != nil {
			failed++
		}
		compared++
	}
	// The generator must reach every branch worth comparing.
	if compared < n/2 || failed == 0 || viaMsg == 0 {
		t.Fatalf("compared %d answers, %d failing, %d through dns.Msg: the generator misses cases", compared, failed, viaMsg)
	}
}

// TestPrepareWireInPlace checks the layout of a common answer byte for
// byte: ID 0, AA kept, RA set, the OPT record cut, TTLs clamped.
func TestPrepareWireInPlace(t *testing.T) {
	m := answer(t, "www.example.com.", dns.TypeA, dns.RcodeSuccess,
		[]string{"www.example.com. 30 IN A 192.0.2.1", "www.example.com. 4000 IN A 192.0.2.2"},
		[]string{"example.com. 300 IN NS ns.example.com."})
	m.Id = 77
	m.Authoritative = true
	m.RecursionAvailable = false
	m.Compress = true
	m.SetEdns0(1232, true)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	st, ttl, ok, err := Policy{MinTTL: 60 * time.Second}.PrepareWire(wire)
	if err != nil || !ok || ttl != 60 {
		t.Fatalf("ttl %d cacheable %v err %v, want 60 true nil", ttl, ok, err)
	}
	if &st.Msg[0] != &wire[0] || len(st.Msg) != len(wire)-11 {
		t.Fatalf("stored %d octets, not the answer (%d) less its OPT record in place", len(st.Msg), len(wire))
	}
	got := new(dns.Msg)
	if err := got.Unpack(st.Msg); err != nil {
		t.Fatal(err)
	}
	if got.Id != 0 || !got.Authoritative || !got.RecursionAvailable || got.IsEdns0() != nil || len(got.Extra) != 0 {
		t.Fatalf("stored header or OPT wrong (want ID 0, AA kept, RA set, no OPT):\n%v", got)
	}
	for i, rr := range append(got.Answer, got.Ns...) {
		if rr.Header().Ttl != 60 {
			t.Errorf("record %d TTL %d, want 60 (raised to -min-ttl, capped at the entry's)", i, rr.Header().Ttl)
		}
	}
}

// TestPrepareWireRefuses checks answers that do not add up.
func TestPrepareWireRefuses(t *testing.T) {
	m := answer(t, "www.example.com.", dns.TypeA, dns.RcodeNameError, nil,
		[]string{"example.com. 300 IN SOA ns.example.com. h.example.com. 1 2 3 4 5"})
	wire, _ := m.Pack()
	cases := map[string][]byte{
		"short":          wire[:11],
		"cut record":     wire[:len(wire)-3],
		"trailing bytes": append(bytes.Clone(wire), 0),
		"count too high": func() []byte { b := bytes.Clone(wire); b[9]++; return b }(),
		"bad SOA": func() []byte {
			b := bytes.Clone(wire)
			rdlen := len(b) - 2 - 20 // the RDLENGTH field of the SOA, the last record
			_ = rdlen
			b[len(b)-21]++ // a name byte of the SOA's RNAME
			return b
		}(),
	}
	for name, b := range cases {
		if _, _, _, err := (Policy{}).PrepareWire(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzPrepareWire feeds arbitrary answers to both ways: the wire walk
// must never panic, and where both take an answer they must agree.
func FuzzPrepareWire(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		if wire, err := randomAnswer(r).Pack(); err == nil {
			f.Add(wire, uint8(r.IntN(len(policies))))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, pi uint8) {
		p := policies[int(pi)%len(policies)]
		neu := prepareNew(p, b)
		if neu.err != nil {
			return
		}
		if _, err := TTLOffsets(neu.st.Msg); err != nil {
			t.Fatalf("stored answer does not walk: %v", err)
		}
		if !canonical(b) {
			return // pointers no compressor writes (see PrepareWire)
		}
		old := prepareOld(p, b)
		if old.err != nil {
			return // record data dns.Msg refuses; the resolver parsed what it sends
		}
		if err := new(dns.Msg).Unpack(old.st.Msg); err != nil {
			return // dns.Msg packed what it cannot read back: nothing to compare
		}
		if d := samePrepared(old, neu); d != "" {
			t.Fatalf("%s", d)
		}
	})
}

// canonical reports whether b is packed as resolverd packs its answers:
// unpacked and packed again with compression, it is the same octets.
// Such a message's pointers lead to earlier names, never into the header,
// a TTL field or an OPT record.
func canonical(b []byte) bool {
	m := new(dns.Msg)
	if m.Unpack(b) != nil {
		return false
	}
	m.Compress = true
	again, err := m.Pack()
	return err == nil && bytes.Equal(again, b)
}
