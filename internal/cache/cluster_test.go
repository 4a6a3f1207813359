package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// startCluster runs a Redis Cluster of n masters, no replicas, with the
// 16384 slots split evenly, and waits until every node reports it ok.
func startCluster(t *testing.T, n int) []*redistest.Server {
	t.Helper()
	srv := redistest.StartN(t, n, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	const slots = 16384
	for i, s := range srv {
		c := s.Client()
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if err := c.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("ADDSLOTSRANGE on %s: %v", s.Addr, err)
		}
		if i > 0 {
			if err := c.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(srv[0].Port)).Err(); err != nil {
				t.Fatalf("CLUSTER MEET from %s: %v", s.Addr, err)
			}
		}
	}
	waitFor(t, 20*time.Second, "cluster state ok on every node", func() bool {
		for _, s := range srv {
			info, err := s.Client().ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				return false
			}
		}
		return true
	})
	return srv
}

func TestCluster(t *testing.T) {
	srv := startCluster(t, 3)
	ctx := t.Context()
	r, err := NewCluster(RedisConfig{Addrs: []string{srv[0].Addr}, Timeout: slowTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Shards(); !slices.Equal(got, []string{srv[0].Addr}) {
		t.Errorf("Shards = %v, want the seed", got)
	}

	e := testEntry(time.Now(), time.Minute, time.Hour, 80)
	k := key("www.example.com.", "A")
	mustMiss(t, r, k)
	mustSet(t, r, k, keyed(k, e))
	if d := sameEntry(keyed(k, e), mustGet(t, r, k)); d != "" {
		t.Errorf("round trip: %s", d)
	}

	// Keys spread over the masters; one name's types share a slot.
	var keys []string
	for i := range 300 {
		name := fmt.Sprintf("c%d.example.", i)
		for _, typ := range []string{"A", "AAAA", "MX"} {
			keys = append(keys, key(name, typ))
			mustSet(t, r, key(name, typ), keyed(key(name, typ), e))
		}
	}
	for _, s := range srv {
		if n := s.Client().DBSize(ctx).Val(); n < 100 {
			t.Errorf("master %s holds %d keys", s.Addr, n)
		}
	}
	c := srv[0].Client()
	for i := 0; i < len(keys); i += 3 {
		a := c.ClusterKeySlot(ctx, keys[i]).Val()
		for _, k := range keys[i+1 : i+3] {
			if b := c.ClusterKeySlot(ctx, k).Val(); b != a {
				t.Fatalf("%s in slot %d, %s in slot %d", keys[i], a, k, b)
			}
		}
	}

	var mu sync.Mutex
	var seen []string
	err = r.ForEachShard(ctx, func(ctx context.Context, addr string, c *redis.Client) error {
		mu.Lock()
		seen = append(seen, addr)
		mu.Unlock()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(seen)
	if want := slices.Sorted(slices.Values(redistest.Addrs(srv))); !slices.Equal(seen, want) {
		t.Errorf("ForEachShard visited %v, want the masters %v", seen, want)
	}
	if err := r.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	// Delete across slots and masters.
	if err := r.Delete(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		mustMiss(t, r, k)
	}

	// A frozen master fails its keys within the budget.
	frozen, err := NewCluster(RedisConfig{Addrs: redistest.Addrs(srv)})
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	var victim string
	for i := 0; victim == ""; i++ {
		k := key(fmt.Sprintf("f%d.example.", i), "A")
		if err := r.Set(ctx, k, keyed(k, e)); err != nil {
			t.Fatal(err)
		}
		if srv[1].Client().Exists(ctx, k).Val() == 1 {
			victim = k
		}
	}
	_, _ = frozen.Get(ctx, victim) // loads the slot map
	srv[1].Pause()
	defer srv[1].Resume()
	if _, err := timedGet(t, frozen, victim); err == nil || errors.Is(err, ErrMiss) {
		t.Errorf("Get from a frozen master: %v, want an error", err)
	}
}
