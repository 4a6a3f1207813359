package lookup

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// siteResolver answers A questions for the names of example.test. it
// knows, each with the zone's NS record in the authority section (whose
// target compresses into the question name), counting calls per name.
// With failing set it answers SERVFAIL.
type siteResolver struct {
	addrs   map[string]string // lower-case name → address
	failing atomic.Bool
	mu      sync.Mutex
	calls   map[string]int
}

func newSiteResolver(addrs map[string]string) *siteResolver {
	return &siteResolver{addrs: addrs, calls: map[string]int{}}
}

func (s *siteResolver) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	return viaMsg(ctx, q, s.answer)
}

func (s *siteResolver) answer(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	name := strings.ToLower(q.Question[0].Name)
	s.mu.Lock()
	s.calls[name]++
	s.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	if s.failing.Load() {
		m.Rcode = dns.RcodeServerFailure
		return m, nil
	}
	addr, ok := s.addrs[name]
	if !ok {
		m.Rcode = dns.RcodeNameError
		soa, _ := dns.NewRR("example.test. 60 IN SOA ns1.example.test. h.example.test. 1 2 3 4 30")
		m.Ns = append(m.Ns, soa)
		return m, nil
	}
	a, _ := dns.NewRR(q.Question[0].Name + " 300 IN A " + addr)
	ns, _ := dns.NewRR("example.test. 300 IN NS ns1.example.test.")
	m.Answer = append(m.Answer, a)
	m.Ns = append(m.Ns, ns)
	return m, nil
}

func (s *siteResolver) callsFor(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

// answerA is the address of the single A record of res's answer, and its
// question's name.
func answerA(t *testing.T, res *Result) (qname, addr string) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(res.Entry.Msg); err != nil {
		t.Fatalf("the answer does not parse: %v", err)
	}
	if len(m.Question) != 1 || len(m.Answer) != 1 {
		t.Fatalf("answer with %d questions and %d records: %v", len(m.Question), len(m.Answer), m)
	}
	a, ok := m.Answer[0].(*dns.A)
	if !ok {
		t.Fatalf("answer record %v", m.Answer[0])
	}
	return m.Question[0].Name, a.A.String()
}

// logLines counts log records that carry a given key attribute.
type logLines struct {
	mu    sync.Mutex
	byKey map[string]int
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logLines) WithGroup(string) slog.Handler            { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" && strings.Contains(r.Message, "refused") {
			l.mu.Lock()
			l.byKey[a.Value.String()]++
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

// TestPlantedEntryIsAMiss plants values under lb.example.test.'s key in a
// real Redis shard: mail.example.test.'s entry copied there, lb's own with
// QR clear, truncated, and with a count that lies. Each time the lookup
// treats the key as a miss: the resolver is asked, the answer is lb's, and
// the refusal is counted; a value planted again and again is logged once.
func TestPlantedEntryIsAMiss(t *testing.T) {
	srv := redistest.Start(t)
	reg := prometheus.NewRegistry()
	logs := &logLines{byKey: map[string]int{}}
	tier, err := cache.NewRing(cache.RedisConfig{Addrs: []string{srv.Addr}, Timeout: 2 * time.Second,
		Registerer: reg, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	res := newSiteResolver(map[string]string{"mail.example.test.": "192.0.2.25", "lb.example.test.": "192.0.2.80"})
	h := Build(Config{Store: cache.NewLayered(nil, tier), Resolver: res, Stale: time.Hour,
		Policy: dnsmsg.Policy{MaxTTL: time.Hour}, Registerer: reg, PrefetchHits: -1, FailureTTL: -1})
	ctx := t.Context()
	rc := srv.Client()
	const mailKey, lbKey = "dns:{mail.example.test.}:A:IN", "dns:{lb.example.test.}:A:IN"

	lookupLB := func(what string) {
		t.Helper()
		before := res.callsFor("lb.example.test.")
		r, err := h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Source != SourceResolver || res.callsFor("lb.example.test.") != before+1 {
			t.Errorf("%s: answered from %s; want a miss that asks the resolver", what, r.Source)
		}
		if name, addr := answerA(t, r); name != "lb.example.test." || addr != "192.0.2.80" {
			t.Errorf("%s: answered %s %s, want lb.example.test. 192.0.2.80", what, name, addr)
		}
	}
	plant := func(v []byte) {
		t.Helper()
		if err := rc.Set(ctx, lbKey, v, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}

	for _, name := range []string{"mail.example.test.", "lb.example.test."} {
		if _, err := h.Lookup(ctx, newQuery(name, dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	mailBytes, err := rc.Get(ctx, mailKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	lbBytes, err := rc.Get(ctx, lbKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := cache.Decode(lbKey, lbBytes)
	if err != nil {
		t.Fatal(err)
	}
	edited := func(edit func([]byte) []byte) []byte {
		c := *lb
		c.Msg = edit(bytes.Clone(lb.Msg))
		return c.Encode()
	}

	// mail's entry under lb's key, planted before each of five queries.
	for i := range 5 {
		plant(mailBytes)
		lookupLB("mail's entry under lb's key, query " + string(rune('1'+i)))
	}
	for _, c := range []struct {
		name  string
		value []byte
	}{
		{"QR clear", edited(func(m []byte) []byte { m[2] &^= 0x80; return m })},
		{"truncated", lbBytes[:len(lbBytes)-3]},
		{"lying counts", edited(func(m []byte) []byte { m[7]++; return m })},
	} {
		plant(c.value)
		lookupLB(c.name)
	}
	if n := logs.byKey[lbKey]; n != 1 {
		t.Errorf("%d log lines for 8 refused reads of one key, want 1", n)
	}
	if got := sumFamily(t, reg, "shardns_cache_rejected_entries_total"); got != 8 {
		t.Errorf("shardns_cache_rejected_entries_total sums to %v, want 8", got)
	}
}

// sumFamily sums every series of a counter family.
func sumFamily(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// servfailFixture is a chain over L1 and a real Redis shard, both on a
// settable clock, whose resolver answers lb.example.test. well until it
// is made to fail.
type servfailFixture struct {
	h     Handler
	res   *siteResolver
	mem   *cache.Memory
	tier  *cache.Redis
	clk   *clock
	reg   *prometheus.Registry
	redis *redistest.Server
}

func newServfailFixture(t *testing.T, l1 bool) *servfailFixture {
	t.Helper()
	f := &servfailFixture{redis: redistest.Start(t), reg: prometheus.NewRegistry(),
		clk: &clock{now: time.Now()},
		res: newSiteResolver(map[string]string{"lb.example.test.": "192.0.2.80"})}
	var err error
	f.tier, err = cache.NewRing(cache.RedisConfig{Addrs: []string{f.redis.Addr}, Timeout: 2 * time.Second, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.tier.Close() })
	var l1Tier cache.Tier
	if l1 {
		f.mem = cache.NewMemory(cache.MemoryConfig{MaxEntries: 100, Now: f.clk.Now})
		l1Tier = f.mem
	}
	f.h = Build(Config{Store: cache.NewLayered(l1Tier, f.tier), Resolver: f.res, Stale: time.Hour,
		Policy: dnsmsg.Policy{MaxTTL: 24 * time.Hour}, Registerer: f.reg, Now: f.clk.Now, PrefetchHits: -1})
	return f
}

// stored decodes what Redis holds under key.
func (f *servfailFixture) stored(t *testing.T, key string) *cache.Entry {
	t.Helper()
	b, err := f.redis.Client().Get(t.Context(), key).Bytes()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	e, err := cache.Decode(key, b)
	if err != nil {
		t.Fatalf("decode %s: %v", key, err)
	}
	return e
}

// staleReply checks that res is lb's good data served stale, and that the
// reply made from it has TTL 30 and EDE 3 (RFC 8767).
func staleReply(t *testing.T, what string, res *Result) {
	t.Helper()
	if res.Source != SourceStale || rcodeOf(res.Entry) != dns.RcodeSuccess {
		t.Fatalf("%s: source %s rcode %d; want lb's good data served stale", what, res.Source, rcodeOf(res.Entry))
	}
	if name, addr := answerA(t, res); name != "lb.example.test." || addr != "192.0.2.80" {
		t.Fatalf("%s: %s %s", what, name, addr)
	}
	q := newQuery("lb.example.test.", dns.TypeA)
	q.EDNS = true
	wire := dnsmsg.AppendReply(nil, res.Stored(), q, dnsmsg.ReplyOptions{Age: res.Age(), Stale: res.Stale()})
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	var ede *dns.EDNS0_EDE
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				ede = e
			}
		}
	}
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != dnsmsg.StaleTTL ||
		ede == nil || ede.InfoCode != dns.ExtendedErrorCodeStaleAnswer {
		t.Errorf("%s: reply %v; want lb's A with TTL 30 and EDE 3", what, m)
	}
}

// TestServfailKeepsGoodEntry: lb's good entry is past its TTL, inside its
// stale window, when the resolver starts answering SERVFAIL. The query
// gets the good data served stale (TTL 30, EDE 3), not the SERVFAIL; the
// entry in Redis and in L1 keeps the good data; the next queries in the
// failure recheck window are answered stale without asking again.
func TestServfailKeepsGoodEntry(t *testing.T) {
	for _, l1 := range []bool{true, false} {
		t.Run(map[bool]string{true: "L1 and Redis", false: "Redis only"}[l1], func(t *testing.T) {
			f := newServfailFixture(t, l1)
			ctx := t.Context()
			const key = "dns:{lb.example.test.}:A:IN"
			if _, err := f.h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			good := f.stored(t, key)
			f.clk.Add(301 * time.Second) // past the TTL of 300 s
			f.res.failing.Store(true)
			for i := range 3 {
				res, err := f.h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA))
				if err != nil {
					t.Fatalf("query %d: %v", i+1, err)
				}
				staleReply(t, "query "+string(rune('1'+i)), res)
			}
			if n := f.res.callsFor("lb.example.test."); n != 2 {
				t.Errorf("%d resolver calls, want 2: the SERVFAIL is remembered for the failure TTL", n)
			}
			if e := f.stored(t, key); rcodeOf(e) != dns.RcodeSuccess || !bytes.Equal(e.Msg, good.Msg) || !e.StoredAt.Equal(good.StoredAt) {
				t.Errorf("Redis holds rcode %d stored at %v; want the good entry stored at %v", rcodeOf(e), e.StoredAt, good.StoredAt)
			}
			if l1 {
				if e, err := f.mem.Get(ctx, key); err == nil && rcodeOf(e) != dns.RcodeSuccess {
					t.Errorf("L1 holds rcode %d over the good entry", rcodeOf(e))
				}
			}
			// Past the failure TTL the resolver is asked again; still
			// failing, the good data is still what is served.
			f.clk.Add(6 * time.Second)
			res, err := f.h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA))
			if err != nil {
				t.Fatal(err)
			}
			staleReply(t, "after the failure TTL", res)
			if n := f.res.callsFor("lb.example.test."); n != 3 {
				t.Errorf("%d resolver calls, want 3", n)
			}
			// The resolver recovers: the good answer replaces the entry.
			f.res.failing.Store(false)
			f.clk.Add(6 * time.Second)
			res, err = f.h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA))
			if err != nil || res.Source != SourceResolver {
				t.Fatalf("after recovery: %v %v", res, err)
			}
			if e := f.stored(t, key); !e.StoredAt.After(good.StoredAt) || rcodeOf(e) != dns.RcodeSuccess {
				t.Errorf("after recovery Redis holds rcode %d stored at %v", rcodeOf(e), e.StoredAt)
			}
		})
	}
}

// TestServfailWithoutGoodEntry: with no good entry the SERVFAIL is the
// answer, cached a few seconds (the policy's SERVFAIL TTL) and never
// served stale.
func TestServfailWithoutGoodEntry(t *testing.T) {
	f := newServfailFixture(t, true)
	ctx := t.Context()
	const key = "dns:{lb.example.test.}:A:IN"
	f.res.failing.Store(true)
	res, err := f.h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA))
	if err != nil || res.Source != SourceResolver || rcodeOf(res.Entry) != dns.RcodeServerFailure {
		t.Fatalf("first query: %v %v; want the resolver's SERVFAIL", res, err)
	}
	e := f.stored(t, key)
	if rcodeOf(e) != dns.RcodeServerFailure || e.TTL != uint32(dnsmsg.DefaultServfailTTL/time.Second) || !e.StaleUntil.Equal(e.Expires()) {
		t.Errorf("stored SERVFAIL: TTL %d, stale until %v (expires %v); want %v and no stale window", e.TTL, e.StaleUntil, e.Expires(), dnsmsg.DefaultServfailTTL)
	}
	pttl := f.redis.Client().PTTL(ctx, key).Val()
	if pttl <= 0 || pttl > dnsmsg.DefaultServfailTTL {
		t.Errorf("Redis keeps the SERVFAIL for %v, want at most %v", pttl, dnsmsg.DefaultServfailTTL)
	}
	res, err = f.h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA))
	if err != nil || res.Source != SourceL1 || rcodeOf(res.Entry) != dns.RcodeServerFailure {
		t.Fatalf("second query: %v %v; want the cached SERVFAIL", res, err)
	}
	// Past its few seconds the SERVFAIL is never served stale: the
	// resolver, still failing, is asked again.
	f.clk.Add(dnsmsg.DefaultServfailTTL + time.Second)
	res, err = f.h.Lookup(ctx, newQuery("lb.example.test.", dns.TypeA))
	if err != nil || res.Stale() || rcodeOf(res.Entry) != dns.RcodeServerFailure {
		t.Fatalf("after the SERVFAIL TTL: %v %v", res, err)
	}
	if n := f.res.callsFor("lb.example.test."); n != 2 {
		t.Errorf("%d resolver calls, want 2", n)
	}
}

// rcodeOf is the RCODE of a stored answer.
func rcodeOf(e *cache.Entry) int { return int(e.Msg[3] & 0x0F) }
