package rpc_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shardns/shardns/proto/corednsv1"
	"github.com/shardns/shardns/proto/resolverv1"
)

func TestResolveAnswers(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			up := startUpstream(t)
			conn, _ := tr.dial(t, newService(t, writeZone(t), up))
			client := resolverv1.NewResolverClient(conn)

			cases := []struct {
				name     string
				qname    string
				qtype    uint16
				rcode    int
				source   string // exact, or a prefix ending in '*'
				answers  []string
				authSOA  bool
				positive bool
			}{
				{name: "zone", qname: "www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, source: "zone*", answers: []string{"192.0.2.1"}},
				{name: "zone AAAA", qname: "WWW.Example.TEST.", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, source: "zone*", answers: []string{"2001:db8::1"}},
				{name: "zone NXDOMAIN", qname: "nope.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, source: "zone*", authSOA: true},
				{name: "upstream", qname: "www.example.net.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, source: "udp://" + up, answers: []string{"192.0.2.7"}, positive: true},
				{name: "upstream NXDOMAIN", qname: "nx.example.net.", qtype: dns.TypeA, rcode: dns.RcodeNameError, source: "udp://" + up, authSOA: true},
				{name: "upstream SERVFAIL", qname: "fail.example.net.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure, source: "udp://" + up},
				{name: "zone CNAME completed upstream", qname: "out.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, source: "zone*", answers: []string{"www.example.net.", "192.0.2.7"}},
			}
			for i, c := range cases {
				id := uint16(0x4000 + i)
				resp, err := client.Resolve(callCtx(t), &resolverv1.ResolveRequest{Query: wireQuery(t, id, c.qname, c.qtype)})
				if err != nil {
					t.Errorf("%s: RPC error %v; DNS outcomes must be answers", c.name, err)
					continue
				}
				m := unpack(t, resp.GetAnswer())
				if m.Id != id || !m.Response {
					t.Errorf("%s: answer ID %#x response %v, want ID %#x and QR", c.name, m.Id, m.Response, id)
				}
				if m.Rcode != c.rcode {
					t.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[m.Rcode], dns.RcodeToString[c.rcode])
				}
				if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, c.qname) || m.Question[0].Qtype != c.qtype {
					t.Errorf("%s: question %v", c.name, m.Question)
				}
				if p, ok := strings.CutSuffix(c.source, "*"); ok && !strings.HasPrefix(resp.GetUpstream(), p) || !ok && resp.GetUpstream() != c.source {
					t.Errorf("%s: source %q, want %q", c.name, resp.GetUpstream(), c.source)
				}
				if resp.GetRttMicros() < 0 || c.positive && resp.GetRttMicros() == 0 {
					t.Errorf("%s: rtt %dµs", c.name, resp.GetRttMicros())
				}
				if got := rdata(m.Answer); !slices.Equal(got, c.answers) {
					t.Errorf("%s: answer %v, want %v", c.name, got, c.answers)
				}
				if c.authSOA && (len(m.Ns) == 0 || m.Ns[0].Header().Rrtype != dns.TypeSOA) {
					t.Errorf("%s: authority %v, want the SOA", c.name, m.Ns)
				}
			}
		})
	}
}

func TestResolveRejectsBadQueries(t *testing.T) {
	notQuery := new(dns.Msg)
	notQuery.SetQuestion("www.example.test.", dns.TypeA)
	notQuery.Response = true
	noQuestion := new(dns.Msg)
	noQuestion.Id = 7
	twoQuestions := new(dns.Msg)
	twoQuestions.SetQuestion("www.example.test.", dns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, dns.Question{Name: "www.example.net.", Qtype: dns.TypeA, Qclass: dns.ClassINET})

	update := new(dns.Msg)
	update.SetUpdate("example.test.")
	update.Insert([]dns.RR{mustRR(t, "www.example.test. 60 IN A 192.0.2.99")})
	notify := new(dns.Msg)
	notify.SetNotify("example.test.")

	bad := map[string][]byte{
		"garbage":       []byte("this is not a DNS message at all"),
		"empty":         nil,
		"short header":  {0x12, 0x34, 0x01},
		"QR set":        pack(t, notQuery),
		"no question":   pack(t, noQuestion),
		"two questions": pack(t, twoQuestions),
		// Other opcodes are not lookups: an UPDATE must never be relayed
		// to the upstreams with resolverd's address as its source.
		"UPDATE": pack(t, update),
		"NOTIFY": pack(t, notify),
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			conn, _ := tr.dial(t, newService(t, writeZone(t), startUpstream(t)))
			client := resolverv1.NewResolverClient(conn)
			coredns := corednsv1.NewDnsServiceClient(conn)
			for name, wire := range bad {
				_, err := client.Resolve(callCtx(t), &resolverv1.ResolveRequest{Query: wire})
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("Resolve %s: %v, want InvalidArgument", name, err)
				}
				_, err = coredns.Query(callCtx(t), &corednsv1.DnsPacket{Msg: wire})
				if status.Code(err) != codes.InvalidArgument {
					t.Errorf("DnsService/Query %s: %v, want InvalidArgument", name, err)
				}
			}
		})
	}
}

func TestCoreDNSQueryMatchesResolve(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			conn, _ := tr.dial(t, newService(t, writeZone(t), startUpstream(t)))
			client := resolverv1.NewResolverClient(conn)
			coredns := corednsv1.NewDnsServiceClient(conn)
			for i, name := range []string{"www.example.test.", "nope.example.test.", "out.example.test.", "www.example.net.", "fail.example.net."} {
				q := wireQuery(t, uint16(100+i), name, dns.TypeA)
				r1, err := client.Resolve(callCtx(t), &resolverv1.ResolveRequest{Query: q})
				if err != nil {
					t.Fatalf("Resolve %s: %v", name, err)
				}
				r2, err := coredns.Query(callCtx(t), &corednsv1.DnsPacket{Msg: q})
				if err != nil {
					t.Fatalf("Query %s: %v", name, err)
				}
				if !bytes.Equal(r1.GetAnswer(), r2.GetMsg()) {
					t.Errorf("%s: DnsService/Query answered\n%v\nResolve answered\n%v", name, unpack(t, r2.GetMsg()), unpack(t, r1.GetAnswer()))
				}
				if m := unpack(t, r2.GetMsg()); m.Id != uint16(100+i) {
					t.Errorf("%s: DnsService/Query answer ID %d", name, m.Id)
				}
			}
		})
	}
}

func TestUpstreamDownIsAnRPCError(t *testing.T) {
	cases := []struct {
		name     string
		upstream func(testing.TB) string
		deadline time.Duration
	}{
		// Nothing listens: the connected UDP socket sees the refusal.
		{"refused", deadAddr, 3 * time.Second},
		// Something listens and never answers: the call's deadline ends it.
		{"blackholed", blackhole, 500 * time.Millisecond},
	}
	for _, tr := range transports {
		for _, c := range cases {
			t.Run(tr.name+"/"+c.name, func(t *testing.T) {
				conn, _ := tr.dial(t, newService(t, "", c.upstream(t)))
				client := resolverv1.NewResolverClient(conn)
				coredns := corednsv1.NewDnsServiceClient(conn)
				calls := map[string]func(ctx context.Context, q []byte) error{
					"Resolve": func(ctx context.Context, q []byte) error {
						_, err := client.Resolve(ctx, &resolverv1.ResolveRequest{Query: q})
						return err
					},
					"DnsService/Query": func(ctx context.Context, q []byte) error {
						_, err := coredns.Query(ctx, &corednsv1.DnsPacket{Msg: q})
						return err
					},
				}
				for name, call := range calls {
					ctx, cancel := context.WithTimeout(context.Background(), c.deadline)
					start := time.Now()
					err := call(ctx, wireQuery(t, 1, "www.example.net.", dns.TypeA))
					took := time.Since(start)
					cancel()
					if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
						t.Errorf("%s: %v (code %v), want Unavailable or DeadlineExceeded", name, err, code)
					}
					// A generous bound: the call must end with its deadline, not hang.
					if took > c.deadline+2*time.Second {
						t.Errorf("%s: took %v with a %v deadline", name, took, c.deadline)
					}
				}
			})
		}
	}
}

func TestUpstreamDownKeepsZoneAnswers(t *testing.T) {
	conn, _ := serveTCP(t, newService(t, writeZone(t), deadAddr(t)))
	client := resolverv1.NewResolverClient(conn)
	resp, err := client.Resolve(callCtx(t), &resolverv1.ResolveRequest{Query: wireQuery(t, 9, "www.example.test.", dns.TypeA)})
	if err != nil {
		t.Fatalf("zone name with the upstream down: %v", err)
	}
	if m := unpack(t, resp.GetAnswer()); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("zone answer %v", m)
	}
	// The zone's CNAME out of the zone keeps its partial chain.
	resp, err = client.Resolve(callCtx(t), &resolverv1.ResolveRequest{Query: wireQuery(t, 10, "out.example.test.", dns.TypeA)})
	if err != nil {
		t.Fatalf("CNAME out of the zone with the upstream down: %v", err)
	}
	if m := unpack(t, resp.GetAnswer()); len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("partial chain %v, want the CNAME alone", m.Answer)
	}
}

func TestCallWithoutDeadlineIsBounded(t *testing.T) {
	// A call with no deadline gets the service's own; the forwarder's
	// per-attempt timeout ends it first here, with an RPC error.
	conn, _ := serveBufconn(t, newService(t, "", blackhole(t)))
	client := resolverv1.NewResolverClient(conn)
	done := make(chan error, 1)
	go func() {
		_, err := client.Resolve(context.Background(), &resolverv1.ResolveRequest{Query: wireQuery(t, 1, "www.example.net.", dns.TypeA)})
		done <- err
	}()
	select {
	case err := <-done:
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Errorf("err %v, want Unavailable or DeadlineExceeded", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a call without a deadline hung")
	}
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// rdata lists the data of each record: A and AAAA addresses, CNAME targets.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		case *dns.CNAME:
			out = append(out, v.Target)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}
