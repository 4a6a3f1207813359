package dnsmsg

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// upstreamMsg is the query AppendUpstream packs, built as a dns.Msg.
func upstreamMsg(q *Query, id uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Id = id
	m.RecursionDesired = true
	m.CheckingDisabled = q.CD
	m.Question = []dns.Question{{Name: LowerName(q.Name), Qtype: q.Type, Qclass: q.Class}}
	m.SetEdns0(MaxUDPSize, q.DO)
	return m
}

// TestAppendUpstreamMatchesMsg checks that the packed upstream query is
// the octets of the same query built and packed as a dns.Msg.
func TestAppendUpstreamMatchesMsg(t *testing.T) {
	for _, q := range []Query{
		{Name: "www.Example.COM.", Type: dns.TypeA, Class: dns.ClassINET},
		{Name: ".", Type: dns.TypeNS, Class: dns.ClassINET, DO: true},
		{Name: "a\\098b.example.", Type: dns.TypeAAAA, Class: dns.ClassCHAOS, CD: true, DO: true},
		{Name: "x.y.", Type: 65280, Class: dns.ClassINET, CD: true},
	} {
		want, err := upstreamMsg(&q, 4242).Pack()
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.AppendUpstream([]byte("prefix"), 4242)
		if err != nil || !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
			t.Errorf("%s: %x (%v)\nwant %x", q.Name, got, err, want)
		}
		// miekg/dns allocates to read an escape; a plain name costs the
		// buffer alone.
		if n := testing.AllocsPerRun(10, func() { _, _ = q.AppendUpstream(nil, 1) }); n != 1 && !raceEnabled && !strings.Contains(q.Name, "\\") {
			t.Errorf("%s: %v allocations, want the buffer alone", q.Name, n)
		}
		if !AnswersQuery(want, want) {
			t.Errorf("%s: the query does not answer itself", q.Name)
		}
	}
	// A letter written escaped is lowercased too.
	esc := Query{Name: "A\\066c.Example.", Type: dns.TypeA, Class: dns.ClassINET}
	want, _ := upstreamMsg(&Query{Name: "abc.example.", Type: dns.TypeA, Class: dns.ClassINET}, 9).Pack()
	if got, err := esc.AppendUpstream(nil, 9); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: %x %v, want %x", esc.Name, got, err, want)
	}
	long := Query{Name: string(bytes.Repeat([]byte("a."), 130)), Type: dns.TypeA, Class: dns.ClassINET}
	if b, err := long.AppendUpstream(nil, 1); err == nil || len(b) != 0 {
		t.Errorf("a 260-octet name packed: %x", b)
	}
}

// TestAnswersQuery checks the match of an answer to its query.
func TestAnswersQuery(t *testing.T) {
	q := Query{Name: "www.example.com.", Type: dns.TypeA, Class: dns.ClassINET}
	wire, _ := q.AppendUpstream(nil, 7)
	ans := func(edit func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("WWW.example.COM.", dns.TypeA)
		m.Id = 7
		m.Response = true
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: []byte{192, 0, 2, 1}})
		edit(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !AnswersQuery(wire, ans(func(*dns.Msg) {})) {
		t.Error("the answer in other case refused")
	}
	for name, edit := range map[string]func(*dns.Msg){
		"other ID":   func(m *dns.Msg) { m.Id = 8 },
		"other name": func(m *dns.Msg) { m.Question[0].Name = "www.example.net." },
		"other type": func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA },
		"no question": func(m *dns.Msg) {
			m.Question = nil
		},
		"two questions": func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) },
	} {
		if AnswersQuery(wire, ans(edit)) {
			t.Errorf("%s: taken as the answer", name)
		}
	}
	if AnswersQuery(wire, wire[:20]) {
		t.Error("a cut answer taken")
	}
}
