package stats

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/fleetstats"
)

// newLocal returns the process numbers of a chain that answered l1 and
// resolver lookups, over a real L1 holding entries.
func newLocal(t *testing.T, l1, resolver float64, entries int) *fleetstats.Local {
	t.Helper()
	reg := prometheus.NewRegistry()
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: fleetstats.MetricAnswers, Help: "answers"}, []string{"source"})
	reg.MustRegister(answers)
	answers.WithLabelValues("l1").Add(l1)
	answers.WithLabelValues("resolver").Add(resolver)
	mem := cache.NewMemory(cache.MemoryConfig{MaxEntries: 1000, MaxBytes: 1 << 20})
	for i := range entries {
		now := time.Now()
		e := &cache.Entry{StoredAt: now, TTL: 60, StaleUntil: now.Add(time.Minute), Msg: make([]byte, 40)}
		if !mem.Add(string(rune('a'+i))+".test./1", e) {
			t.Fatal("L1 refused an entry")
		}
	}
	return fleetstats.NewLocal(fleetstats.LocalConfig{
		ID: "host:1", Kind: "dnsd", Gatherer: reg, L1: mem, L1MaxEntries: 1000, L1MaxBytes: 1 << 20,
	})
}

func serve(h http.Handler) (*httptest.ResponseRecorder, map[string]any) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats", nil))
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return rec, body
}

// Without Redis, /stats describes the process: its L1 and its lookups,
// with empty shard and frontend lists.
func TestStatsProcessWithoutRedis(t *testing.T) {
	h := Of(fleetstats.Sources{Local: newLocal(t, 3, 1, 5)})
	if h == nil {
		t.Fatal("Of with process numbers only is nil")
	}
	rec, body := serve(h)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := keys(body); !slices.Equal(got, []string{"fleet", "frontends", "generated_at", "process", "shards"}) {
		t.Errorf("keys %v", got)
	}
	var resp Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	p := resp.Process
	if p == nil || p.Kind != "dnsd" || p.Queries != 4 || p.L1Hits != 3 || p.Misses != 1 || p.HitRatio == nil || *p.HitRatio != 0.75 {
		t.Fatalf("process %+v", p)
	}
	if p.L1 == nil || p.L1.Entries != 5 || p.L1.Bytes <= 0 || p.L1.MaxEntries != 1000 || p.L1.MaxBytes != 1<<20 {
		t.Errorf("process L1 %+v", p.L1)
	}
	for _, k := range []string{"qps", "p50_ms", "p90_ms", "p99_ms", "window_seconds", "recent_hit_ratio", "evictions"} {
		if !containsKey(body["process"], k) {
			t.Errorf("process lacks %q: %v", k, body["process"])
		}
	}
	if len(resp.Shards) != 0 || len(resp.Frontends) != 0 || resp.Errors != nil {
		t.Errorf("shards %v frontends %v errors %v, want none", resp.Shards, resp.Frontends, resp.Errors)
	}
	if Of(fleetstats.Sources{}) != nil {
		t.Error("Of with nothing to show is not nil")
	}
}

// With the whole Redis tier down, the process's own numbers are still
// served, the failures listed.
func TestStatsProcessWithRedisDown(t *testing.T) {
	f := newFleet(t, 2)
	for _, s := range f.srv {
		s.Kill()
	}
	rec, _ := serve(New(f.src, newLocal(t, 1, 1, 1)))
	var resp Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || resp.Process == nil || resp.Process.Queries != 2 || len(resp.Errors) == 0 || len(resp.Shards) != 2 {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
}

// containsKey reports whether v is an object holding k, at its top or in
// an object it holds.
func containsKey(v any, k string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if _, ok := m[k]; ok {
		return true
	}
	for _, sub := range m {
		if containsKey(sub, k) {
			return true
		}
	}
	return false
}
