package server_test

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// A reply carries the query's ID and its spelling of the name, byte for
// byte (0x20 clients compare it), whether answered from the resolver or
// from the cache under another spelling.
func TestReplyEchoesIDAndQuestionCase(t *testing.T) {
	s := newSetup(t, options{})
	spellings := []string{"wWw.ExAmPlE.CoM.", "WWW.example.COM.", "www.example.com.", "WwW.eXaMpLe.cOm."}
	for _, network := range []string{"udp", "tcp"} {
		for i, name := range spellings {
			id := uint16(0xBE00 + i)
			r := exchange(t, network, s.addr(network), query(name, dns.TypeA, id))
			if r.Rcode != dns.RcodeSuccess || len(r.Question) != 1 {
				t.Fatalf("%s %s: rcode %s, %d questions", network, name, dns.RcodeToString[r.Rcode], len(r.Question))
			}
			if got := r.Question[0].Name; got != name {
				t.Errorf("%s: question %q, asked %q", network, got, name)
			}
			if !r.Response || !r.RecursionDesired || !r.RecursionAvailable || r.Authoritative {
				t.Errorf("%s %s: flags QR=%v RD=%v RA=%v AA=%v, want QR RD RA, not AA", network, name,
					r.Response, r.RecursionDesired, r.RecursionAvailable, r.Authoritative)
			}
			if got := firstA(r); got != "192.0.2.1" {
				t.Errorf("%s %s: A %q", network, name, got)
			}
		}
	}
	if n := s.auth.Count("www.example.com.", dns.TypeA); n != 1 {
		t.Errorf("upstream asked %d times for every spelling, want 1 (the cache key is case-blind)", n)
	}
}

func TestEDNS(t *testing.T) {
	s := newSetup(t, options{})
	tests := []struct {
		name string
		q    *dns.Msg
		opt  bool
		do   bool
	}{
		{"no EDNS", query("edns.example.com.", dns.TypeA, 1), false, false},
		{"EDNS 512", ednsQuery("edns.example.com.", dns.TypeA, 2, 512, false), true, false},
		{"EDNS 4096 DO", ednsQuery("edns.example.com.", dns.TypeA, 3, 4096, true), true, true},
		{"EDNS 1232 DO", ednsQuery("edns.example.com.", dns.TypeA, 4, 1232, true), true, true},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				r := exchange(t, network, s.addr(network), tt.q)
				if r.Rcode != dns.RcodeSuccess {
					t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
				}
				opt := r.IsEdns0()
				if !tt.opt {
					if opt != nil {
						t.Fatalf("query without EDNS got an OPT record: %v", opt)
					}
					return
				}
				if opt == nil {
					t.Fatal("EDNS query got no OPT record")
				}
				if opt.UDPSize() != dnsmsg.MaxUDPSize || opt.Version() != 0 || opt.Do() != tt.do {
					t.Errorf("OPT size %d version %d DO %v, want %d, 0, %v", opt.UDPSize(), opt.Version(), opt.Do(), dnsmsg.MaxUDPSize, tt.do)
				}
				n := 0
				for _, rr := range r.Extra {
					if rr.Header().Rrtype == dns.TypeOPT {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%d OPT records, want 1", n)
				}
			})
		}
	}
}

// A TXT RRset larger than 1232 bytes: cut to the client's UDP size with TC
// set, whole over TCP.
func TestTruncation(t *testing.T) {
	s := newSetup(t, options{})
	tests := []struct {
		name string
		q    *dns.Msg
		max  int
		opt  bool
	}{
		{"EDNS 1232", ednsQuery(bigName, dns.TypeTXT, 11, 1232, false), 1232, true},
		{"EDNS 4096 capped", ednsQuery(bigName, dns.TypeTXT, 12, 4096, false), dnsmsg.MaxUDPSize, true},
		{"EDNS 600", ednsQuery(bigName, dns.TypeTXT, 13, 600, false), 600, true},
		{"EDNS 100 means 512", ednsQuery(bigName, dns.TypeTXT, 14, 100, false), 512, true},
		{"no EDNS", query(bigName, dns.TypeTXT, 15), 512, false},
	}
	for _, tt := range tests {
		t.Run("udp/"+tt.name, func(t *testing.T) {
			b := rawUDP(t, s.udp, pack(t, tt.q), clientTimeout)
			if b == nil {
				t.Fatal("no reply")
			}
			if len(b) > tt.max {
				t.Errorf("reply of %d bytes, client takes %d", len(b), tt.max)
			}
			r := unpack(t, b)
			if !r.Truncated {
				t.Errorf("TC not set on a reply cut from %d records to %d", bigTXTs, len(r.Answer))
			}
			if r.Id != tt.q.Id || len(r.Question) != 1 || r.Question[0].Name != bigName {
				t.Errorf("truncated reply: ID %d question %v, want %d %s", r.Id, r.Question, tt.q.Id, bigName)
			}
			if (r.IsEdns0() != nil) != tt.opt {
				t.Errorf("OPT present %v, want %v", r.IsEdns0() != nil, tt.opt)
			}
		})
	}
	t.Run("tcp", func(t *testing.T) {
		r := exchange(t, "tcp", s.tcp, ednsQuery(bigName, dns.TypeTXT, 16, 1232, false))
		if r.Truncated || len(r.Answer) != bigTXTs {
			t.Fatalf("TC %v with %d records, want the whole RRset of %d", r.Truncated, len(r.Answer), bigTXTs)
		}
		if n := r.Len(); n <= dnsmsg.MaxUDPSize {
			t.Fatalf("whole reply is %d bytes; the test needs more than %d", n, dnsmsg.MaxUDPSize)
		}
	})
}

func TestRejects(t *testing.T) {
	s := newSetup(t, options{})
	notify := new(dns.Msg)
	notify.SetNotify(zone)
	notify.Id = 21
	notifyEDNS := notify.Copy()
	notifyEDNS.Id = 22
	notifyEDNS.SetEdns0(1232, false)

	update := new(dns.Msg)
	update.SetUpdate(zone)
	update.Id = 23

	two := query("a.example.com.", dns.TypeA, 24)
	two.Question = append(two.Question, dns.Question{Name: "b.example.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET})

	v1 := ednsQuery("v1.example.com.", dns.TypeA, 25, 1232, true)
	v1.IsEdns0().SetVersion(1)

	tests := []struct {
		name   string
		q      *dns.Msg
		rcode  int
		opt    bool // the reply must carry an OPT (version 0)
		edeSet bool // and an EDE in it
		opcode int  // the reply's opcode
	}{
		{"NOTIFY", notify, dns.RcodeNotImplemented, false, false, dns.OpcodeNotify},
		{"NOTIFY EDNS", notifyEDNS, dns.RcodeNotImplemented, true, true, dns.OpcodeNotify},
		{"UPDATE", update, dns.RcodeNotImplemented, false, false, dns.OpcodeUpdate},
		{"two questions", two, dns.RcodeFormatError, false, false, dns.OpcodeQuery},
		{"EDNS version 1", v1, dns.RcodeBadVers, true, true, dns.OpcodeQuery},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				r := exchange(t, network, s.addr(network), tt.q)
				if r.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				if !r.Response || r.Opcode != tt.opcode {
					t.Errorf("QR %v opcode %s, want a response with opcode %s", r.Response, dns.OpcodeToString[r.Opcode], dns.OpcodeToString[tt.opcode])
				}
				opt := r.IsEdns0()
				if tt.opt {
					if opt == nil {
						t.Fatal("no OPT record")
					}
					if opt.Version() != 0 {
						t.Errorf("OPT version %d, want 0", opt.Version())
					}
				}
				if tt.edeSet {
					e := ede(r)
					if e == nil {
						t.Fatal("no EDE")
					}
					if e.ExtraText == "" {
						t.Errorf("EDE %d without text", e.InfoCode)
					}
				}
				if len(r.Answer) != 0 {
					t.Errorf("rejected query has %d answers", len(r.Answer))
				}
			})
		}
	}
	if n := s.auth.Total(); n != 0 {
		t.Errorf("rejected queries reached the upstream %d times", n)
	}
}

// An EDNS query larger than 512 bytes (here padded, RFC 7830) is read
// whole over UDP and answered.
func TestLargeUDPQuery(t *testing.T) {
	s := newSetup(t, options{})
	for _, pad := range []int{400, 1200, 3000} {
		q := ednsQuery("pad.example.com.", dns.TypeA, uint16(pad), 1232, false)
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, pad)})
		wire := pack(t, q)
		b := rawUDP(t, s.udp, wire, clientTimeout)
		if b == nil {
			t.Fatalf("query of %d bytes: no reply", len(wire))
		}
		r := unpack(t, b)
		if r.Id != q.Id || r.Rcode != dns.RcodeSuccess || firstA(r) == "" {
			t.Errorf("query of %d bytes: ID %d rcode %s answer %v", len(wire), r.Id, dns.RcodeToString[r.Rcode], r.Answer)
		}
	}
}

// ServeMessage called directly, as the benchmarks do: the recorder sees one
// reply, fitted for UDP and whole for TCP.
func TestServeMessageDirect(t *testing.T) {
	s := newSetup(t, options{})
	q := ednsQuery(bigName, dns.TypeTXT, 77, 1232, true)
	udp := newRecorder(true)
	udp.serve(s.srv, q)
	if udp.writes != 1 || len(udp.buf) > dnsmsg.MaxUDPSize {
		t.Fatalf("UDP: %d writes, %d bytes", udp.writes, len(udp.buf))
	}
	if r := unpack(t, udp.buf); !r.Truncated || r.Id != 77 {
		t.Errorf("UDP: TC %v ID %d", r.Truncated, r.Id)
	}
	tcp := newRecorder(false)
	tcp.serve(s.srv, q)
	if r := unpack(t, tcp.buf); r.Truncated || len(r.Answer) != bigTXTs || tcp.writes != 1 {
		t.Errorf("TCP: TC %v, %d answers, %d writes", r.Truncated, len(r.Answer), tcp.writes)
	}
}
