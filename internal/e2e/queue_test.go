package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// slowZone is an in-process authoritative server for slow.test.: every
// name under it has an A record (TTL 300) given after delay, as a distant
// upstream would; hot.slow.test. answers at once with TTL hotTTL.
type slowZone struct {
	addr  string
	delay time.Duration
}

const hotTTL = 6

func startSlowZone(t *testing.T, delay time.Duration) *slowZone {
	t.Helper()
	z := &slowZone{delay: delay}
	// UDP and TCP on one port: the kernel's free UDP port may be taken
	// for TCP, so try a few.
	var pc net.PacketConn
	var ln net.Listener
	for try := 0; ln == nil; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if try == 20 {
				t.Fatal(err)
			}
		}
	}
	z.addr = pc.LocalAddr().String()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // cleanups run last-in first-out: after the shutdowns
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: ln, Handler: z}} {
		wg.Go(func() { _ = s.ActivateAndServe() })
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return z
}

func (z *slowZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: "slow.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns.slow.test.", Mbox: "hostmaster.slow.test.", Serial: 1, Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: 60}
	switch {
	case name == "slow.test." && q.Qtype == dns.TypeSOA:
		m.Answer = []dns.RR{soa}
	case name == "hot.slow.test." && q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: hotTTL}, A: net.IPv4(192, 0, 2, 77)}}
	case strings.HasSuffix(name, ".slow.test.") && q.Qtype == dns.TypeA:
		time.Sleep(z.delay)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 88)}}
	case strings.HasSuffix(name, ".slow.test.") || name == "slow.test.":
		m.Ns = []dns.RR{soa}
	default:
		m.Rcode = dns.RcodeRefused
	}
	_ = w.WriteMsg(m)
}

// queueFleet is a queue Redis, four cache shards and the slow zone.
type queueFleet struct {
	zone   *slowZone
	queue  *redistest.Server
	shards []*redistest.Server
	redis  string // the shards, comma-separated
}

func startQueueFleet(t *testing.T, delay time.Duration) *queueFleet {
	t.Helper()
	f := &queueFleet{zone: startSlowZone(t, delay)}
	f.queue = redistest.Start(t, "--appendonly", "yes", "--maxmemory-policy", "noeviction")
	f.shards = redistest.StartN(t, 4)
	f.redis = strings.Join(redistest.Addrs(f.shards), ",")
	return f
}

// resolverd starts one resolverd with queue workers. Their cache writes
// get 500 ms rather than the default 50: these tests count the runs of
// each task, and on a loaded machine with race-built daemons a write that
// times out fails its run, which the queue then runs again.
func (f *queueFleet) resolverd(t *testing.T, workers int, extra ...string) (p *proc, grpcAddr, metrics string) {
	t.Helper()
	grpcAddr, metrics = port(t), port(t)
	args := append([]string{"-listen", grpcAddr, "-upstream", f.zone.addr, "-metrics", metrics,
		"-redis", f.redis, "-redis-timeout", "500ms", "-queue-redis", f.queue.Addr, "-workers", fmt.Sprint(workers)}, extra...)
	p = start(t, "resolverd", nil, args...)
	waitTCP(t, p, grpcAddr)
	return p, grpcAddr, metrics
}

// TestQueueSurvivesWorkerKill runs a 1,000-name job from a CSV through
// `cacheapi warm` on three resolverd processes and kills one of them with
// SIGKILL in the middle: every task ends completed, none is left pending or
// processing, and only the tasks the dead process held are run twice.
func TestQueueSurvivesWorkerKill(t *testing.T) {
	const names, workers, lease = 1000, 2, 2 * time.Second
	f := startQueueFleet(t, 30*time.Millisecond)
	var victim *proc
	var resolverAddr string
	for i := range 3 {
		p, addr, _ := f.resolverd(t, workers, "-lease", lease.String())
		if i == 0 {
			victim = p
		} else {
			resolverAddr = addr
		}
	}
	api := port(t)
	cacheapi := start(t, "cacheapi", nil, "-listen", api, "-redis", f.redis, "-resolver", resolverAddr, "-queue-redis", f.queue.Addr)
	waitTCP(t, cacheapi, api)
	dnsAddr, dnsMetrics := port(t), port(t)
	dnsd := start(t, "dnsd", nil, "-listen", dnsAddr, "-redis", f.redis, "-resolver", resolverAddr, "-l1", "0", "-metrics", dnsMetrics)
	waitDNS(t, dnsd, dnsAddr, "slow.test.")

	// The dataset format: rank,domain.
	var csv bytes.Buffer
	for i := range names {
		fmt.Fprintf(&csv, "%d,n%d.slow.test\n", i+1, i)
	}
	file := filepath.Join(t.TempDir(), "names.csv")
	if err := os.WriteFile(file, csv.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cli := exec.CommandContext(ctx, filepath.Join(binDir, "cacheapi"), "warm", "-api", "http://"+api, "-every", "100ms", file)
	var out bytes.Buffer
	cli.Stdout, cli.Stderr = &out, &out
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	cliDone := make(chan error, 1)
	go func() { cliDone <- cli.Wait() }()

	q := f.queue.Client()
	if _, ok := poll(time.Minute, 20*time.Millisecond, func() bool { return q.LLen(ctx, "q:{warm}:completed").Val() >= names/4 }); !ok {
		t.Fatalf("a quarter of the job did not complete within a minute\n%s", out.String())
	}
	victim.Kill()
	atKill := q.LLen(ctx, "q:{warm}:completed").Val()
	if atKill >= names {
		t.Fatalf("the job ended before the kill")
	}
	t.Logf("killed a resolverd with %d of %d tasks completed", atKill, names)

	select {
	case err := <-cliDone:
		if err != nil {
			t.Fatalf("cacheapi warm: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatalf("cacheapi warm did not end\n%s", out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("%d done, 0 dead, 0 canceled", names)) || !strings.Contains(out.String(), "100%") {
		t.Errorf("cacheapi warm printed:\n%s", out.String())
	}

	for key, want := range map[string]int64{"pending": 0, "processing": 0, "completed": names, "dead": 0} {
		if n := q.LLen(ctx, "q:{warm}:"+key).Val(); n != want {
			t.Errorf("LLEN q:{warm}:%s = %d, want %d", key, n, want)
		}
	}
	if n := q.ZCard(ctx, "q:{warm}:leases").Val(); n != 0 {
		t.Errorf("%d leases left", n)
	}
	ids := q.LRange(ctx, "q:{warm}:completed", 0, -1).Val()
	runs, twice := 0, 0
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("task %s completed twice", id)
		}
		seen[id] = true
		h := q.HGetAll(ctx, "q:{warm}:task:"+id).Val()
		if h["state"] != "done" || !strings.HasPrefix(h["result"], "NOERROR") {
			t.Errorf("task %s: %v", id, h)
		}
		var r int
		fmt.Sscan(h["runs"], &r)
		runs += r
		if r > 1 {
			twice++
			if !strings.Contains(h["error"], "lease expired") {
				t.Errorf("task %s ran %d times without a lease expiring: %v", id, r, h)
			}
		}
	}
	// At-least-once: only the tasks the killed process held (at most its
	// workers) ran again, once each, after their lease ran out.
	if twice > workers || runs != names+twice {
		t.Errorf("%d runs for %d tasks, %d run twice; at most %d (the killed process's workers) may run twice", runs, names, twice, workers)
	}
	t.Logf("%d tasks ran twice", twice)

	// The cache is warm: dnsd answers from Redis, without the resolver.
	hits0, misses0 := metric(t, dnsMetrics, `shardns_lookup_answers_total{source="redis"}`), metric(t, dnsMetrics, `shardns_lookup_answers_total{source="resolver"}`)
	for i := range 5 {
		r := dig(t, dnsAddr, fmt.Sprintf("n%d.slow.test", i*97), "A")
		if r.Status != "NOERROR" || len(r.Answer) != 1 {
			t.Fatalf("dig: %s %v", r.Status, r.Answer)
		}
	}
	if hits, misses := metric(t, dnsMetrics, `shardns_lookup_answers_total{source="redis"}`), metric(t, dnsMetrics, `shardns_lookup_answers_total{source="resolver"}`); hits-hits0 != 5 || misses != misses0 {
		t.Errorf("after warming: %v Redis hits, %v resolver answers; want 5 and 0", hits-hits0, misses-misses0)
	}
}

// TestFleetPrefetch keeps asking dnsd for a name with a 6 s TTL for more
// than two TTLs: the frontend counts its hits in the queue's Redis, the
// scheduler in resolverd queues a refresh before each expiry, the workers
// refresh it, and only the very first query misses.
func TestFleetPrefetch(t *testing.T) {
	f := startQueueFleet(t, 0)
	_, grpcAddr, rmetrics := f.resolverd(t, 2)
	dnsAddr, dmetrics := port(t), port(t)
	dnsd := start(t, "dnsd", nil, "-listen", dnsAddr, "-redis", f.redis, "-resolver", grpcAddr, "-l1", "0",
		"-metrics", dmetrics, "-queue-redis", f.queue.Addr)
	waitDNS(t, dnsd, dnsAddr, "slow.test.")

	// waitDNS's own question went to the resolver: count from here.
	misses0 := metric(t, dmetrics, `shardns_lookup_answers_total{source="resolver"}`)
	end := time.Now().Add(2*hotTTL*time.Second + 2500*time.Millisecond)
	n := 0
	for time.Now().Before(end) {
		r, err := exchange(dnsAddr, "udp", "hot.slow.test.", dns.TypeA)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("query %d: %v %v", n, r, err)
		}
		n++
		time.Sleep(200 * time.Millisecond)
	}
	misses := metric(t, dmetrics, `shardns_lookup_answers_total{source="resolver"}`) - misses0
	hits := metric(t, dmetrics, `shardns_lookup_answers_total{source="redis"}`)
	enq := metric(t, rmetrics, `shardns_prefetch_enqueued_total`)
	stored := metric(t, rmetrics, `shardns_warm_results_total{kind="refresh",outcome="stored"}`)
	hot := metric(t, dmetrics, `shardns_prefetch_hot_misses_total`)
	t.Logf("%d queries: %v misses, %v hits; %v refreshes queued, %v stored", n, misses, hits, enq, stored)
	if misses != 1 || hits != float64(n-1) || hot != 0 {
		t.Errorf("%d queries: %v resolver answers, %v Redis hits, %v hot misses; want 1, %d, 0", n, misses, hits, hot, n-1)
	}
	if enq < 2 || stored < 2 {
		t.Errorf("%v refreshes queued, %v stored; want at least 2 in %d s of a %d s TTL", enq, stored, 2*hotTTL+2, hotTTL)
	}
	// Nothing is left behind in the queue.
	q := f.queue.Client()
	if _, ok := poll(5*time.Second, 50*time.Millisecond, func() bool {
		return q.LLen(t.Context(), "q:{warm}:pending").Val() == 0 && q.LLen(t.Context(), "q:{warm}:processing").Val() == 0
	}); !ok {
		t.Errorf("refreshes left in the queue")
	}
	if n := q.Exists(t.Context(), "q:{warm}:scheduler").Val(); n != 1 {
		t.Errorf("no scheduler holds the lease")
	}
}
