package lookup

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// bogusResolver answers every query SERVFAIL with an Extended DNS Error,
// as a validating resolver answers bogus data, counting its calls; with
// plain set, SERVFAIL without one.
type bogusResolver struct {
	calls atomic.Int64
	plain bool
}

func (b *bogusResolver) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	return viaMsg(ctx, q, func(_ context.Context, m *dns.Msg) (*dns.Msg, error) {
		b.calls.Add(1)
		a := new(dns.Msg)
		a.SetRcode(m, dns.RcodeServerFailure)
		a.SetEdns0(1232, true)
		if !b.plain {
			opt := a.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeSignatureExpired, ExtraText: "RRSIG expired"})
		}
		return a, nil
	})
}

// TestFailureKeepsEDE: a SERVFAIL's Extended DNS Error reaches the
// Result, is given again by the failure step within its TTL (without
// asking the resolver), and the answer is not stored in the cache, where
// it would lose the EDE; after the failure TTL the resolver is asked
// again. A SERVFAIL without an EDE is cached as before.
func TestFailureKeepsEDE(t *testing.T) {
	b := &bogusResolver{}
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	mem := cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, MaxBytes: 1 << 20, Now: clk.Now})
	h := Build(Config{Store: cache.NewLayered(mem, nil), Resolver: b, Stale: time.Hour, Policy: dnsmsg.Policy{MaxTTL: time.Hour}, Now: clk.Now})
	t.Cleanup(func() { h.Close() })
	ctx := context.Background()
	q := newQuery("www.bogus.test.", dns.TypeA)
	q.DO, q.EDNS = true, true
	q.Key = dnsmsg.Key(q.Name, q.Type, q.Class, true, false)
	for i := range 2 {
		res, err := h.Lookup(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if ede := res.Entry.EDE; ede == nil || *ede != (cache.ExtendedError{Code: dns.ExtendedErrorCodeSignatureExpired, Text: "RRSIG expired"}) || res.Entry.Rcode() != dns.RcodeServerFailure {
			t.Errorf("lookup %d: rcode %d EDE %+v, want SERVFAIL EDE 7", i+1, res.Entry.Rcode(), ede)
		}
		reply := new(dns.Msg)
		wire := dnsmsg.AppendReply(nil, res.Stored(), q, res.ReplyOptions())
		if err := reply.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		if opt := reply.IsEdns0(); opt == nil || len(opt.Option) != 1 || opt.Option[0].(*dns.EDNS0_EDE).InfoCode != dns.ExtendedErrorCodeSignatureExpired {
			t.Errorf("lookup %d: reply OPT %v, want EDE 7", i+1, reply.IsEdns0())
		}
	}
	if n := b.calls.Load(); n != 1 {
		t.Errorf("%d resolver calls, want 1 (the second from the failure step)", n)
	}
	if e, err := mem.Get(ctx, q.Key); err == nil {
		t.Errorf("the SERVFAIL with an EDE was cached: %+v", e)
	}
	clk.Add(6 * time.Second)
	if res, err := h.Lookup(ctx, q); err != nil || res.Entry.EDE == nil || res.Entry.EDE.Code != dns.ExtendedErrorCodeSignatureExpired {
		t.Errorf("after the failure TTL: %v %v", res, err)
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("%d resolver calls after the failure TTL, want 2", n)
	}

	plain := &bogusResolver{plain: true}
	h2, _, _ := setup(t, plain, 0)
	res, err := h2.Lookup(ctx, q)
	if err != nil || res.Entry.EDE != nil || !res.cacheable {
		t.Errorf("SERVFAIL without EDE: %v EDE %+v cacheable %v", err, res.Entry.EDE, res.cacheable)
	}
}
