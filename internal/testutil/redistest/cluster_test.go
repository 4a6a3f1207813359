package redistest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestParseClusterNodes(t *testing.T) {
	out := "07c3 127.0.0.1:30004@31004,host4 slave e7d1 0 1426238317239 4 connected\n" +
		"e7d1 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461->-292f]\n" +
		"292f 127.0.0.1:30002@31002 master,fail - 1426238316232 1426238315000 2 disconnected\n"
	nodes, err := parseClusterNodes(out)
	if err != nil {
		t.Fatal(err)
	}
	m := nodes["127.0.0.1:30001"]
	if m.id != "e7d1" || !m.has("master") || m.master != "" || !slices.Equal(m.slots, []string{"0-5460"}) {
		t.Errorf("master parsed as %+v", m)
	}
	if r := nodes["127.0.0.1:30004"]; r.master != "e7d1" || !r.has("slave") || len(r.slots) != 0 {
		t.Errorf("replica parsed as %+v", r)
	}
	if f := nodes["127.0.0.1:30002"]; !f.has("fail") {
		t.Errorf("failed node parsed as %+v", f)
	}
	for _, bad := range []string{"", "a b c\n"} {
		if _, err := parseClusterNodes(bad); err == nil {
			t.Errorf("parseClusterNodes(%q) accepted", bad)
		}
	}
	for _, tc := range []struct {
		slot int
		r    string
		in   bool
	}{{0, "0-5460", true}, {5460, "0-5460", true}, {5461, "0-5460", false}, {7, "7", true}, {8, "7", false}, {1, "x", false}} {
		if got := slotIn(tc.slot, tc.r); got != tc.in {
			t.Errorf("slotIn(%d, %q) = %v", tc.slot, tc.r, got)
		}
	}
}

// TestCluster builds a cluster of three masters with a replica each, then
// fails one master over gracefully and kills another: each time the
// replica takes its slots with the data written before.
func TestCluster(t *testing.T) {
	c := StartCluster(t, 3, 1)
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(c.Nodes))
	}
	masters := c.Masters()
	if len(masters) != 3 {
		t.Fatalf("masters %v", Addrs(masters))
	}
	ctx := t.Context()
	for _, s := range c.Nodes {
		cfg, err := s.Client().ConfigGet(ctx, "cluster-require-full-coverage").Result()
		if err != nil || cfg["cluster-require-full-coverage"] != "no" {
			t.Errorf("%s: cluster-require-full-coverage %v %v", s.Addr, cfg, err)
		}
	}
	// Keys land on the master that owns their slot, on every master.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DisableIdentity: true})
	defer cc.Close()
	perMaster := map[string][]string{}
	for i := range 60 {
		k := fmt.Sprintf("k:{%d}", i)
		if err := cc.Set(ctx, k, "v", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		m := c.MasterOf(k)
		if m.Client().Exists(ctx, k).Val() != 1 {
			t.Errorf("%s not on %s, the master of slot %d", k, m.Addr, c.Slot(k))
		}
		perMaster[m.Addr] = append(perMaster[m.Addr], k)
	}
	if len(perMaster) != 3 {
		t.Fatalf("keys on %d masters", len(perMaster))
	}

	check := func(old, promoted *Server) {
		t.Helper()
		if slices.Contains(c.Masters(), old) {
			t.Errorf("%s still owns slots", old.Addr)
		}
		for _, k := range perMaster[old.Addr] {
			if m := c.MasterOf(k); m != promoted {
				t.Errorf("%s owned by %s, want %s", k, m.Addr, promoted.Addr)
			}
			if promoted.Client().Exists(ctx, k).Val() != 1 {
				t.Errorf("%s lost in the failover", k)
			}
		}
	}

	m1 := masters[0]
	r1 := c.WaitReplicaOf(m1)
	if r1 == nil {
		t.Fatalf("%s has no replica", m1.Addr)
	}
	c.Failover(r1)
	check(m1, r1)
	if got := c.ReplicaOf(r1); got != m1 {
		t.Errorf("after a graceful failover the old master is not the new one's replica: %v", got)
	}

	m2 := masters[1]
	r2 := c.WaitReplicaOf(m2)
	if r2 == nil {
		t.Fatalf("%s has no replica", m2.Addr)
	}
	// Replication is asynchronous: a kill before the replica has the
	// writes loses them. WAIT returns once one replica acknowledged them.
	if n, err := m2.Client().Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n < 1 {
		t.Fatalf("WAIT on %s: %d replicas, %v", m2.Addr, n, err)
	}
	t0 := time.Now()
	m2.Kill()
	c.WaitMaster(r2)
	t.Logf("replica promoted %v after its master was killed", time.Since(t0).Round(time.Millisecond))
	check(m2, r2)
	if got := c.ReplicaOf(r2); got != nil {
		t.Errorf("promoted %s has replica %s", r2.Addr, got.Addr)
	}
	if n := c.mustView(r2)[m2.Addr]; !n.has("fail") {
		t.Errorf("killed %s flagged %v, want fail", m2.Addr, strings.Join(n.flags, ","))
	}

	// With r2 gone too its slots have no node, and with
	// cluster-require-full-coverage no the others still serve theirs.
	r2.Kill()
	deadline := time.Now().Add(clusterWait)
	for !c.mustView(r1)[r2.Addr].has("fail") {
		if time.Now().After(deadline) {
			t.Fatalf("%s not flagged failed within %v", r2.Addr, clusterWait)
		}
		time.Sleep(clusterPoll)
	}
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		if info := s.Client().ClusterInfo(ctx).Val(); !strings.Contains(info, "cluster_state:ok") {
			t.Errorf("%s: cluster_state not ok with a slot range uncovered", s.Addr)
		}
	}
	k := perMaster[m1.Addr][0]
	if err := r1.Client().Set(ctx, k, "w", time.Hour).Err(); err != nil {
		t.Errorf("write to a covered slot with another range uncovered: %v", err)
	}
	if err := r1.Client().Set(ctx, perMaster[m2.Addr][0], "w", time.Hour).Err(); err == nil {
		t.Error("write to an uncovered slot succeeded")
	}
}
