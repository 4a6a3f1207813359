package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodeTimeout is the cluster-node-timeout of every node StartCluster
// runs: a master that stops answering is marked failed after about this
// long, and its replica is promoted about a second later.
const ClusterNodeTimeout = time.Second

// Bounds of the cluster helpers.
const (
	clusterCreateWait = 30 * time.Second       // redis-cli --cluster create
	clusterWait       = 20 * time.Second       // a cluster settling after a change
	clusterPoll       = 50 * time.Millisecond  // between two looks at it
	clusterCall       = 500 * time.Millisecond // one command sent to one node
)

// Cluster is a Redis Cluster of redis-server processes on loopback ports,
// built by redis-cli --cluster create. Every node runs with
// cluster-require-full-coverage no, so a master that is down fails only
// its own slots, and a cluster-node-timeout of ClusterNodeTimeout.
type Cluster struct {
	// Nodes are every node, in the order they were given to redis-cli.
	// Roles change with failovers: ask Masters, MasterOf and ReplicaOf.
	Nodes []*Server

	t       testing.TB
	mu      sync.Mutex
	clients map[*Server]*redis.Client
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, master string   // master: the id of its master, "" for a master
	flags            []string // e.g. myself, master, slave, fail, fail?
	slots            []string // ranges as printed, e.g. "0-5460"
}

func (n clusterNode) has(flag string) bool { return slices.Contains(n.flags, flag) }

// StartCluster runs masters*(1+replicasPer) nodes (masters at least 3, as
// redis-cli requires), joins them with redis-cli --cluster create
// --cluster-replicas replicasPer, and waits until every node reports
// cluster_state:ok, all agree on who owns each slot and every replica is
// in sync with its master. args are added to every node's command line.
// Without redis-cli the test is skipped, or fails when CI is set.
func StartCluster(t testing.TB, masters, replicasPer int, args ...string) *Cluster {
	t.Helper()
	return StartSecureCluster(t, Security{}, masters, replicasPer, args...)
}

// StartSecureCluster is StartCluster for nodes that ask for the password
// or TLS that sec describes, of clients and of each other (replication
// and the cluster bus).
func StartSecureCluster(t testing.TB, sec Security, masters, replicasPer int, args ...string) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		const msg = "redis-cli not found: apt-get install redis-tools"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if masters < 3 || replicasPer < 0 {
		t.Fatalf("redistest: cluster of %d masters with %d replicas each: need at least 3 masters", masters, replicasPer)
	}
	bin := Bin(t)
	c := &Cluster{t: t, clients: map[*Server]*redis.Client{}}
	t.Cleanup(c.closeClients)
	for range masters * (1 + replicasPer) {
		c.Nodes = append(c.Nodes, startClusterNode(t, bin, sec, args))
	}
	argv := sec.cliArgs()
	argv = append(argv, "--cluster", "create")
	argv = append(argv, Addrs(c.Nodes)...)
	argv = append(argv, "--cluster-replicas", strconv.Itoa(replicasPer), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateWait)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, argv...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	c.Wait()
	if n := len(c.Masters()); n != masters {
		t.Fatalf("redistest: cluster has %d masters, want %d", n, masters)
	}
	return c
}

// startClusterNode starts one cluster-enabled server with its cluster bus
// on a port of its own choosing (the default, port+10000, may be taken or
// above 65535), retrying with new ports if either was taken.
func startClusterNode(t testing.TB, bin string, sec Security, extra []string) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), sec: sec}
	t.Cleanup(s.Kill)
	var err error
	for range startAttempts {
		var bus int
		s.Port, err = FreePort()
		if err == nil {
			bus, err = FreePort()
		}
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if bus == s.Port {
			continue
		}
		s.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
		s.args = append([]string{
			"--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout / time.Millisecond)),
			"--cluster-require-full-coverage", "no",
			// A replica's first sync starts at once, not after the
			// default 5 s wait for more replicas to share it.
			"--repl-diskless-sync-delay", "0",
		}, extra...)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("redistest: cluster node: %v", err)
	return nil
}

// Addrs returns the address of every node, to be given as seeds.
func (c *Cluster) Addrs() []string { return Addrs(c.Nodes) }

// Slot returns the hash slot of key, as a live node computes it.
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterCall)
	defer cancel()
	slot, err := c.client(c.live()[0]).ClusterKeySlot(ctx, key).Result()
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT %s: %v", key, err)
	}
	return int(slot)
}

// Masters returns the nodes that own slots now, in Nodes order, as the
// first live node sees it.
func (c *Cluster) Masters() []*Server {
	c.t.Helper()
	view := c.mustView(c.live()[0])
	var out []*Server
	for _, s := range c.Nodes {
		if n, ok := view[s.Addr]; ok && len(n.slots) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// MasterOf returns the node that owns key's slot now, as the first live
// node sees it.
func (c *Cluster) MasterOf(key string) *Server {
	c.t.Helper()
	slot := c.Slot(key)
	for addr, n := range c.mustView(c.live()[0]) {
		for _, r := range n.slots {
			if slotIn(slot, r) {
				return c.node(addr)
			}
		}
	}
	c.t.Fatalf("redistest: no node owns slot %d of %s", slot, key)
	return nil
}

// ReplicaOf returns a running replica of master, or nil if it has none.
func (c *Cluster) ReplicaOf(master *Server) *Server {
	c.t.Helper()
	view := c.mustView(c.live()[0])
	m, ok := view[master.Addr]
	if !ok {
		c.t.Fatalf("redistest: %s is not in the cluster", master.Addr)
	}
	for _, s := range c.Nodes {
		if n, ok := view[s.Addr]; ok && n.master == m.id && s.running() && !n.has("fail") {
			return s
		}
	}
	return nil
}

// WaitReplicaOf waits up to 15 s for master to have a running replica in
// the cluster's view (a replica joins a moment after it is told to) and
// returns it; it fails the test when none comes.
func (c *Cluster) WaitReplicaOf(master *Server) *Server {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r := c.ReplicaOf(master); r != nil {
			return r
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: %s has no replica after 15 s", master.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Failover runs CLUSTER FAILOVER on replica (the graceful kind: its master
// stops taking writes until the replica has caught up, then they swap
// roles) and waits until the cluster has settled with replica as a
// master.
func (c *Cluster) Failover(replica *Server) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterCall)
	defer cancel()
	if err := c.client(replica).ClusterFailover(ctx).Err(); err != nil {
		c.t.Fatalf("redistest: CLUSTER FAILOVER on %s: %v", replica.Addr, err)
	}
	c.WaitMaster(replica)
}

// WaitMaster waits until s owns slots in every live node's view and the
// cluster has settled (see Wait): after Failover, or after its master was
// killed and s promoted.
func (c *Cluster) WaitMaster(s *Server) {
	c.t.Helper()
	c.wait("settled with "+s.Addr+" a master", func() error {
		if err := c.settled(); err != nil {
			return err
		}
		for _, l := range c.live() {
			view, err := c.view(l)
			if err != nil {
				return err
			}
			if len(view[s.Addr].slots) == 0 {
				return fmt.Errorf("%s sees %s own no slots", l.Addr, s.Addr)
			}
		}
		return nil
	})
}

// Wait waits until every running node reports cluster_state:ok, all of
// them agree on which node owns which slots, every owner is running and
// flagged by none as failing, and every running replica's link to its
// master is up and not syncing.
func (c *Cluster) Wait() {
	c.t.Helper()
	c.wait("settled", c.settled)
}

func (c *Cluster) wait(what string, ok func() error) {
	c.t.Helper()
	deadline := time.Now().Add(clusterWait)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: cluster not %s within %v: %v", what, clusterWait, err)
		}
		time.Sleep(clusterPoll)
	}
}

// settled is Wait's condition: nil when it holds.
func (c *Cluster) settled() error {
	var owners string
	for i, s := range c.live() {
		ctx, cancel := context.WithTimeout(context.Background(), clusterCall)
		info, err := c.client(s).ClusterInfo(ctx).Result()
		cancel()
		if err != nil {
			return fmt.Errorf("CLUSTER INFO on %s: %w", s.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("%s: cluster_state not ok", s.Addr)
		}
		view, err := c.view(s)
		if err != nil {
			return err
		}
		o, err := c.ownersIn(view)
		if err != nil {
			return fmt.Errorf("as %s sees it: %w", s.Addr, err)
		}
		if i == 0 {
			owners = o
		} else if o != owners {
			return fmt.Errorf("%s sees owners %s, another node %s", s.Addr, o, owners)
		}
		if me := view[s.Addr]; me.has("slave") {
			if err := c.replicaSynced(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// ownersIn describes who owns which slots in view, and fails if an owner
// is not running or is flagged failing.
func (c *Cluster) ownersIn(view map[string]clusterNode) (string, error) {
	var lines []string
	for addr, n := range view {
		if len(n.slots) == 0 {
			continue
		}
		if s := c.node(addr); s == nil || !s.running() {
			return "", fmt.Errorf("slots %v owned by %s, not running", n.slots, addr)
		}
		if n.has("fail") || n.has("fail?") {
			return "", fmt.Errorf("owner %s flagged %v", addr, n.flags)
		}
		lines = append(lines, addr+"="+strings.Join(n.slots, ","))
	}
	slices.Sort(lines)
	return strings.Join(lines, " "), nil
}

// replicaSynced fails unless replica s has its master link up and no sync
// under way.
func (c *Cluster) replicaSynced(s *Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterCall)
	defer cancel()
	info, err := c.client(s).Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication on %s: %w", s.Addr, err)
	}
	if !strings.Contains(info, "master_link_status:up") || !strings.Contains(info, "master_sync_in_progress:0") {
		return fmt.Errorf("replica %s not in sync", s.Addr)
	}
	return nil
}

// view returns CLUSTER NODES as s sees it, by address.
func (c *Cluster) view(s *Server) (map[string]clusterNode, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterCall)
	defer cancel()
	out, err := c.client(s).ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", s.Addr, err)
	}
	return parseClusterNodes(out)
}

func (c *Cluster) mustView(s *Server) map[string]clusterNode {
	c.t.Helper()
	v, err := c.view(s)
	if err != nil {
		c.t.Fatalf("redistest: %v", err)
	}
	return v
}

// parseClusterNodes reads CLUSTER NODES: id, ip:port@bus[,hostname],
// flags, master id or "-", ping-sent, pong-recv, epoch, link state, slots.
func parseClusterNodes(out string) (map[string]clusterNode, error) {
	nodes := map[string]clusterNode{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := clusterNode{id: f[0], addr: addr, flags: strings.Split(f[2], ",")}
		if f[3] != "-" {
			n.master = f[3]
		}
		for _, r := range f[8:] {
			if !strings.HasPrefix(r, "[") { // not a slot being migrated
				n.slots = append(n.slots, r)
			}
		}
		nodes[addr] = n
	}
	if len(nodes) == 0 {
		return nil, errors.New("CLUSTER NODES: empty")
	}
	return nodes, nil
}

// slotIn reports whether slot is in r, "n" or "lo-hi".
func slotIn(slot int, r string) bool {
	lo, hi, isRange := strings.Cut(r, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	return err1 == nil && err2 == nil && a <= slot && slot <= b
}

// node returns the node at addr, or nil.
func (c *Cluster) node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// live returns the running nodes; the test fails if there are none.
func (c *Cluster) live() []*Server {
	c.t.Helper()
	var out []*Server
	for _, s := range c.Nodes {
		if s.running() {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		c.t.Fatal("redistest: no cluster node is running")
	}
	return out
}

// client returns the helper's own client of s (plain, not cluster-aware),
// made once and closed when the test ends.
func (c *Cluster) client(s *Server) *redis.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.clients[s]
	if !ok {
		opt := s.Options(clusterCall)
		opt.MaxRetries = -1
		opt.PoolSize = 2
		cl = redis.NewClient(opt)
		c.clients[s] = cl
	}
	return cl
}

func (c *Cluster) closeClients() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.clients {
		_ = cl.Close()
	}
	c.clients = nil
}

// cliArgs are the redis-cli arguments that log in and use TLS as sec
// asks.
func (sec Security) cliArgs() []string {
	var a []string
	if user, pass := sec.login(); pass != "" {
		a = append(a, "-a", pass, "--no-auth-warning")
		if user != "" {
			a = append(a, "--user", user)
		}
	}
	if sec.TLS != nil {
		a = append(a, "--tls", "--cacert", sec.TLS.CertFile)
	}
	return a
}

// running reports whether the server's process is up (paused counts).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}
