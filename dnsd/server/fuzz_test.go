package server_test

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/cookie"
	"github.com/shardns/shardns/dnsd/server"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/zonetest"
	"github.com/shardns/shardns/resolverd/resolve"
)

// fuzzZone is served from local zones in the fuzz target: no network, so
// every input is answered at once.
const fuzzZone = `$TTL 300
@     IN SOA ns.fuzz.example. hostmaster.fuzz.example. 1 3600 600 86400 30
      IN NS  ns
ns    IN A   192.0.2.53
www   IN A   192.0.2.1
www   IN AAAA 2001:db8::1
c     IN CNAME www
*.w   IN A   192.0.2.2
`

// zoneResolver is resolverd's resolver over local zones only.
type zoneResolver struct{ r *resolve.Resolver }

func (z zoneResolver) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	return z.r.Resolve(ctx, q)
}

func newZoneServer(f *testing.F) *server.Server {
	f.Helper()
	text := fuzzZone
	for i := range 40 { // a TXT RRset too big for UDP
		text += "big IN TXT \"" + strings.Repeat(string(rune('a'+i%26)), 100) + "\"\n"
	}
	r := zonetest.Resolver(f, nil, "fuzz.example.zone", text)
	return server.New(server.Config{Chain: newChain(options{}, zoneResolver{r}), Cookies: newTestIssuer(f, time.Now)})
}

// FuzzServeMessage hands any bytes to ServeMessage, over UDP and TCP, with
// server cookies on. Less than a header, or a response (QR=1), gets no
// reply; anything else gets exactly one that parses, carries the query's
// ID and opcode and, over UDP, fits the client's size (FORMERR when the
// body does not parse).
func FuzzServeMessage(f *testing.F) {
	srv := newZoneServer(f)
	seeds := []*dns.Msg{
		query("www.fuzz.example.", dns.TypeA, 1),
		query("WwW.FuZz.ExAmPlE.", dns.TypeAAAA, 2),
		ednsQuery("big.fuzz.example.", dns.TypeTXT, 3, 1232, true),
		query("big.fuzz.example.", dns.TypeTXT, 4),
		ednsQuery("c.fuzz.example.", dns.TypeA, 5, 4096, false),
		query("nope.fuzz.example.", dns.TypeA, 6),
		query("x.w.fuzz.example.", dns.TypeANY, 7),
		query("elsewhere.example.", dns.TypeA, 8),
		query(".", dns.TypeNS, 9),
	}
	notify := new(dns.Msg)
	notify.SetNotify("fuzz.example.")
	two := query("www.fuzz.example.", dns.TypeA, 10)
	two.Question = append(two.Question, two.Question[0])
	v1 := ednsQuery("www.fuzz.example.", dns.TypeA, 11, 1232, false)
	v1.IsEdns0().SetVersion(1)
	twoOPT := ednsQuery("www.fuzz.example.", dns.TypeA, 12, 1232, false)
	twoOPT.Extra = append(twoOPT.Extra, twoOPT.Extra[0])
	none := query("www.fuzz.example.", dns.TypeA, 13)
	none.Question = nil
	resp := query("www.fuzz.example.", dns.TypeA, 14)
	resp.Response = true
	seeds = append(seeds, notify, two, v1, twoOPT, none, resp)
	for i, data := range [][]byte{
		mustHex(f, clientCookie),
		newTestIssuer(f, time.Now).AppendReply(nil, mustHex(f, clientCookie), cookie.ClientOnly, testClient),
		make([]byte, 24), // a server cookie that does not verify
		make([]byte, 9),  // malformed
	} {
		seeds = append(seeds, withCookie(ednsQuery("www.fuzz.example.", dns.TypeA, uint16(20+i), 1232, false), data),
			withCookie(query("big.fuzz.example.", dns.TypeTXT, uint16(30+i)), data))
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(make([]byte, 12))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})

	f.Add([]byte{0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a'})

	f.Fuzz(func(t *testing.T, wire []byte) {
		for _, udp := range []bool{true, false} {
			w := newRecorder(udp)
			w.serveWire(srv, append([]byte(nil), wire...))
			if len(wire) < 12 || wire[2]&0x80 != 0 {
				if w.writes != 0 {
					t.Fatalf("udp=%v: replied to a response or a fragment", udp)
				}
				continue
			}
			q := new(dns.Msg)
			if err := q.Unpack(wire); err != nil {
				r := new(dns.Msg)
				if w.writes != 1 || r.Unpack(w.buf) != nil || r.Rcode != dns.RcodeFormatError || r.Id != binary.BigEndian.Uint16(wire) {
					t.Fatalf("udp=%v: unparsable query: %d replies %x, want one FORMERR", udp, w.writes, w.buf)
				}
				continue
			}
			if w.writes != 1 {
				t.Fatalf("udp=%v: %d replies written, want 1", udp, w.writes)
			}
			r := new(dns.Msg)
			if err := r.Unpack(w.buf); err != nil {
				t.Fatalf("udp=%v: unparsable reply: %v", udp, err)
			}
			if r.Id != q.Id || !r.Response || r.Opcode != q.Opcode {
				t.Fatalf("udp=%v: reply ID %d QR %v, query ID %d", udp, r.Id, r.Response, q.Id)
			}
			if udp {
				if limit := replySize(q); len(w.buf) > limit {
					t.Fatalf("UDP reply of %d bytes, client takes %d", len(w.buf), limit)
				}
			}
			if len(q.Question) == 1 && len(r.Question) == 1 && r.Rcode != dns.RcodeFormatError &&
				r.Question[0].Name != dns.Fqdn(q.Question[0].Name) {
				t.Fatalf("udp=%v: question %q, asked %q", udp, r.Question[0].Name, q.Question[0].Name)
			}
		}
	})
}

// replySize is the largest UDP reply the client of q takes.
func replySize(q *dns.Msg) int {
	opt := q.IsEdns0()
	if opt == nil {
		return dns.MinMsgSize
	}
	return min(max(int(opt.UDPSize()), dns.MinMsgSize), dnsmsg.MaxUDPSize)
}
