package cache

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// clusterMasters returns the addresses ForEachShard visits, sorted.
func clusterMasters(t *testing.T, r *Redis) []string {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	err := r.ForEachShard(t.Context(), func(ctx context.Context, addr string, c *redis.Client) error {
		mu.Lock()
		seen = append(seen, addr)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("ForEachShard: %v", err)
	}
	slices.Sort(seen)
	return seen
}

// checkOwners fails unless Inspect and ShardFor name owner for every key,
// and ForEachShard visits exactly the cluster's masters.
func checkOwners(t *testing.T, c *redistest.Cluster, r *Redis, owner *redistest.Server, keys []string) {
	t.Helper()
	ctx := t.Context()
	for _, k := range keys {
		// Inspect loads the slot map: the first call after a failover
		// already goes to the new master. ShardFor uses the map loaded.
		if ins, err := r.Inspect(ctx, k); err != nil || ins.Shard != owner.Addr {
			t.Fatalf("Inspect(%s) = %+v, %v; want it from %s", k, ins, err, owner.Addr)
		}
		if addr, err := r.ShardFor(ctx, k); err != nil || addr != owner.Addr {
			t.Errorf("ShardFor(%s) = %s, %v; want %s", k, addr, err, owner.Addr)
		}
	}
	want := slices.Sorted(slices.Values(redistest.Addrs(c.Masters())))
	if got := clusterMasters(t, r); !slices.Equal(got, want) {
		t.Errorf("ForEachShard visited %v, want the masters %v", got, want)
	}
}

// readsBack gets every key until all of them are hits, and returns how
// many calls failed first. The test fails if that takes over limit, or if
// one call takes over hangBound.
func readsBack(t *testing.T, r *Redis, keys []string, limit time.Duration) int {
	t.Helper()
	failed := 0
	deadline := time.Now().Add(limit)
	for _, k := range keys {
		for {
			_, err := timedGet(t, r, k)
			if err == nil {
				break
			}
			failed++
			if time.Now().After(deadline) {
				t.Fatalf("Get(%s) still fails %v on (%d failed calls): %v", k, limit, failed, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return failed
}

// onMaster returns the key of a name starting with prefix whose slot m
// owns now.
func onMaster(t *testing.T, c *redistest.Cluster, m *redistest.Server, prefix string) string {
	t.Helper()
	for i := range 1000 {
		if k := key(fmt.Sprintf("%s%d.example.", prefix, i), "A"); c.MasterOf(k) == m {
			return k
		}
	}
	t.Fatalf("no name %s* has its slot on %s", prefix, m.Addr)
	return ""
}

// TestClusterFailover fails a master over gracefully and then kills one:
// each time the tier moves to the promoted replica by itself, reads what
// was written before and writes there, and the admin calls follow.
func TestClusterFailover(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	r, err := NewCluster(RedisConfig{Addrs: c.Addrs()[:1], Timeout: faultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := t.Context()
	e := testEntry(time.Now(), time.Minute, time.Hour, 80)
	on := map[*redistest.Server][]string{}
	for i := range 60 {
		k := key(fmt.Sprintf("c%d.example.", i), "A")
		mustSet(t, r, k, keyed(k, e))
		m := c.MasterOf(k)
		on[m] = append(on[m], k)
	}
	masters := c.Masters()
	if len(on) != 3 {
		t.Fatalf("keys on %d masters", len(on))
	}

	// (a) graceful: the old master answers MOVED for its slots.
	m1 := masters[0]
	r1 := c.WaitReplicaOf(m1)
	c.Failover(r1)
	checkOwners(t, c, r, r1, on[m1])
	failed := readsBack(t, r, on[m1], 5*time.Second)
	t.Logf("graceful failover: %d failed reads of %d keys", failed, len(on[m1]))
	if failed > 1 {
		t.Errorf("%d reads failed after a graceful failover, want at most the one that found MOVED", failed)
	}
	k := onMaster(t, c, r1, "after-graceful")
	mustSet(t, r, k, keyed(k, e))
	if r1.Client().Exists(ctx, k).Val() != 1 {
		t.Errorf("%s not written to the new master %s", k, r1.Addr)
	}

	// (b) killed: calls to it fail fast until its replica is promoted, then
	// the tier moves there without waiting for a periodic reload.
	var m2 *redistest.Server
	for _, m := range c.Masters() {
		if m != r1 {
			m2 = m
			break
		}
	}
	r2 := c.WaitReplicaOf(m2)
	m2.Kill()
	if _, err := timedGet(t, r, on[m2][0]); err == nil {
		t.Errorf("Get from a killed master succeeded")
	}
	c.WaitMaster(r2)
	failed = readsBack(t, r, on[m2], 5*time.Second)
	t.Logf("master killed: %d failed reads after promotion", failed)
	checkOwners(t, c, r, r2, on[m2])
	k = onMaster(t, c, r2, "after-kill")
	mustSet(t, r, k, keyed(k, e))
	if r2.Client().Exists(ctx, k).Val() != 1 {
		t.Errorf("%s not written to the promoted master %s", k, r2.Addr)
	}
	res, err := r.DeleteSuffix(ctx, "example.")
	if err != nil || res.Deleted != 62 || len(res.Shards) != 3 || slices.Contains(res.Shards, m2.Addr) {
		t.Errorf("DeleteSuffix after the kill: %+v, %v; want 62 keys from the 3 live masters", res, err)
	}
}
