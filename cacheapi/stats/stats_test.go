package stats

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/fleetstats"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// fleet is a tier of n real shards: the cache tier for the shard stats and
// a Ring over the same shards where frontends publish.
type fleet struct {
	srv   []*redistest.Server
	tier  *cache.Redis
	ring  *redis.Ring
	src   *fleetstats.Reader
	stats *httptest.Server
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	srv := redistest.StartN(t, n)
	tier, err := cache.NewRing(cache.RedisConfig{Addrs: redistest.Addrs(srv)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tier.Close() })
	shards := map[string]string{}
	for _, a := range redistest.Addrs(srv) {
		shards[a] = a
	}
	ring := redis.NewRing(&redis.RingOptions{
		Addrs: shards,
		NewClient: func(opt *redis.Options) *redis.Client {
			opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
			return redis.NewClient(opt)
		},
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	})
	t.Cleanup(func() { _ = ring.Close() })
	f := &fleet{srv: srv, tier: tier, ring: ring}
	f.src = &fleetstats.Reader{Client: ring, ShardAddrs: tier.Shards(), EachShard: tier.ForEachShard}
	f.stats = httptest.NewServer(Handler(f.src))
	t.Cleanup(f.stats.Close)
	return f
}

// publish publishes once as frontend id with answers l1, redis, resolver.
func (f *fleet) publish(t *testing.T, id, kind string, l1, rds, resolver float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: fleetstats.MetricAnswers, Help: "answers"}, []string{"source"})
	reg.MustRegister(answers)
	answers.WithLabelValues("l1").Add(l1)
	answers.WithLabelValues("redis").Add(rds)
	answers.WithLabelValues("resolver").Add(resolver)
	p := fleetstats.NewPublisher(fleetstats.PublisherConfig{Redis: f.ring, ID: id, Kind: kind, Gatherer: reg})
	if err := p.Publish(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// statsHolder returns the index of the server holding the fleet's stats.
func (f *fleet) statsHolder(t *testing.T) int {
	t.Helper()
	for i, s := range f.srv {
		if n, err := s.Client().Exists(t.Context(), fleetstats.FrontendsKey).Result(); err == nil && n == 1 {
			return i
		}
	}
	t.Fatal("no shard holds the stats")
	return -1
}

// get fetches /stats, checked to answer within a generous bound, and
// decodes the body into v.
func (f *fleet) get(t *testing.T, method string, v any) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, f.stats.URL+"/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if d := time.Since(start); d > Timeout+3*time.Second {
		t.Errorf("/stats took %v", d)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("body: %v", err)
	}
	return resp
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestStatsShape(t *testing.T) {
	f := newFleet(t, 4)
	f.publish(t, "fe-a", "dnsd", 6, 2, 2)
	f.publish(t, "fe-b", "cacheapi", 1, 1, 0)
	// Of the shards not holding the stats, kill one and freeze another.
	h := f.statsHolder(t)
	killed, paused := f.srv[(h+1)%4], f.srv[(h+2)%4]
	killed.Kill()
	paused.Pause()
	t.Cleanup(paused.Resume)

	var body map[string]any
	if resp := f.get(t, http.MethodGet, &body); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	if got := keys(body); !slices.Equal(got, []string{"fleet", "frontends", "generated_at", "shards"}) {
		t.Errorf("top-level keys %v", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, body["generated_at"].(string)); err != nil {
		t.Errorf("generated_at: %v", err)
	}

	shards := body["shards"].([]any)
	up := 0
	for _, s := range shards {
		s := s.(map[string]any)
		addr := s["addr"].(string)
		down := addr == killed.Addr || addr == paused.Addr
		if s["up"].(bool) == down {
			t.Errorf("shard %s: %v", addr, s)
		}
		if down && s["error"] == "" {
			t.Errorf("down shard %s has no error", addr)
		}
		if s["up"].(bool) {
			up++
			for _, k := range []string{"keys", "used_memory", "maxmemory", "maxmemory_policy", "evicted_keys",
				"expired_keys", "keyspace_hits", "keyspace_misses", "hit_ratio"} {
				if _, ok := s[k]; !ok {
					t.Errorf("shard %s lacks %q: %v", addr, k, s)
				}
			}
		}
	}
	if len(shards) != 4 || up != 2 {
		t.Errorf("%d shards, %d up; want 4, 2 up", len(shards), up)
	}

	fronts := body["frontends"].([]any)
	if len(fronts) != 2 {
		t.Fatalf("frontends %v", fronts)
	}
	a := fronts[0].(map[string]any)
	for _, k := range []string{"id", "kind", "started_at", "updated_at", "age_ms", "interval_ms", "queries", "l1_hits",
		"redis_hits", "misses", "stale", "errors", "hit_ratio", "qps", "p50_ms", "p90_ms", "p99_ms"} {
		if _, ok := a[k]; !ok {
			t.Errorf("frontend lacks %q: %v", k, a)
		}
	}
	if a["id"] != "fe-a" || a["kind"] != "dnsd" || a["queries"] != 10.0 || a["hit_ratio"] != 0.8 {
		t.Errorf("fe-a = %v", a)
	}
	fl := body["fleet"].(map[string]any)
	if fl["frontends"] != 2.0 || fl["queries"] != 12.0 || fl["l1_hits"] != 7.0 || fl["misses"] != 2.0 {
		t.Errorf("fleet = %v", fl)
	}
	if _, ok := body["errors"]; ok {
		t.Errorf("errors reported: %v", body["errors"])
	}

	// HEAD answers too.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, f.stats.URL+"/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}

func TestStatsShardHoldingFleetFrozen(t *testing.T) {
	f := newFleet(t, 3)
	f.publish(t, "fe", "dnsd", 1, 0, 0)
	frozen := f.srv[f.statsHolder(t)]
	frozen.Pause()
	t.Cleanup(frozen.Resume)

	var body Response
	if resp := f.get(t, http.MethodGet, &body); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %+v", resp.StatusCode, body)
	}
	// Either the read timed out, or the Ring had already moved {stats} to
	// a live shard that holds nothing yet: no frontend is shown either way.
	if len(body.Frontends) != 0 || body.Fleet.Frontends != 0 {
		t.Errorf("frontends read from a frozen shard: %+v", body.Frontends)
	}
	up := 0
	for _, s := range body.Shards {
		if s.Up {
			up++
		}
		if s.Addr == frozen.Addr && s.Up {
			t.Errorf("frozen shard listed up: %+v", s)
		}
	}
	if len(body.Shards) != 3 || up != 2 {
		t.Errorf("shards %+v; want 3, 2 up", body.Shards)
	}
}

func TestStatsNothingReadable(t *testing.T) {
	f := newFleet(t, 2)
	for _, s := range f.srv {
		s.Kill()
	}
	var body map[string]any
	resp := f.get(t, http.MethodGet, &body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if got := keys(body); !slices.Equal(got, []string{"error"}) || body["error"] == "" {
		t.Errorf("body %v, want only an error", body)
	}
}

func TestStatsMethodNotAllowed(t *testing.T) {
	f := newFleet(t, 1)
	var body map[string]any
	resp := f.get(t, http.MethodPost, &body)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || body["error"] == "" {
		t.Errorf("POST: status %d, Allow %q, body %v", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
}

func TestStatsWithoutRedis(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(&fleetstats.Reader{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || body["error"] == "" {
		t.Errorf("no Redis: status %d body %v, want 503 with an error", rec.Code, body)
	}
}
