package server_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/server"
)

// silence is how long a test waits to be sure no reply comes.
const silence = 500 * time.Millisecond

var networks = []string{"udp", "tcp"}

// header is a DNS header with the given ID, flags (bytes 2 and 3) and
// QDCOUNT; the other counts are 0.
func header(id, flags, qdcount uint16) []byte {
	h := make([]byte, 12)
	binary.BigEndian.PutUint16(h, id)
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint16(h[4:], qdcount)
	return h
}

// labels is a wire name of n labels of size bytes each.
func labels(n, size int) []byte {
	var b []byte
	for range n {
		b = append(b, byte(size))
		b = append(b, bytes.Repeat([]byte{'a'}, size)...)
	}
	return append(b, 0)
}

// typeClassA is QTYPE A, QCLASS IN.
var typeClassA = []byte{0, 1, 0, 1}

// opt0 is an OPT record: root owner, UDP size 1232, no options.
var opt0 = []byte{0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0}

// withCounts sets the ANCOUNT, NSCOUNT and ARCOUNT of the message m.
func withCounts(m []byte, an, ns, ar uint16) []byte {
	binary.BigEndian.PutUint16(m[6:], an)
	binary.BigEndian.PutUint16(m[8:], ns)
	binary.BigEndian.PutUint16(m[10:], ar)
	return m
}

// Messages that must not be answered at all: a response (QR=1; answering
// could loop or amplify) and fewer bytes than a header.
func TestNoReply(t *testing.T) {
	s := newSetup(t, options{})
	resp := query("qr.example.com.", dns.TypeA, 0x5151)
	resp.Response = true
	short := pack(t, query("short.example.com.", dns.TypeA, 0x5252))[:11]
	for _, network := range networks {
		t.Run(network+"/QR=1", func(t *testing.T) {
			if b := rawExchange(t, network, s.addr(network), pack(t, resp), silence); b != nil {
				t.Errorf("a response got a reply: % x", b[:min(12, len(b))])
			}
		})
		t.Run(network+"/11 bytes", func(t *testing.T) {
			if b := rawExchange(t, network, s.addr(network), short, silence); b != nil {
				t.Errorf("11 bytes got a reply: % x", b[:min(12, len(b))])
			}
		})
	}
	checkAlive(t, s, 0x5353)
	if n := s.auth.Total(); n != 1 {
		t.Errorf("upstream asked %d times, want 1 (the liveness check)", n)
	}
}

// A header that reads with a body that does not: FORMERR, header only,
// with the query's ID and opcode, over UDP and TCP.
func TestUnparsableBodyFormErr(t *testing.T) {
	s := newSetup(t, options{})
	const rd = 0x0100
	tests := []struct {
		name string
		wire []byte
	}{
		{"garbage body", append(header(0xABCD, rd, 1), 0xC0, 0xFF, 0xFF, 0x17)},
		{"label type 0x40", append(append(header(0xABCE, rd, 1), 0x40, 'a', 0), typeClassA...)},
		{"label of 64 octets", append(append(header(0xABCF, rd, 1), labels(1, 64)...), typeClassA...)},
		{"label type 0x80", append(append(header(0xABD0, rd, 1), 0x80, 'a', 0), typeClassA...)},
		{"name of 256 octets", append(append(header(0xABD1, rd, 1), labels(4, 63)...), typeClassA...)},
		{"name of 321 octets", append(append(header(0xABD2, rd, 1), labels(5, 63)...), typeClassA...)},
		{"question without QTYPE", append(header(0xABD3, rd, 1), labels(2, 10)...)},
		{"question without QCLASS", append(append(header(0xABD6, rd, 1), labels(2, 10)...), 0, 1)},
		{"QCLASS cut short", append(append(header(0xABD7, rd, 1), labels(2, 10)...), 0, 1, 0)},
		{"pointer loop", append(append(header(0xABD4, rd, 1), 0xC0, 12), typeClassA...)},
		{"NOTIFY garbage", append(header(0xABD5, uint16(dns.OpcodeNotify)<<11, 1), 0xC0, 0xFF)},
		// The first name of a message has no earlier name to point to
		// (RFC 1035 §4.1.4); miekg/dns follows a pointer into the header.
		{"pointer into the header", append(append(header(0xABD8, rd, 1), 3, 'w', 'w', 'w', 0xC0, 2), typeClassA...)},
		// Counts that promise records the message does not hold
		// (RFC 1035 §4.1.1); miekg/dns stops quietly where they run out.
		{"ARCOUNT 3, one OPT", withCounts(append(append(header(0xABD9, rd, 1), labels(2, 5)...), append(typeClassA, opt0...)...), 0, 0, 3)},
		{"ANCOUNT 1, no record", withCounts(append(append(header(0xABDA, rd, 1), labels(2, 5)...), typeClassA...), 1, 0, 0)},
		{"NSCOUNT 2, one record", withCounts(append(append(append(header(0xABDB, rd, 1), labels(2, 5)...), typeClassA...),
			append(labels(1, 3), 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1)...), 0, 2, 0)},
	}
	for _, network := range networks {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				b := rawExchange(t, network, s.addr(network), tt.wire, hangBound)
				if b == nil {
					t.Fatal("no reply")
				}
				if len(b) != 12 {
					t.Errorf("reply of %d bytes, want a bare header", len(b))
				}
				r := unpack(t, b)
				wantOp := int(tt.wire[2]>>3) & 0xF
				if r.Id != binary.BigEndian.Uint16(tt.wire) || !r.Response || r.Rcode != dns.RcodeFormatError || r.Opcode != wantOp {
					t.Errorf("ID %#x QR %v rcode %s opcode %d; want ID %#x, a FORMERR response, opcode %d",
						r.Id, r.Response, dns.RcodeToString[r.Rcode], r.Opcode, binary.BigEndian.Uint16(tt.wire), wantOp)
				}
				if len(r.Question)+len(r.Answer)+len(r.Ns)+len(r.Extra) != 0 {
					t.Errorf("FORMERR for an unparsable body carries records: %v", r)
				}
			})
		}
	}
	if n := s.auth.Total(); n != 0 {
		t.Errorf("upstream asked %d times", n)
	}
}

// A name of exactly 255 octets is legal and is looked up.
func TestLongestNameAnswered(t *testing.T) {
	s := newSetup(t, options{})
	name := strings.Repeat(strings.Repeat("a", 62)+".", 3) + strings.Repeat("b", 52) + ".example.com."
	if n, err := dns.PackDomainName(name, make([]byte, 300), 0, nil, false); n != 255 || err != nil {
		t.Fatalf("test name is %d octets (%v), want 255", n, err)
	}
	for _, network := range networks {
		r := exchange(t, network, s.addr(network), query(name, dns.TypeA, 0x255))
		if r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
			t.Errorf("%s: rcode %s, answer %v", network, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
}

// rejectCase is a parsable query that dnsd answers with an error, never
// asking upstream.
type rejectCase struct {
	name  string
	q     *dns.Msg
	rcode int
	ede   int // the EDE info code the reply must carry; -1: any
}

// withEDNS returns q with an OPT record (DO set).
func withEDNS(q *dns.Msg) *dns.Msg {
	q.SetEdns0(1232, true)
	return q
}

// opcodeQuery is a query with opcode op and RD, CD and AD set, none of
// which a NOTIMP reply may copy.
func opcodeQuery(op int, id uint16) *dns.Msg {
	m := query("op.example.com.", dns.TypeA, id)
	m.Opcode = op
	m.CheckingDisabled = true
	m.AuthenticatedData = true
	return m
}

// notSupported is EDE 21, Not Supported.
const notSupported = int(dns.ExtendedErrorCodeNotSupported)

func rejectCases() []rejectCase {
	two := query("a.example.com.", dns.TypeA, 0x6006)
	two.Question = append(two.Question, dns.Question{Name: "b.example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	none := query("a.example.com.", dns.TypeA, 0x6007)
	none.Question = nil
	twoOPT := withEDNS(query("a.example.com.", dns.TypeA, 0x6008))
	second := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	second.SetUDPSize(4096)
	second.SetDo()
	twoOPT.Extra = append(twoOPT.Extra, second)
	v1 := withEDNS(query("a.example.com.", dns.TypeA, 0x6009))
	v1.IsEdns0().SetVersion(1)
	update := new(dns.Msg)
	update.SetUpdate(zone)
	update.Id = 0x6002
	update.CheckingDisabled, update.AuthenticatedData, update.RecursionDesired = true, true, true

	return []rejectCase{
		{"NOTIFY", withEDNS(opcodeQuery(dns.OpcodeNotify, 0x6001)), dns.RcodeNotImplemented, notSupported},
		{"UPDATE", withEDNS(update), dns.RcodeNotImplemented, notSupported},
		{"STATUS", withEDNS(opcodeQuery(dns.OpcodeStatus, 0x6003)), dns.RcodeNotImplemented, notSupported},
		{"opcode 15", withEDNS(opcodeQuery(15, 0x6004)), dns.RcodeNotImplemented, notSupported},
		{"QDCOUNT 2", withEDNS(two), dns.RcodeFormatError, -1},
		{"QDCOUNT 0", withEDNS(none), dns.RcodeFormatError, -1},
		{"two OPT", twoOPT, dns.RcodeFormatError, -1},
		{"EDNS version 1", v1, dns.RcodeBadVers, -1},
		{"AXFR", withEDNS(query(zone, dns.TypeAXFR, 0x600A)), dns.RcodeRefused, notSupported},
		{"IXFR", withEDNS(query(zone, dns.TypeIXFR, 0x600B)), dns.RcodeRefused, notSupported},
		{"qtype OPT", withEDNS(query(zone, dns.TypeOPT, 0x600C)), dns.RcodeFormatError, notSupported},
		{"qtype MAILA", withEDNS(query(zone, dns.TypeMAILA, 0x600D)), dns.RcodeFormatError, notSupported},
		{"qtype MAILB", withEDNS(query(zone, dns.TypeMAILB, 0x600E)), dns.RcodeFormatError, notSupported},
		{"qtype TSIG", withEDNS(query(zone, dns.TypeTSIG, 0x600F)), dns.RcodeFormatError, notSupported},
		{"qtype TKEY", withEDNS(query(zone, dns.TypeTKEY, 0x6010)), dns.RcodeFormatError, notSupported},
	}
}

// Every error reply to a query with EDNS has exactly one OPT record,
// version 0, with an EDE option; the rcode is right, extended ones
// included; a reply to another opcode copies none of RD, CD, AD; no answer
// records; the upstream is never asked.
func TestErrorRepliesCarryEDE(t *testing.T) {
	s := newSetup(t, options{})
	for _, network := range networks {
		for _, tt := range rejectCases() {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				b := rawExchange(t, network, s.addr(network), pack(t, tt.q), hangBound)
				if b == nil {
					t.Fatal("no reply")
				}
				r := unpack(t, b)
				if r.Id != tt.q.Id || !r.Response || r.Opcode != tt.q.Opcode {
					t.Errorf("ID %#x QR %v opcode %d, want ID %#x, a response, opcode %d", r.Id, r.Response, r.Opcode, tt.q.Id, tt.q.Opcode)
				}
				if r.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				if tt.q.Opcode != dns.OpcodeQuery && (r.RecursionDesired || r.CheckingDisabled || r.AuthenticatedData) {
					t.Errorf("opcode %s: RD %v CD %v AD %v copied into the reply", dns.OpcodeToString[tt.q.Opcode],
						r.RecursionDesired, r.CheckingDisabled, r.AuthenticatedData)
				}
				if len(r.Answer) != 0 {
					t.Errorf("%d answer records", len(r.Answer))
				}
				checkOPT(t, r, b, tt.ede)
			})
		}
	}
	if n := s.auth.Total(); n != 0 {
		t.Errorf("rejected queries reached the upstream %d times", n)
	}
}

// checkOPT checks the OPT record of an error reply (raw bytes b, parsed r):
// exactly one, version 0, with one EDE of code ede (-1: any code, but then
// a text), and the extended rcode split between header and OPT.
func checkOPT(t *testing.T, r *dns.Msg, b []byte, ede int) {
	t.Helper()
	var opts []*dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opts = append(opts, o)
		}
	}
	if len(opts) != 1 {
		t.Fatalf("%d OPT records, want 1", len(opts))
	}
	o := opts[0]
	if o.Version() != 0 {
		t.Errorf("OPT version %d, want 0", o.Version())
	}
	if !o.Do() {
		t.Errorf("DO not echoed")
	}
	if hdr, ext := int(b[3]&0x0F), int(o.Hdr.Ttl>>24); hdr|ext<<4 != r.Rcode || (r.Rcode <= 0xF && ext != 0) {
		t.Errorf("rcode split as header %d, OPT %d; want %d", hdr, ext, r.Rcode)
	}
	var edes []*dns.EDNS0_EDE
	for _, opt := range o.Option {
		if e, ok := opt.(*dns.EDNS0_EDE); ok {
			edes = append(edes, e)
		}
	}
	if len(edes) != 1 {
		t.Fatalf("%d EDE options, want 1", len(edes))
	}
	switch e := edes[0]; {
	case ede >= 0 && int(e.InfoCode) != ede:
		t.Errorf("EDE %d (%q), want %d", e.InfoCode, e.ExtraText, ede)
	case ede < 0 && e.ExtraText == "":
		t.Errorf("EDE %d without text", e.InfoCode)
	}
}

// Without EDNS the same rejections carry no OPT record (except BADVERS,
// which cannot happen without one).
func TestErrorRepliesWithoutEDNS(t *testing.T) {
	s := newSetup(t, options{})
	for _, network := range networks {
		for _, tt := range rejectCases() {
			if tt.rcode > 0xF || tt.name == "two OPT" {
				continue // these need EDNS
			}
			q := tt.q.Copy()
			var extra []dns.RR
			for _, rr := range q.Extra {
				if rr.Header().Rrtype != dns.TypeOPT {
					extra = append(extra, rr)
				}
			}
			q.Extra = extra
			r := exchange(t, network, s.addr(network), q)
			if r.Rcode != tt.rcode || r.IsEdns0() != nil {
				t.Errorf("%s %s: rcode %s, OPT %v; want %s without OPT", network, tt.name,
					dns.RcodeToString[r.Rcode], r.IsEdns0(), dns.RcodeToString[tt.rcode])
			}
		}
	}
	if n := s.auth.Total(); n != 0 {
		t.Errorf("rejected queries reached the upstream %d times", n)
	}
}

// RFC 8482: ANY gets one synthesized HINFO, and the upstream is not asked.
func TestANYAnsweredWithHINFO(t *testing.T) {
	s := newSetup(t, options{})
	for _, network := range networks {
		for i, q := range []*dns.Msg{
			query("Any.Example.com.", dns.TypeANY, 0x7001),
			ednsQuery("Any.Example.com.", dns.TypeANY, 0x7002, 1232, true),
		} {
			r := exchange(t, network, s.addr(network), q)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("%s %d: rcode %s, %d answers; want NOERROR and one HINFO", network, i, dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			h, ok := r.Answer[0].(*dns.HINFO)
			if !ok || h.Cpu != "RFC8482" || h.Hdr.Name != "Any.Example.com." || h.Hdr.Class != dns.ClassINET {
				t.Errorf("%s %d: answer %v, want HINFO \"RFC8482\" for the name as asked", network, i, r.Answer[0])
			}
			if (r.IsEdns0() != nil) != (q.IsEdns0() != nil) {
				t.Errorf("%s %d: OPT in reply %v, in query %v", network, i, r.IsEdns0() != nil, q.IsEdns0() != nil)
			}
		}
	}
	if n := s.auth.Total(); n != 0 {
		t.Errorf("ANY reached the upstream %d times", n)
	}
}

// RFC 4035 §3.2.2: a reply carries the query's CD bit, from the resolver
// (a miss) and from the cache (a hit; the key keeps CD answers apart),
// whatever the upstream's reply had; an error reply to a QUERY too.
func TestCDCopied(t *testing.T) {
	s := newSetup(t, options{})
	for _, network := range networks {
		for i, cd := range []bool{true, false, true} {
			for _, edns := range []bool{false, true} {
				q := query("cd.example.com.", dns.TypeA, uint16(0x7200+i))
				if edns {
					q = withEDNS(q)
				}
				q.CheckingDisabled = cd
				if r := exchange(t, network, s.addr(network), q); r.CheckingDisabled != cd || r.Rcode != dns.RcodeSuccess {
					t.Errorf("%s ask %d, EDNS %v: CD %v, rcode %s; want CD %v, NOERROR", network, i, edns, r.CheckingDisabled, dns.RcodeToString[r.Rcode], cd)
				}
			}
		}
		axfr := query(zone, dns.TypeAXFR, 0x7210)
		axfr.CheckingDisabled = true
		if r := exchange(t, network, s.addr(network), axfr); !r.CheckingDisabled || r.Rcode != dns.RcodeRefused {
			t.Errorf("%s AXFR with CD: CD %v, rcode %s", network, r.CheckingDisabled, dns.RcodeToString[r.Rcode])
		}
	}
	if n := s.auth.Count("cd.example.com.", dns.TypeA); n != 4 {
		t.Errorf("upstream asked %d times, want 4 (one per key: CD, and DO with EDNS)", n)
	}
}

// Types and classes dnsd does not know are not special: they are
// forwarded, and the upstream's answer comes back.
func TestUnknownTypeAndClassForwarded(t *testing.T) {
	s := newEdgeSetup(t, options{}, server.Config{})
	tests := []struct {
		name   string
		qtype  uint16
		qclass uint16
		check  func(dns.RR) bool
	}{
		{"private.example.com.", privateType, dns.ClassINET, func(rr dns.RR) bool {
			u, ok := rr.(*dns.RFC3597)
			return ok && u.Rdata == "deadbeef"
		}},
		{"version.example.com.", dns.TypeTXT, dns.ClassCHAOS, func(rr dns.RR) bool {
			x, ok := rr.(*dns.TXT)
			return ok && len(x.Txt) == 1 && x.Txt[0] == "chaos answer"
		}},
		{"both.example.com.", privateType, dns.ClassCHAOS, func(rr dns.RR) bool {
			_, ok := rr.(*dns.RFC3597)
			return ok
		}},
	}
	for _, network := range networks {
		for i, tt := range tests {
			q := ednsQuery(tt.name, tt.qtype, uint16(0x7100+i), 1232, false)
			q.Question[0].Qclass = tt.qclass
			r := exchange(t, network, s.addr(network), q)
			what := network + " " + tt.name + " " + dns.Class(tt.qclass).String() + " " + dns.Type(tt.qtype).String()
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("%s: rcode %s, %d answers", what, dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			if h := r.Answer[0].Header(); h.Rrtype != tt.qtype || h.Class != tt.qclass || !tt.check(r.Answer[0]) {
				t.Errorf("%s: answer %v", what, r.Answer[0])
			}
			if len(r.Question) != 1 || r.Question[0].Qtype != tt.qtype || r.Question[0].Qclass != tt.qclass {
				t.Errorf("%s: question %v", what, r.Question)
			}
		}
	}
	for _, tt := range tests {
		if n := s.edge.CountClass(tt.name, tt.qtype, tt.qclass); n < 1 {
			t.Errorf("upstream never asked for %s %s %s", tt.name, dns.Class(tt.qclass), dns.Type(tt.qtype))
		}
	}
}

// Pipelined over one TCP connection, a query whose upstream answer is held
// does not delay the one after it (RFC 7766 §6.2.1.1).
func TestTCPOutOfOrderThroughServer(t *testing.T) {
	long := 10 * time.Second
	s := newEdgeSetup(t, options{budget: long, fwdTimeout: long, resolveTimeout: long}, server.Config{})
	release := s.edge.hold(t, "held.example.com.")
	co, err := dns.DialTimeout("tcp", s.tcp, hangBound)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	_ = co.SetDeadline(time.Now().Add(3 * hangBound))
	for _, q := range []*dns.Msg{query("held.example.com.", dns.TypeA, 1), query("quick.example.com.", dns.TypeA, 2)} {
		if err := co.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := co.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if r.Id != 2 || r.Question[0].Name != "quick.example.com." || firstA(r) == "" {
		t.Fatalf("first reply ID %d %v, want the answer to quick.example.com. (ID 2)", r.Id, r.Question)
	}
	release()
	r, err = co.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if r.Id != 1 || r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
		t.Fatalf("second reply ID %d rcode %s, want the answer to held.example.com. (ID 1)", r.Id, dns.RcodeToString[r.Rcode])
	}
}
