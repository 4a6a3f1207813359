package resolve

import (
	"testing"

	"github.com/miekg/dns"
)

// TestOptLast checks that the OPT record moves to the end of the
// additional section, the other records keeping their order.
func TestOptLast(t *testing.T) {
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	a := &dns.A{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeA, Class: dns.ClassINET}}
	b := &dns.AAAA{Hdr: dns.RR_Header{Name: "b.example.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET}}
	for _, extra := range [][]dns.RR{{opt, a, b}, {a, opt, b}, {a, b, opt}} {
		m := &dns.Msg{Extra: append([]dns.RR(nil), extra...)}
		optLast(m)
		if m.Extra[0] != a || m.Extra[1] != b || m.Extra[2] != opt {
			t.Errorf("%v: %v", extra, m.Extra)
		}
	}
	m := &dns.Msg{Extra: []dns.RR{a}}
	optLast(m)
	if len(m.Extra) != 1 || m.Extra[0] != a {
		t.Errorf("without OPT: %v", m.Extra)
	}
}
