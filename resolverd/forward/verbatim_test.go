package forward

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// The upstream's bytes are passed on (Answer.Wire) only when they say what
// the shaped answer says, and then they say exactly that.
func TestExchangeWireIsTheShapedAnswer(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// answer answers with m's records under r's header and question, as
	// a compressing server packs them, after edit.
	answer := func(edit func(r, m *dns.Msg)) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			m := reply(r, "192.0.2.1")
			m.Compress = true
			edit(r, m)
			_ = w.WriteMsg(m)
		}
	}
	// raw answers with a reply written by hand: r's ID and question, then
	// one A record owned by the pointer ptr.
	raw := func(ptr uint16) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			q, _ := r.Pack()
			end := 12 + len(r.Question[0].Name) + 1 + 4
			b := append([]byte(nil), q[:end]...)
			b[2], b[3] = 0x81, 0x80
			binary.BigEndian.PutUint16(b[6:], 1)
			binary.BigEndian.PutUint16(b[10:], 0)
			b = binary.BigEndian.AppendUint16(b, ptr)
			b = append(b, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1)
			_, _ = w.Write(b)
		}
	}
	for _, tc := range []struct {
		name     string
		h        dns.Handler
		noEDNS   bool // the query has no OPT record
		verbatim bool
	}{
		{"an A record", answer(func(r, m *dns.Msg) {}), false, true},
		{"an owner in the query's 0x20 spelling, not compressed", answerA("192.0.2.1"), false, false},
		{"a CNAME chain, compressed into record data", answer(func(r, m *dns.Msg) {
			m.Answer = []dns.RR{rr(r.Question[0].Name + " 60 IN CNAME web.example."), rr("web.example. 60 IN A 192.0.2.9")}
		}), false, true},
		{"a negative answer with an SOA", answer(func(r, m *dns.Msg) {
			m.Answer, m.Ns = nil, []dns.RR{rr("example. 60 IN SOA ns.example. host.example. 1 2 3 4 5")}
		}), false, true},
		{"no OPT asked, one answered", answer(func(r, m *dns.Msg) {}), true, false},
		{"a COOKIE option for us", answer(func(r, m *dns.Msg) {
			c := r.IsEdns0().Option[0].(*dns.EDNS0_COOKIE).Cookie + "0123456789abcdef"
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c}}
		}), false, false},
		{"an OPT record before another", answer(func(r, m *dns.Msg) {
			m.Extra = append(m.Extra, rr("ns.example. 60 IN A 192.0.2.53"))
		}), false, false},
		{"a type whose data's names are not walked", answer(func(r, m *dns.Msg) {
			m.Answer = append(m.Answer, rr(r.Question[0].Name+` 60 IN NAPTR 1 1 "S" "SIP+D2U" "" _sip._udp.example.`))
		}), false, false},
		{"an owner pointing to the question", raw(0xC000 | 12), false, true},
		{"an owner pointing into the header", raw(0xC000 | 4), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, Config{Upstreams: []string{startBoth(t, tc.h)}, HealthInterval: -1})
			q := query("Www.Example.", dns.TypeA)
			if !tc.noEDNS {
				q.SetEdns0(1232, false)
			}
			a, err := f.ExchangeWire(ctxFor(t, 5*time.Second), q)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Wire != nil; got != tc.verbatim {
				t.Fatalf("passed on as received: %v, want %v\n%v", got, tc.verbatim, a.Msg)
			}
			if a.Wire == nil {
				return
			}
			dnsmsg.PutHeader(a.Wire, &a.Msg.MsgHdr)
			got := new(dns.Msg)
			if err := got.Unpack(a.Wire); err != nil {
				t.Fatal(err)
			}
			if got.String() != a.Msg.String() {
				t.Fatalf("the bytes say\n%v\nthe answer is\n%v", got, a.Msg)
			}
			if got.Question[0].Name != "Www.Example." || got.Id != q.Id {
				t.Errorf("question %v, ID %d: want the query's", got.Question, got.Id)
			}
		})
	}
}
