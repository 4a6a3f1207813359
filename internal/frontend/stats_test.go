package frontend

import (
	"flag"
	"log/slog"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// buildWith builds a frontend from flag arguments on a fresh registry.
func buildWith(t *testing.T, args ...string) (*Frontend, *prometheus.Registry) {
	t.Helper()
	var f Flags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	fe, err := Build(f, dnstest.MsgResolver(nxResolver{}.answer), reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fe.Close() })
	return fe, reg
}

// gathered returns the names of the metrics reg gathers.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		out[mf.GetName()] = true
	}
	return out
}

// Without Redis the stats source is the process alone, reading the L1 and
// the chain; the L1's size is exported, and no shard metric.
func TestStatsSourceWithoutRedis(t *testing.T) {
	fe, reg := buildWith(t, "-l1", "100", "-l1-bytes", "65536")
	src := fe.StatsSource()
	if src.Fleet != nil || src.Local == nil {
		t.Fatalf("sources %+v, want the process only", src)
	}
	m := new(dns.Msg)
	m.SetQuestion("nx.example.test.", dns.TypeA)
	q, _ := dnsmsg.ParseQuery(m)
	for range 2 {
		if _, err := fe.Chain.Lookup(t.Context(), &q); err != nil {
			t.Fatal(err)
		}
	}
	p, err := src.Local.Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p.Queries != 2 || p.L1Hits != 1 || p.L1 == nil || p.L1.Entries != 1 || p.L1.MaxEntries != 100 || p.L1.MaxBytes != 65536 {
		t.Errorf("process %+v, L1 %+v", p, p.L1)
	}
	names := gathered(t, reg)
	for _, n := range []string{"shardns_l1_entries", "shardns_l1_bytes", "shardns_l1_evictions_total"} {
		if !names[n] {
			t.Errorf("%s not exported", n)
		}
	}
	if names["shardns_redis_shard_up"] {
		t.Error("shard metrics exported without Redis")
	}
}

// With Redis and no L1, the source has the fleet and the process (with no
// L1), and each shard's numbers are exported, no L1 size.
func TestStatsSourceWithRedis(t *testing.T) {
	shard := redistest.Start(t)
	fe, reg := buildWith(t, "-l1", "0", "-redis", shard.Addr, "-redis-timeout", "2s")
	src := fe.StatsSource()
	if src.Fleet == nil || src.Local == nil || len(src.Fleet.ShardAddrs) != 1 {
		t.Fatalf("sources %+v, want the fleet of one shard and the process", src)
	}
	if p, err := src.Local.Read(t.Context()); err != nil || p.L1 != nil {
		t.Errorf("process without L1: %+v, %v", p, err)
	}
	names := gathered(t, reg)
	for _, n := range []string{"shardns_redis_shard_up", "shardns_redis_shard_keys", "shardns_redis_shard_memory_bytes", "shardns_redis_shard_evicted_keys_total"} {
		if !names[n] {
			t.Errorf("%s not exported", n)
		}
	}
	if names["shardns_l1_entries"] {
		t.Error("L1 size exported without an L1")
	}
}
