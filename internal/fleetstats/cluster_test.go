package fleetstats

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/internal/cache"
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
		must(t, c.ClusterAddSlotsRange(ctx, lo, hi).Err())
		if i > 0 {
			must(t, c.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(srv[0].Port)).Err())
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
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                    []string{srv[0].Addr},
		DialTimeout:              time.Second,
		ReadTimeout:              time.Second,
		WriteTimeout:             time.Second,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	defer cc.Close()

	m := newChainMetrics()
	m.add(4, 3, 2, 1, 0)
	for _, id := range []string{"c1", "c2"} {
		if err := NewPublisher(PublisherConfig{Redis: cc, ID: id, Kind: "cacheapi", Gatherer: m.reg}).Publish(ctx); err != nil {
			t.Fatal(err)
		}
	}
	fs := readFleet(t, cc, time.Now())
	if len(fs) != 2 || fs[0].ID != "c1" || fs[1].ID != "c2" || fs[0].Queries != 10 || fs[1].RedisHits != 3 {
		t.Errorf("ReadFleet on a cluster = %+v", fs)
	}

	r, err := cache.NewCluster(cache.RedisConfig{Addrs: []string{srv[0].Addr}, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	shards, err := ReadShards(ctx, nil, r.ForEachShard)
	if err != nil || len(shards) != 3 {
		t.Fatalf("ReadShards on a cluster = %+v, %v; want the 3 masters", shards, err)
	}
	for _, s := range shards {
		if !s.Up || s.Error != "" {
			t.Errorf("master %s: %+v", s.Addr, s)
		}
	}
}
