package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// answerEntry is an entry as the query path stores it: an upstream answer
// to qname (its question spelled as given) with the records given, packed
// by dnsmsg.Prepare, stored at now, fresh for 300s and stale for an hour.
func answerEntry(tb testing.TB, qname string, qtype uint16, now time.Time, records ...string) *Entry {
	tb.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response, m.RecursionAvailable = true, true
	for _, s := range records {
		rr := mustRR(tb, s)
		if rr.Header().Rrtype == dns.TypeNS {
			m.Ns = append(m.Ns, rr)
		} else {
			m.Answer = append(m.Answer, rr)
		}
	}
	st, err := dnsmsg.Prepare(m, 300, 0, true)
	if err != nil {
		tb.Fatal(err)
	}
	e := &Entry{StoredAt: now.Truncate(time.Millisecond), TTL: 300, Offsets: st.Offsets, Msg: st.Msg}
	e.StaleUntil = e.Expires().Add(time.Hour)
	return e
}

// withMsg is e with its message changed by edit (on a copy).
func withMsg(e *Entry, edit func(msg []byte) []byte) *Entry {
	c := *e
	c.Msg = edit(bytes.Clone(e.Msg))
	return &c
}

// plantCase is a value planted under lbKey and the reason it is refused.
type plantCase struct {
	name   string
	value  []byte
	reason string
}

const (
	mailKey = "dns:{mail.example.test.}:A:IN"
	lbKey   = "dns:{lb.example.test.}:A:IN"
)

// plantCases are values a writer to a shard could leave under lbKey, each
// of which Decode must refuse: mail's entry copied there (as this version
// writes it, as version 1 and as version 2 wrote it), lb's own with QR
// clear, truncated, with lying counts, with bytes after the last record,
// and with a compression pointer into a label.
func plantCases(tb testing.TB) []plantCase {
	tb.Helper()
	now := time.Now()
	// The authority's NS names point into the question name: copied under
	// a name of another length, such pointers land inside a label.
	mail := answerEntry(tb, "mail.example.test.", dns.TypeA, now,
		"mail.example.test. 300 IN A 192.0.2.25", "example.test. 300 IN NS ns1.example.test.")
	lb := answerEntry(tb, "lb.example.test.", dns.TypeA, now,
		"lb.example.test. 300 IN A 192.0.2.80", "example.test. 300 IN NS ns1.example.test.")
	mailV3 := mail.Encode()
	if mailV3[0] != entryVersion {
		tb.Fatalf("mail's entry written as version %d", mailV3[0])
	}
	// The same bytes as version 2 wrote them: no question tag.
	mailV2 := append([]byte{entryV2}, mailV3[1+v3TagLen:]...)
	// Spelled in upper case, mail's question makes a version 1 entry.
	mailV1 := answerEntry(tb, "MAIL.example.test.", dns.TypeA, now,
		"MAIL.example.test. 300 IN A 192.0.2.25").Encode()
	if mailV1[0] != entryV1 {
		tb.Fatalf("upper-case entry written as version %d", mailV1[0])
	}
	query := withMsg(lb, func(m []byte) []byte { m[2] &^= 0x80; return m }).Encode()
	lbV3 := lb.Encode()
	lying := withMsg(lb, func(m []byte) []byte { m[7]++; return m }).Encode() // ANCOUNT + 1
	if lying[0] != entryV1 {
		tb.Fatalf("entry with lying counts written as version %d", lying[0])
	}
	trailing := withMsg(lb, func(m []byte) []byte { return append(m, 0, 0, 0) }).Encode()
	// The NS record's target ns1.example.test. ends in a pointer to
	// "example.test." in the question; make it point into "lb" instead.
	badPtr := withMsg(lb, func(m []byte) []byte {
		i := bytes.LastIndex(m, []byte{0xC0})
		m[i+1] = dnsHeaderLen + 1 // the 'l' of "lb", read as a label length: type 0x40
		return m
	}).Encode()
	return []plantCase{
		{"mail's entry", mailV3, RejectQuestion},
		{"mail's entry as version 2 wrote it", mailV2, RejectVersion},
		{"mail's version 1 entry", mailV1, RejectQuestion},
		{"QR clear", query, RejectHeader},
		{"truncated", lbV3[:len(lbV3)-3], RejectMalformed},
		{"lying counts", lying, RejectMalformed},
		{"bytes after the last record", trailing, RejectMalformed},
		{"pointer into a label", badPtr, RejectMalformed},
	}
}

// logCounter counts the log records that mention each key.
type logCounter struct {
	mu    sync.Mutex
	byKey map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCounter) WithGroup(string) slog.Handler            { return l }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" {
			l.mu.Lock()
			l.byKey[a.Value.String()]++
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *logCounter) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byKey[key]
}

// TestRedisRefusesPlantedEntries plants each case under lb's key and reads
// it on every read path: a Ring read key by key, a Ring's batched reads
// (GET through its shard loop and MGET through GetMany), a Cluster. Each
// is refused, counted by reason and logged once however often it is read.
func TestRedisRefusesPlantedEntries(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t, 3, 0)
	cases := plantCases(t)
	type path struct {
		name  string
		addrs []string
		open  func(RedisConfig) (*Redis, error)
		batch int
		many  bool
		raw   func() redis.UniversalClient
	}
	paths := []path{
		{name: "ring, one call per get", addrs: []string{single.Addr}, open: NewRing, batch: 1},
		{name: "ring, batched get", addrs: []string{single.Addr}, open: NewRing},
		{name: "ring, GetMany (MGET)", addrs: []string{single.Addr}, open: NewRing, many: true},
		{name: "cluster", addrs: redistest.Addrs(cluster.Nodes), open: NewCluster},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			logs := &logCounter{byKey: map[string]int{}}
			r, err := p.open(RedisConfig{Addrs: p.addrs, Timeout: slowTimeout, MaxBatch: p.batch,
				Registerer: reg, Logger: slog.New(logs)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			ctx := t.Context()
			want := map[string]float64{}
			for _, c := range cases {
				if err := r.Client().Set(ctx, lbKey, c.value, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
				for range 5 {
					var e *Entry
					var err error
					if p.many {
						es, errs := make([]*Entry, 1), make([]error, 1)
						if !r.GetMany(ctx, []string{lbKey}, es, errs) {
							t.Fatal("GetMany read nothing")
						}
						e, err = es[0], errs[0]
					} else {
						e, err = r.Get(ctx, lbKey)
					}
					var ce *CorruptError
					if e != nil || !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
						t.Fatalf("%s: Get = %v, %v; want a *CorruptError", c.name, e, err)
					}
					if ce.Reason != c.reason {
						t.Errorf("%s: refused as %q (%v), want %q", c.name, ce.Reason, err, c.reason)
					}
				}
				want[c.reason] += 5
			}
			if n := logs.count(lbKey); n != 1 {
				t.Errorf("%d log lines for %d refused reads of one key, want 1", n, 5*len(cases))
			}
			for _, reason := range rejectReasons {
				got := counterValue(t, r.rejects.counts[reason])
				if got != want[reason] {
					t.Errorf("shardns_cache_rejected_entries_total{reason=%q} = %v, want %v", reason, got, want[reason])
				}
			}
			// The metric is on the registry, every reason exported.
			if n := seriesOf(t, reg, "shardns_cache_rejected_entries_total"); n != len(rejectReasons) {
				t.Errorf("registry has %d series of the rejected entries metric, want %d", n, len(rejectReasons))
			}
			// lb's own entry still reads, on this path too.
			good := answerEntry(t, "lb.example.test.", dns.TypeA, time.Now(), "lb.example.test. 300 IN A 192.0.2.80")
			mustSet(t, r, lbKey, good)
			if got := mustGet(t, r, lbKey); sameEntry(good, got) != "" {
				t.Errorf("lb's own entry: %s", sameEntry(good, got))
			}
		})
	}
}

// TestRejectLogIsBounded notes more refused keys than the log remembers:
// each is logged once for two reads in a row, all are counted, and the
// memory is the fixed table.
func TestRejectLogIsBounded(t *testing.T) {
	logs := &logCounter{byKey: map[string]int{}}
	r := newRejects(nil, slog.New(logs))
	err := corrupt(RejectQuestion, "test")
	keys := make([]string, 3*rejectLogSlots)
	for i := range keys {
		keys[i] = fmt.Sprintf("dns:{k%d.test.}:A:IN", i)
		r.note(keys[i], err, func() string { return "" })
		r.note(keys[i], err, func() string { return "" })
	}
	for _, k := range keys {
		if n := logs.count(k); n != 1 {
			t.Fatalf("%s logged %d times for two reads in a row, want 1", k, n)
		}
	}
	if got := counterValue(t, r.counts[RejectQuestion]); got != float64(2*len(keys)) {
		t.Errorf("counted %v, want %d", got, 2*len(keys))
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// seriesOf counts the series of the family name on reg.
func seriesOf(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestLayeredAddKeepsEntries: Add, the write of a resolver's SERVFAIL,
// never replaces an entry, fresh or stale, in either tier, and stores
// where there is none.
func TestLayeredAddKeepsEntries(t *testing.T) {
	srv := redistest.Start(t)
	clk := newFakeClock()
	clk.t = time.Now()
	l2, err := NewRing(RedisConfig{Addrs: []string{srv.Addr}, Timeout: slowTimeout, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l2.Close() })
	l1 := NewMemory(MemoryConfig{MaxAge: 5 * time.Second, Now: clk.Now})
	l := NewLayered(l1, l2)
	ctx := t.Context()
	good := answerEntry(t, "lb.example.test.", dns.TypeA, clk.Now(), "lb.example.test. 300 IN A 192.0.2.80")
	fail := withMsg(good, func(m []byte) []byte {
		m[3] = m[3]&^0x0F | dns.RcodeServerFailure
		return m[:dnsHeaderLen+len("\x02lb\x07example\x04test\x00")+4]
	})
	fail.Offsets, fail.TTL, fail.StaleUntil = nil, 5, good.StoredAt.Add(5*time.Second)
	fail.Msg[7] = 0 // ANCOUNT
	fail.Msg[9] = 0 // NSCOUNT
	if fail.Rcode() != dns.RcodeServerFailure {
		t.Fatalf("rcode %d", fail.Rcode())
	}
	check := func(what string, wantL1, wantL2 *Entry) {
		t.Helper()
		if got, err := l1.Get(ctx, lbKey); (wantL1 == nil) != (err != nil) || (wantL1 != nil && sameEntry(wantL1, got) != "") {
			t.Errorf("%s: L1 holds %v, %v", what, got, err)
		}
		if got, err := l2.Get(ctx, lbKey); (wantL2 == nil) != (err != nil) || (wantL2 != nil && sameEntry(wantL2, got) != "") {
			t.Errorf("%s: Redis holds %v, %v", what, got, err)
		}
	}

	// Fresh in both tiers.
	if err := l.Set(ctx, lbKey, good); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.Add(ctx, lbKey, fail); ok || err != nil {
		t.Errorf("Add over a fresh entry: %v, %v", ok, err)
	}
	check("fresh", good, good)
	// Stale, in Redis only (L1's copy aged out).
	clk.Advance(10 * time.Minute)
	if ok, err := l.Add(ctx, lbKey, fail); ok || err != nil {
		t.Errorf("Add over a stale entry: %v, %v", ok, err)
	}
	check("stale, L1 aged out", nil, good)
	// None: stored in both.
	if err := l.Delete(ctx, lbKey); err != nil {
		t.Fatal(err)
	}
	fail.StoredAt, fail.StaleUntil = clk.Now().Truncate(time.Millisecond), clk.Now().Add(5*time.Second).Truncate(time.Millisecond)
	if ok, err := l.Add(ctx, lbKey, fail); !ok || err != nil {
		t.Errorf("Add where there is no entry: %v, %v", ok, err)
	}
	check("none", fail, fail)
	// A good answer replaces the SERVFAIL.
	good.StoredAt, good.StaleUntil = fail.StoredAt, fail.StoredAt.Add(time.Hour)
	if err := l.Set(ctx, lbKey, good); err != nil {
		t.Fatal(err)
	}
	check("good after SERVFAIL", good, good)
}
