package warm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/resolve"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Answers of the test zone warm.test.
const (
	zone    = "warm.test."
	aTTL    = 300 // TTL of every A record
	soaTTL  = 3600
	soaMin  = 60 // SOA MINIMUM: the negative TTL, below soaTTL
	answerA = "192.0.2.1"
)

// authority is an in-process authoritative server for warm.test. on
// 127.0.0.1, UDP and TCP: every name has an A record (given after delay),
// no other type (NODATA with the SOA), except
//
//	nx.warm.test.        NXDOMAIN with the SOA
//	nosoa.warm.test.     NOERROR, no records and no SOA: not cacheable
//	servfail.warm.test.  SERVFAIL
//	refused.warm.test.   REFUSED
//
// Names outside the zone are REFUSED. It counts the questions it was
// asked about names in the zone (the forwarder's health probes are not).
type authority struct {
	addr    string
	delay   time.Duration
	queries atomic.Int64
}

func startAuthority(t testing.TB, delay time.Duration) *authority {
	t.Helper()
	a := &authority{delay: delay}
	pc, ln := listenBoth(t)
	a.addr = pc.LocalAddr().String()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // cleanups run last-in first-out: after the shutdowns
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: a}, {Listener: ln, Handler: a}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { _ = s.ActivateAndServe() })
		t.Cleanup(func() { _ = s.Shutdown() })
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the authoritative server did not start in 5s")
		}
	}
	return a
}

// listenBoth opens UDP and TCP on the same free loopback port.
func listenBoth(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	var err error
	for range 20 {
		pc, perr := net.ListenPacket("udp", "127.0.0.1:0")
		if perr != nil {
			t.Fatal(perr)
		}
		ln, lerr := net.Listen("tcp", pc.LocalAddr().String())
		if lerr == nil {
			return pc, ln
		}
		pc.Close()
		err = lerr
	}
	t.Fatalf("no loopback port free for both UDP and TCP: %v", err)
	return nil, nil
}

func (a *authority) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if name != zone && !strings.HasSuffix(name, "."+zone) {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	a.queries.Add(1)
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: soaTTL},
		Ns: "ns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: soaMin}
	switch {
	case name == "servfail."+zone:
		m.Rcode = dns.RcodeServerFailure
	case name == "refused."+zone:
		m.Rcode = dns.RcodeRefused
	case name == "nosoa."+zone:
	case name == "nx."+zone:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa}
	case q.Qtype == dns.TypeA:
		time.Sleep(a.delay)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: aTTL},
			A: net.ParseIP(answerA)}}
	default:
		m.Ns = []dns.RR{soa}
	}
	_ = w.WriteMsg(m)
}

// newResolver is resolverd's resolver with no local zones and one
// upstream, built as resolverd/service builds it from -upstream.
func newResolver(t testing.TB, upstream string) *resolve.Resolver {
	t.Helper()
	r, err := resolve.Open(resolve.Config{Upstreams: []string{upstream}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// newStore is the cache tier over one Redis shard, with a budget roomy
// enough for a loaded test machine.
func newStore(t testing.TB, addr string) *cache.Redis {
	t.Helper()
	s, err := cache.NewRing(cache.RedisConfig{Addrs: []string{addr}, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// failingResolver fails every query and counts them: a chain built on it
// answers only from the cache.
type failingResolver struct{ calls atomic.Int64 }

func (f *failingResolver) Resolve(context.Context, []byte) ([]byte, error) {
	f.calls.Add(1)
	return nil, errors.New("no resolver in this test")
}

// fixture is one Redis shard, the authority, resolverd's resolver and a
// Warmer over them.
type fixture struct {
	auth   *authority
	redis  *redis.Client
	store  *cache.Redis
	res    *resolve.Resolver
	warmer *Warmer
	reg    *prometheus.Registry
	policy dnsmsg.Policy
	stale  time.Duration
}

func newFixture(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	f := &fixture{
		auth:   startAuthority(t, 0),
		redis:  srv.Client(),
		store:  newStore(t, srv.Addr),
		reg:    prometheus.NewRegistry(),
		policy: dnsmsg.Policy{MaxTTL: 120 * time.Second}, // below aTTL: the clamp shows
		stale:  time.Hour,
	}
	f.res = newResolver(t, f.auth.addr)
	w, err := New(Config{Resolver: f.res, Store: f.store, Policy: f.policy, Stale: f.stale, Registerer: f.reg, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	f.warmer = w
	return f
}

// chain is the query path as the frontends build it over this shard,
// with the given resolver.
func (f *fixture) chain(r lookup.Resolver) lookup.Handler {
	return lookup.Build(lookup.Config{
		Store: cache.NewLayered(nil, f.store), Resolver: r, Policy: f.policy, Stale: f.stale,
		FailureTTL: -1, PrefetchHits: -1,
	})
}

// keys lists every key of the shard.
func (f *fixture) keys(t *testing.T) []string {
	t.Helper()
	ks, err := f.redis.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// entry reads and decodes the entry under key straight from Redis.
func (f *fixture) entry(t *testing.T, key string) *cache.Entry {
	t.Helper()
	b, err := f.redis.Get(t.Context(), key).Bytes()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	e, err := cache.Decode(key, b)
	if err != nil {
		t.Fatalf("decode %s: %v", key, err)
	}
	return e
}

func (f *fixture) flush(t *testing.T) {
	t.Helper()
	if err := f.redis.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
}

// results reads the counter shardns_warm_results_total{kind, outcome}
// from the fixture's registry.
func (f *fixture) results(t *testing.T, kind, outcome string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "shardns_warm_results_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == kind && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// clientQuery is what a frontend makes of a client's question.
func clientQuery(t *testing.T, name string, qtype uint16) *dnsmsg.Query {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	q, rej := dnsmsg.ParseQuery(m)
	if rej != nil {
		t.Fatalf("query %s: %+v", name, rej)
	}
	return &q
}

func warmTask(name, qtype string) *queue.Task {
	return &queue.Task{ID: "t-" + name, Job: "j", Kind: queue.KindWarm, Name: name, Type: qtype, Created: time.Now()}
}

// TestWarmStoresWhatTheQueryPathStores warms names with the workers'
// handler and checks that (1) the query path then answers them from the
// cache without asking the resolver, and (2) the entry is the one the query
// path stores for the same question on a miss: the same key, TTL (clamped
// by the policy, RFC 2308 for negative answers), stale window, message and
// Redis expiry.
func TestWarmStoresWhatTheQueryPathStores(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		task      string // the task's name, as a job gives it
		client    string // the same name as a client spells it
		qtype     string
		key       string // DESIGN.md's key
		result    string // prefix of Handle's result
		ttl       uint32
		rcode     int
		answers   int
		cacheable bool
	}{
		{"WwW.Warm.Test", "www.WARM.test.", "A", "dns:{www.warm.test.}:A:IN", "NOERROR ttl=120 answers=1", 120, dns.RcodeSuccess, 1, true},
		{"www.warm.test.", "WWW.warm.test.", "AAAA", "dns:{www.warm.test.}:AAAA:IN", "NOERROR ttl=60 answers=0", soaMin, dns.RcodeSuccess, 0, true},
		{"nx.warm.test", "NX.warm.test.", "A", "dns:{nx.warm.test.}:A:IN", "NXDOMAIN ttl=60 answers=0", soaMin, dns.RcodeNameError, 0, true},
		{"nosoa.warm.test", "nosoa.warm.test.", "MX", "dns:{nosoa.warm.test.}:MX:IN", "NOERROR not cacheable", 0, dns.RcodeSuccess, 0, false},
	}
	for _, c := range cases {
		t.Run(c.task+"/"+c.qtype, func(t *testing.T) {
			f.flush(t)
			qtype, _ := dnsmsg.ParseType(c.qtype)
			before := f.auth.queries.Load()
			res, err := f.warmer.Handle(t.Context(), warmTask(c.task, c.qtype))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if !strings.HasPrefix(res, c.result) {
				t.Errorf("Handle = %q, want %q…", res, c.result)
			}
			if n := f.auth.queries.Load() - before; n != 1 {
				t.Errorf("upstream asked %d times, want 1", n)
			}
			keys := f.keys(t)
			if !c.cacheable {
				if len(keys) != 0 {
					t.Fatalf("an uncacheable answer was stored: %v", keys)
				}
				// The query path does not store it either.
				if _, err := f.chain(f.res).Lookup(t.Context(), clientQuery(t, c.client, qtype)); err != nil {
					t.Fatal(err)
				}
				if keys := f.keys(t); len(keys) != 0 {
					t.Fatalf("the query path stored %v", keys)
				}
				return
			}
			if len(keys) != 1 || keys[0] != c.key {
				t.Fatalf("keys after the warm task: %v, want [%s]", keys, c.key)
			}
			warmed := f.entry(t, c.key)
			pttl := f.redis.PTTL(t.Context(), c.key).Val()
			if want := time.Duration(c.ttl)*time.Second + f.stale; pttl > want || pttl < want-5*time.Second {
				t.Errorf("Redis expiry %v, want TTL + stale window = %v", pttl, want)
			}

			// The query path answers from the cache, not the resolver.
			none := &failingResolver{}
			hit, err := f.chain(none).Lookup(t.Context(), clientQuery(t, c.client, qtype))
			if err != nil {
				t.Fatalf("lookup after warming: %v", err)
			}
			if hit.Source != lookup.SourceRedis || none.calls.Load() != 0 {
				t.Fatalf("lookup after warming: source %s, %d resolver calls; want a Redis hit", hit.Source, none.calls.Load())
			}
			var m dns.Msg
			if err := m.Unpack(hit.Entry.Msg); err != nil {
				t.Fatal(err)
			}
			if m.Rcode != c.rcode || len(m.Answer) != c.answers {
				t.Fatalf("cached answer: %s with %d records, want %s with %d\n%v",
					dns.RcodeToString[m.Rcode], len(m.Answer), dns.RcodeToString[c.rcode], c.answers, &m)
			}
			if c.answers > 0 {
				if a, ok := m.Answer[0].(*dns.A); !ok || a.A.String() != answerA {
					t.Errorf("cached answer: %v", m.Answer[0])
				}
			}

			// A miss on the query path stores the same entry.
			f.flush(t)
			miss, err := f.chain(f.res).Lookup(t.Context(), clientQuery(t, c.client, qtype))
			if err != nil {
				t.Fatalf("lookup on a miss: %v", err)
			}
			if miss.Source != lookup.SourceResolver {
				t.Fatalf("lookup on a miss: source %s", miss.Source)
			}
			// The query path answers before its write reaches Redis.
			stored := f.keys(t)
			for wait := time.Now().Add(5 * time.Second); len(stored) == 0 && time.Now().Before(wait); stored = f.keys(t) {
				time.Sleep(5 * time.Millisecond)
			}
			if len(stored) != 1 || stored[0] != c.key {
				t.Fatalf("keys after a miss on the query path: %v, want [%s]", stored, c.key)
			}
			looked := f.entry(t, c.key)
			if warmed.TTL != c.ttl || looked.TTL != c.ttl {
				t.Errorf("TTL: warmed %d, query path %d, want %d", warmed.TTL, looked.TTL, c.ttl)
			}
			if w, l := warmed.StaleUntil.Sub(warmed.StoredAt), looked.StaleUntil.Sub(looked.StoredAt); w != l {
				t.Errorf("stale window: warmed %v, query path %v", w, l)
			}
			if !equalMsgs(t, warmed.Msg, looked.Msg) || fmt.Sprint(warmed.Offsets) != fmt.Sprint(looked.Offsets) {
				t.Errorf("stored messages differ\nwarmed:     %x %v\nquery path: %x %v", warmed.Msg, warmed.Offsets, looked.Msg, looked.Offsets)
			}
		})
	}
	if got := f.results(t, queue.KindWarm, "stored"); got != 3 {
		t.Errorf("warm/stored = %v, want 3", got)
	}
	if got := f.results(t, queue.KindWarm, "uncacheable"); got != 1 {
		t.Errorf("warm/uncacheable = %v, want 1", got)
	}
}

// equalMsgs compares two stored messages as DNS messages: every field of
// the wire form but the ID, which differs per upstream query.
func equalMsgs(t *testing.T, a, b []byte) bool {
	t.Helper()
	var ma, mb dns.Msg
	if err := ma.Unpack(a); err != nil {
		t.Fatal(err)
	}
	if err := mb.Unpack(b); err != nil {
		t.Fatal(err)
	}
	ma.Id, mb.Id = 0, 0
	return ma.String() == mb.String() && len(a) == len(b)
}

// clock is a settable clock for the Warmer's StoredAt stamps.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// TestRefreshSkipsEntryStoredSinceScheduled: a refresh task finds its entry
// stored again after the task was created (by a miss, or another run) and
// does nothing; one created after the entry was stored re-resolves it, as
// does one whose entry is gone.
func TestRefreshSkipsEntryStoredSinceScheduled(t *testing.T) {
	var clk clock
	clk.set(time.Now())
	f := newFixture(t, clk.now)
	const key = "dns:{popular.warm.test.}:A:IN"
	refresh := func(created time.Time) *queue.Task {
		return &queue.Task{ID: "r", Kind: queue.KindRefresh, Key: key, Created: created}
	}

	scheduled := clk.now()
	clk.add(time.Second)
	if _, err := f.warmer.Handle(t.Context(), warmTask("popular.warm.test", "A")); err != nil {
		t.Fatal(err)
	}
	first := f.entry(t, key)
	if !first.StoredAt.Equal(clk.now().Truncate(time.Millisecond)) {
		t.Fatalf("stored at %v, want %v", first.StoredAt, clk.now())
	}

	asked := f.auth.queries.Load()
	res, err := f.warmer.Handle(t.Context(), refresh(scheduled))
	if err != nil || res != "fresh already" {
		t.Fatalf("refresh scheduled before the entry was stored: %q, %v; want skipped", res, err)
	}
	if n := f.auth.queries.Load() - asked; n != 0 {
		t.Errorf("a skipped refresh asked the upstream %d times", n)
	}
	if e := f.entry(t, key); !e.StoredAt.Equal(first.StoredAt) {
		t.Errorf("a skipped refresh stored the entry again at %v", e.StoredAt)
	}

	clk.add(time.Second)
	later := clk.now()
	clk.add(time.Second)
	res, err = f.warmer.Handle(t.Context(), refresh(later))
	if err != nil || !strings.HasPrefix(res, "NOERROR ttl=120") {
		t.Fatalf("refresh scheduled after the entry was stored: %q, %v; want it re-resolved", res, err)
	}
	if n := f.auth.queries.Load() - asked; n != 1 {
		t.Errorf("the refresh asked the upstream %d times, want 1", n)
	}
	if e := f.entry(t, key); !e.StoredAt.After(first.StoredAt) {
		t.Errorf("refreshed entry stored at %v, not after %v", e.StoredAt, first.StoredAt)
	}

	f.flush(t)
	if res, err := f.warmer.Handle(t.Context(), refresh(later)); err != nil || !strings.HasPrefix(res, "NOERROR") {
		t.Fatalf("refresh of an entry that is gone: %q, %v", res, err)
	}
	if keys := f.keys(t); len(keys) != 1 || keys[0] != key {
		t.Errorf("keys after refreshing a gone entry: %v", keys)
	}
	if got := f.results(t, queue.KindRefresh, "skipped"); got != 1 {
		t.Errorf("refresh/skipped = %v, want 1", got)
	}
}

// TestUpstreamFailureFailsTask: SERVFAIL and REFUSED from the upstream make
// the task fail (for the queue to retry it) and store nothing.
func TestUpstreamFailureFailsTask(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct{ name, rcode string }{
		{"servfail.warm.test", "SERVFAIL"},
		{"refused.warm.test", "REFUSED"},
	} {
		for _, task := range []*queue.Task{
			warmTask(c.name, "A"),
			{ID: "r", Kind: queue.KindRefresh, Key: dnsmsg.Key(c.name, dns.TypeA, dns.ClassINET, false, false), Created: time.Now()},
		} {
			res, err := f.warmer.Handle(t.Context(), task)
			if err == nil || !strings.Contains(err.Error(), "upstream answered "+c.rcode) {
				t.Errorf("%s task for %s: %q, %v; want an error naming %s", task.Kind, c.name, res, err, c.rcode)
			}
		}
	}
	if keys := f.keys(t); len(keys) != 0 {
		t.Errorf("failed tasks stored %v", keys)
	}
	for _, kind := range []string{queue.KindWarm, queue.KindRefresh} {
		if got := f.results(t, kind, "failed"); got != 2 {
			t.Errorf("%s/failed = %v, want 2", kind, got)
		}
	}
}

// Settings of BenchmarkWorkers.
const (
	benchDelay   = 20 * time.Millisecond // the upstream's time per A answer
	benchJobSize = 60                    // distinct names per job
	benchJobWait = 30 * time.Second      // bound on one job
)

// BenchmarkWorkers measures the queue's throughput with 1 to 4 workers
// doing warm tasks through resolverd's resolver against an upstream that
// takes benchDelay per answer, with a real queue Redis (AOF on, as
// deploy/redis/queue.conf) and a real cache Redis. Each iteration submits
// a job of benchJobSize distinct names and waits until it ends. With the
// upstream's delay dominating, N workers should come close to N times one.
//
//	go test -run '^$' -bench BenchmarkWorkers -benchtime 3x ./resolverd/warm/
func BenchmarkWorkers(b *testing.B) {
	auth := startAuthority(b, benchDelay)
	qsrv := redistest.Start(b, "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction")
	csrv := redistest.Start(b)
	store := newStore(b, csrv.Addr)
	w, err := New(Config{Resolver: newResolver(b, auth.addr), Store: store, Policy: dnsmsg.Policy{MaxTTL: 24 * time.Hour}, Stale: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	info := qsrv.Client()
	for _, n := range []int{1, 2, 3, 4} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			q, err := queue.Open(qsrv.Addr, queue.Config{Name: fmt.Sprintf("bench%d", n)})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Client().Close()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { q.Work(ctx, queue.Workers{N: n, Name: "bench"}, w.Handle) })
			defer func() { cancel(); wg.Wait() }()
			waitBlocked(b, info, n)

			tasks, job := 0, 0
			for b.Loop() {
				items := make([]queue.Item, benchJobSize)
				for i := range items {
					items[i] = queue.Item{Name: fmt.Sprintf("n%d.j%d.w%d.%s", i, job, n, zone), Type: "A"}
				}
				runJob(b, q, items)
				tasks += len(items)
				job++
			}
			b.ReportMetric(float64(tasks)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// waitBlocked waits until n clients of the queue's Redis are blocked in
// BLMOVE: every worker is waiting for a task.
func waitBlocked(b *testing.B, c *redis.Client, n int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := c.Info(context.Background(), "clients").Result()
		if err != nil {
			b.Fatal(err)
		}
		var blocked int
		for line := range strings.SplitSeq(s, "\r\n") {
			if v, ok := strings.CutPrefix(line, "blocked_clients:"); ok {
				fmt.Sscan(v, &blocked)
			}
		}
		if blocked >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d workers waiting on the queue after 10s", blocked, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runJob submits items as one job and waits until it ends, every task done.
func runJob(b *testing.B, q *queue.Queue, items []queue.Item) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchJobWait)
	defer cancel()
	job, err := q.Submit(ctx, items, "bench")
	if err != nil {
		b.Fatal(err)
	}
	for {
		j, err := q.Job(ctx, job.ID)
		if err != nil {
			b.Fatalf("job %s: %v", job.ID, err)
		}
		if j.State != queue.JobRunning {
			if j.Done != int64(len(items)) {
				b.Fatalf("job %s ended %s with %d of %d done: %+v", j.ID, j.State, j.Done, len(items), j)
			}
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("job %s did not end within %v: %+v", j.ID, benchJobWait, j)
		case <-time.After(2 * time.Millisecond):
		}
	}
}
