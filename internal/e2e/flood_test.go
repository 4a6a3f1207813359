package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	perf "github.com/shardns/shardns/internal/testutil/dnsperf"
)

// maxRSS is a generous bound on dnsd's resident memory under a flood: far
// above what it needs (under 100 MB), far below what an unbounded queue
// would reach. Built with the race detector, which multiplies memory use
// (its shadow memory and per-goroutine state), dnsd gets twice as much.
func maxRSS() int64 {
	if raceBuild {
		return 1000 << 20
	}
	return 500 << 20
}

// question is a name and a type, as dig takes them.
type question struct{ name, qtype string }

// afterFlood bounds the first answer after a flood: no speed check, only
// proof that dnsd is not stuck behind the flood's backlog.
const afterFlood = 3 * time.Second

// floodQueries writes a dnsperf query file: hundreds of distinct names of
// the test zone (wildcard answers, each its own cache key), a fixed name,
// and NXDOMAIN names.
func floodQueries(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := range 400 {
		fmt.Fprintf(&b, "%s A\n", spread("f", i))
		if i%8 == 0 {
			fmt.Fprintf(&b, "nx%d.shardns.test A\n", i)
			b.WriteString("www.shardns.test AAAA\n")
		}
	}
	path := filepath.Join(t.TempDir(), "queries.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rssWatch samples a process's RSS until stopped and keeps the peak.
type rssWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int64
	err  error
}

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			rss, err := vmRSS(pid)
			w.mu.Lock()
			w.peak, w.err = max(w.peak, rss), err
			w.mu.Unlock()
			if err != nil {
				return
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// Peak stops the sampling and returns the highest RSS seen.
func (w *rssWatch) Peak() (int64, error) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.err
}

// udpSocketDrops reads the kernel's count of datagrams dropped on the UDP
// socket bound to addr (full receive buffer), from /proc/net/udp; -1 if it
// cannot be read.
func udpSocketDrops(addr string) int64 {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1
	}
	ip := ap.Addr().As4()
	// /proc/net/udp prints the IPv4 address as one little-endian word.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) < 13 || fields[1] != want {
			continue
		}
		n, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

// dnsperf runs one bounded dnsperf against addr and returns its figures.
func dnsperf(t *testing.T, bin, addr, queries string, args ...string) perf.Stats {
	t.Helper()
	host, p, _ := net.SplitHostPort(addr)
	argv := append([]string{"-s", host, "-p", p, "-d", queries, "-t", "1"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, bin, argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf %v: %v\n%s", argv, err, out)
	}
	st, err := perf.Parse(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("dnsperf %s: %.0f queries per second, %d sent, %d completed, %d lost (%.1f%%), ran %v",
		strings.Join(args, " "), st.QPS, st.Sent, st.Completed, st.Lost, 100*float64(st.Lost)/float64(max(st.Sent, 1)), time.Since(t0).Round(time.Millisecond))
	return st
}

// TestFloodUDPThenTCP floods dnsd far over what it can answer, over UDP
// then TCP: it stays up, its memory stays bounded, and it answers at once
// when the flood stops.
func TestFloodUDPThenTCP(t *testing.T) {
	bin := needTool(t, "dnsperf", "dnsperf")
	f := startFleet(t)
	queries := floodQueries(t)
	pid := f.dnsd.Cmd.Process.Pid
	if rss, err := vmRSS(pid); err == nil {
		t.Logf("dnsd RSS before the flood: %.1f MB (race detector: %v)", float64(rss)/(1<<20), raceBuild)
	}
	for _, run := range []struct {
		name  string
		args  []string
		fresh question // asked for the first time after the flood
	}{
		{"udp", []string{"-l", "4", "-c", "50", "-q", "2000", "-Q", "200000"}, question{"mail.shardns.test", "A"}},
		{"tcp", []string{"-m", "tcp", "-l", "4", "-c", "10", "-q", "500", "-Q", "200000"}, question{"txt.shardns.test", "TXT"}},
	} {
		w := watchRSS(pid)
		drops0 := udpSocketDrops(f.dns)
		st := dnsperf(t, bin, f.dns, queries, run.args...)
		peak, err := w.Peak()
		if drops0 >= 0 {
			t.Logf("%s flood: the kernel dropped %d datagrams on dnsd's full UDP receive buffer", run.name, udpSocketDrops(f.dns)-drops0)
		}
		alive(t, f.dnsd)
		if err != nil {
			t.Fatalf("%s flood: reading dnsd's RSS: %v", run.name, err)
		}
		t.Logf("%s flood: dnsd peak RSS %.1f MB", run.name, float64(peak)/(1<<20))
		if peak > maxRSS() {
			t.Errorf("%s flood: dnsd RSS peaked at %d MB, over %d MB", run.name, peak>>20, maxRSS()>>20)
		}
		if st.Completed == 0 {
			t.Errorf("%s flood: no query answered", run.name)
		}
		// Right after the flood, a name the flood asked for (cached) and
		// one it did not (through resolverd and nsd) are answered at once.
		// The new names are not wildcard answers: nsd's response rate
		// limit has just been spent on those by the flood's misses.
		for _, q := range []question{{"www.shardns.test", "AAAA"}, run.fresh} {
			r, took := timedDig(t, f.dns, q.name, q.qtype)
			t.Logf("%s flood: %s %s answered %s %v after the flood", run.name, q.name, q.qtype, r.Status, took.Round(time.Millisecond))
			if r.Status != "NOERROR" || len(r.Answer) != 1 || took > afterFlood {
				t.Errorf("%s flood: dig %s %s right after: %s EDE %q %v in %v; want NOERROR within %v", run.name, q.name, q.qtype, r.Status, r.EDE, r.Answer, took, afterFlood)
			}
		}
		rss, err := vmRSS(pid)
		if err != nil || rss > maxRSS() {
			t.Errorf("%s flood: dnsd RSS %d MB after (%v)", run.name, rss>>20, err)
		}
	}
	// Every shard stayed up: any "is down" is dnsd's heartbeat timing out
	// while dnsd itself was short of CPU.
	t.Logf("live Redis shards marked down by dnsd during the floods: %d times", strings.Count(f.dnsd.Out.String(), "is down"))
	t.Logf("dnsd shed %v UDP datagrams, counted %v cache read errors, answered %v from Redis and %v from resolverd",
		metric(t, f.metrics, "shardns_dns_udp_dropped_total"), metric(t, f.metrics, `shardns_cache_errors_total{op="get"}`),
		metric(t, f.metrics, `shardns_lookup_answers_total{source="redis"}`), metric(t, f.metrics, `shardns_lookup_answers_total{source="resolver"}`))
}
