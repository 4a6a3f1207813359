package dnsmsg

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/miekg/dns"
)

// verbatimSamples are answers as a compressor packs them.
func verbatimSamples(t testing.TB) [][]byte {
	t.Helper()
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var out [][]byte
	for _, sec := range [][]string{
		{"www.example. 300 IN A 192.0.2.1"},
		{"www.example. 300 IN CNAME web.example.", "web.example. 60 IN A 192.0.2.2"},
		{"example. 300 IN MX 10 mail.example.", "example. 300 IN SRV 1 2 3 sip.example.", "example. 300 IN NS ns.example."},
		{"example. 300 IN SOA ns.example. host.example. 1 2 3 4 5"},
		{"example. 300 IN HTTPS 1 svc.example. alpn=h2", "example. 300 IN TXT \"a\" \"b\"", "example. 300 IN AAAA 2001:db8::1"},
		{"example. 300 IN RRSIG A 8 1 300 20300101000000 20200101000000 1 example. AAAA", "example. 300 IN NSEC z.example. A RRSIG NSEC"},
	} {
		m := new(dns.Msg)
		m.SetQuestion("www.example.", dns.TypeA)
		m.Response, m.Compress = true, true
		for _, s := range sec {
			m.Answer = append(m.Answer, rr(s))
		}
		m.Ns = []dns.RR{rr("example. 300 IN NS ns1.example.")}
		m.Extra = []dns.RR{rr("ns1.example. 300 IN A 192.0.2.53")}
		m.SetEdns0(1232, true)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestCheckVerbatimPassesPackedAnswers(t *testing.T) {
	for i, b := range verbatimSamples(t) {
		if err := CheckVerbatim(b); err != nil {
			t.Errorf("sample %d: %v", i, err)
		}
	}
}

// answerWithPointer is www.example. A, whose answer's owner is the
// pointer ptr (0xC000 | offset).
func answerWithPointer(ptr uint16) []byte {
	b := []byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
		3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1}
	b = binary.BigEndian.AppendUint16(b, ptr)
	return append(b, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1)
}

func TestCheckVerbatimRefusesStrayPointers(t *testing.T) {
	if err := CheckVerbatim(answerWithPointer(0xC000 | 12)); err != nil {
		t.Fatalf("a pointer to the question's name: %v", err)
	}
	if err := CheckVerbatim(answerWithPointer(0xC000 | 16)); err != nil {
		t.Fatalf("a pointer to the question's second label: %v", err)
	}
	for name, b := range map[string][]byte{
		"into the header":         answerWithPointer(0xC000 | 2),
		"into a label's octets":   answerWithPointer(0xC000 | 13),
		"to the question's type":  answerWithPointer(0xC000 | 25),
		"to itself":               answerWithPointer(0xC000 | 29),
		"forward, into its TTL":   answerWithPointer(0xC000 | 35),
		"octets after the answer": append(answerWithPointer(0xC000|12), 0),
	} {
		if err := CheckVerbatim(b); !errors.Is(err, ErrWire) {
			t.Errorf("%s: %v, want ErrWire", name, err)
		}
	}
	// A record of a type whose data's names the walk does not know.
	b := answerWithPointer(0xC000 | 12)
	binary.BigEndian.PutUint16(b[31:], dns.TypeNAPTR)
	if err := CheckVerbatim(b); !errors.Is(err, ErrWire) {
		t.Errorf("NAPTR: %v, want ErrWire", err)
	}
}

// FuzzCheckVerbatim checks what CheckVerbatim is for: a message it passes
// says the same thing however the cache rewrites its header and TTLs.
func FuzzCheckVerbatim(f *testing.F) {
	for _, b := range verbatimSamples(f) {
		f.Add(b)
	}
	f.Add(answerWithPointer(0xC000 | 12))
	f.Add(answerWithPointer(0xC000 | 35))
	f.Fuzz(func(t *testing.T, b []byte) {
		before := new(dns.Msg)
		if CheckVerbatim(b) != nil || before.Unpack(b) != nil {
			return
		}
		offs, err := TTLOffsets(b)
		if err != nil {
			t.Fatalf("CheckVerbatim passed what TTLOffsets refuses: %v", err)
		}
		c := append([]byte(nil), b...)
		c[0], c[1], c[2], c[3] = 0xff, 0xff, 0xff, 0xff
		for _, o := range offs {
			binary.BigEndian.PutUint32(c[o:], 0x5a5a5a5a)
		}
		after := new(dns.Msg)
		if err := after.Unpack(c); err != nil {
			t.Fatalf("unparsable once rewritten: %v", err)
		}
		if got, want := sameButTTL(after), sameButTTL(before); got != want {
			t.Fatalf("rewriting the header and TTLs changed the records:\n%s\nwas\n%s", got, want)
		}
	})
}

// sameButTTL is m's question and records with their TTLs left out.
func sameButTTL(m *dns.Msg) string {
	s := ""
	for _, q := range m.Question {
		s += q.String() + "\n"
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype != dns.TypeOPT {
				rr.Header().Ttl = 0
			}
			s += rr.String() + "\n"
		}
	}
	return s
}
