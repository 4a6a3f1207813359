package dnsmsg

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// RFC 4035 §3.2.2: the CD bit is copied from the query into the response,
// whatever the stored answer had.
func TestReplyCopiesCD(t *testing.T) {
	m := answer(t, "cd.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"cd.example.com. 60 IN A 192.0.2.1"}, nil)
	for _, stored := range []bool{false, true} {
		m.CheckingDisabled = stored
		st, err := Prepare(m, 60, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, asked := range []bool{false, true} {
			r := new(dns.Msg)
			r.SetQuestion("cd.example.com.", dns.TypeA)
			r.CheckingDisabled = asked
			q, rej := ParseQuery(r)
			if rej != nil {
				t.Fatal(rej)
			}
			got := new(dns.Msg)
			if err := got.Unpack(AppendReply(nil, st, &q, ReplyOptions{})); err != nil {
				t.Fatal(err)
			}
			if got.CheckingDisabled != asked {
				t.Errorf("stored CD %v, asked CD %v: reply CD %v", stored, asked, got.CheckingDisabled)
			}
			if e := ErrorReply(r, dns.RcodeServerFailure, 0, ""); e.CheckingDisabled != asked {
				t.Errorf("asked CD %v: SERVFAIL CD %v", asked, e.CheckingDisabled)
			}
		}
	}
}

// RFC 6895 §3.1 keeps 128 to 255 for QTYPEs and meta-TYPEs; those with no
// meaning as a question (128 NXNAME, RFC 9824 §3.5, and the unassigned
// ones up to 248) are a format error and are never forwarded. 249 to 255
// have their own answers (LocalAnswer); 127 and 256 are data types.
func TestParseQueryRejectsMetaTypes(t *testing.T) {
	for _, qt := range []uint16{128, 129, 200, 248} {
		r := new(dns.Msg)
		r.SetQuestion("meta.example.", qt)
		if _, rej := ParseQuery(r); rej == nil || rej.Rcode != dns.RcodeFormatError {
			t.Errorf("QTYPE %d: reject %+v, want FORMERR", qt, rej)
		}
	}
	for _, qt := range []uint16{127, 256, 65280, dns.TypeANY, dns.TypeAXFR} {
		r := new(dns.Msg)
		r.SetQuestion("data.example.", qt)
		if _, rej := ParseQuery(r); rej != nil {
			t.Errorf("QTYPE %d: rejected %+v", qt, rej)
		}
	}
}

// RFC 6891 §6.1.1 and §6.1.2: an OPT record lives in the additional
// section only, and its owner is the root.
func TestParseQueryRejectsMisplacedOPT(t *testing.T) {
	opt := func(owner string) *dns.OPT {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		return o
	}
	for name, place := range map[string]func(m *dns.Msg){
		"in the answer section":    func(m *dns.Msg) { m.Answer = append(m.Answer, opt(".")) },
		"in the authority section": func(m *dns.Msg) { m.Ns = append(m.Ns, opt(".")) },
		"owned by a name":          func(m *dns.Msg) { m.Extra = append(m.Extra, opt("x.")) },
	} {
		r := new(dns.Msg)
		r.SetQuestion("opt.example.", dns.TypeA)
		place(r)
		// Through the wire, as a client would send it.
		wire, err := r.Pack()
		if err != nil {
			t.Fatal(err)
		}
		back := new(dns.Msg)
		if err := back.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		if _, rej := ParseQuery(back); rej == nil || rej.Rcode != dns.RcodeFormatError {
			t.Errorf("OPT %s: reject %+v, want FORMERR", name, rej)
		}
	}
}

// fitCase is a stored answer and how Fit must treat it at 512 bytes.
type fitCase struct {
	name      string
	msg       *dns.Msg
	wantTC    bool
	wantAns   int // answer records kept (-1: any)
	wantNs    int // authority records kept (-1: any)
	wantExtra int // additional records kept, OPT aside (-1: any)
}

// RFC 2181 §9: TC is set only when data the answer needs does not fit,
// never because extra data was left out. A positive answer needs its
// answer section (and, with DNSSEC records in the authority section, those
// too); a negative answer or a referral needs its authority section.
func TestFitSetsTCOnlyForRequiredData(t *testing.T) {
	manyA := func(n int) []string {
		var rrs []string
		for i := range n {
			rrs = append(rrs, fmt.Sprintf("big.example.com. 60 IN A 192.0.2.%d", i+1))
		}
		return rrs
	}
	var ns, manyNS, glue []string
	for i := range 30 {
		manyNS = append(manyNS, fmt.Sprintf("example.com. 60 IN NS ns%d.another-long-name-server-label-%d.example.net.", i, i))
	}
	for i := range 8 {
		host := fmt.Sprintf("ns%d.a-rather-long-name-server-label.example.com.", i)
		ns = append(ns, "example.com. 60 IN NS "+host)
	}
	for i := range 5 {
		glue = append(glue, fmt.Sprintf("extra%d.example.com. 60 IN TXT \"%s\"", i, strings.Repeat("x", 80)))
	}
	withExtra := func(m *dns.Msg) *dns.Msg {
		for _, s := range glue {
			m.Extra = append(m.Extra, mustRR(t, s))
		}
		return m
	}
	soa := "example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 7200 900 1209600 60"
	signedNs := append([]string{
		"example.com. 60 IN NSEC a.example.com. A NS SOA RRSIG NSEC",
	}, ns...)
	cases := []fitCase{
		{"positive, extra left out", withExtra(answer(t, "big.example.com.", dns.TypeA, 0, manyA(10), nil)), false, 10, 0, 0},
		{"positive, authority and extra left out", withExtra(answer(t, "big.example.com.", dns.TypeA, 0, manyA(20), ns)), false, 20, 0, 0},
		{"positive with NSEC in authority", answer(t, "big.example.com.", dns.TypeA, 0, manyA(20), signedNs), true, -1, -1, -1},
		{"answer too big", answer(t, "big.example.com.", dns.TypeA, 0, manyA(40), nil), true, -1, -1, -1},
		{"referral, extra left out", withExtra(answer(t, "big.example.com.", dns.TypeA, 0, nil, ns)), false, 0, len(ns), 0},
		{"referral too big", withExtra(answer(t, "big.example.com.", dns.TypeA, 0, nil, manyNS)), true, 0, -1, -1},
		{"negative, extra left out", withExtra(answer(t, "nx.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa})), false, 0, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.msg.SetEdns0(1232, false)
			st, err := Prepare(tc.msg, 60, 0, true)
			if err != nil {
				t.Fatal(err)
			}
			q := query(t, tc.msg.Question[0].Name, dns.TypeA, true, false)
			q.UDPSize = 512
			full := AppendReply(nil, st, q, ReplyOptions{})
			if len(full) <= 512 {
				t.Fatalf("test answer only %d bytes", len(full))
			}
			fit := Fit(full, 512)
			got := new(dns.Msg)
			if err := got.Unpack(fit); err != nil {
				t.Fatal(err)
			}
			extra := len(got.Extra)
			if got.IsEdns0() != nil {
				extra--
			} else {
				t.Error("OPT record dropped")
			}
			if len(fit) > 512 || got.Truncated != tc.wantTC {
				t.Errorf("%d bytes, TC %v; want at most 512, TC %v", len(fit), got.Truncated, tc.wantTC)
			}
			for _, c := range []struct {
				what      string
				got, want int
			}{{"answer", len(got.Answer), tc.wantAns}, {"authority", len(got.Ns), tc.wantNs}, {"additional", extra, tc.wantExtra}} {
				if c.want >= 0 && c.got != c.want {
					t.Errorf("%d %s records, want %d", c.got, c.what, c.want)
				}
			}
		})
	}
}
