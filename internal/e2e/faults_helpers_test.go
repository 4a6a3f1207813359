package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// hangBound is the longest any single query may take while a part of the
// fleet is down or frozen: not a speed check, only proof nothing hangs on
// the dead part (a stub resolver gives up after about 2 s).
const hangBound = time.Second

// startFleetWith is startFleet with extra dnsd flags (e.g. "-max-ttl", "2s").
func startFleetWith(t *testing.T, dnsdArgs ...string) *fleet {
	t.Helper()
	f := &fleet{}
	f.nsd = nsdtest.Start(t, map[string]string{zoneName: testZone()})
	f.shards = redistest.StartN(t, 4)
	f.grpc = port(t)
	f.resolver = start(t, "resolverd", nil, "-listen", f.grpc, "-upstream", f.nsd.Addr)
	waitTCP(t, f.resolver, f.grpc)
	f.dns = port(t)
	f.metrics = port(t)
	args := append([]string{
		"-listen", f.dns,
		"-redis", strings.Join(redistest.Addrs(f.shards), ","),
		"-resolver", f.grpc,
		"-metrics", f.metrics,
		"-l1", "0",
	}, dnsdArgs...)
	f.dnsd = start(t, "dnsd", nil, args...)
	waitDNS(t, f.dnsd, f.dns, zoneName)
	return f
}

// restartResolver starts a new resolverd on the fleet's gRPC address, as a
// supervisor would after a crash.
func (f *fleet) restartResolver(t *testing.T) {
	t.Helper()
	f.resolver = start(t, "resolverd", nil, "-listen", f.grpc, "-upstream", f.nsd.Addr)
	waitTCP(t, f.resolver, f.grpc)
}

// timedExchange sends one UDP query with the Go client and says how long
// the answer took.
func timedExchange(addr, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	t0 := time.Now()
	r, err := exchange(addr, "udp", name, qtype)
	return r, time.Since(t0), err
}

// timedDig runs dig and says how long it took, process start included.
func timedDig(t *testing.T, addr, name, qtype string, opts ...string) (digResult, time.Duration) {
	t.Helper()
	t0 := time.Now()
	r := dig(t, addr, name, qtype, opts...)
	return r, time.Since(t0)
}

// freeze stops p with SIGSTOP, like a host that stopped answering but
// whose connections stay open. The returned func resumes it; it also runs
// when the test ends, before p is stopped.
func freeze(t *testing.T, p *proc) (resume func()) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", p.Name, err)
	}
	resume = func() { _ = p.Cmd.Process.Signal(syscall.SIGCONT) }
	t.Cleanup(resume)
	return resume
}

// needTool returns the path of a command the test drives, skipping the
// test (failing it under CI) when it is not installed.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s not found: apt-get install %s", name, pkg)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// vmRSS reads a process's resident set size in bytes from /proc.
func vmRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// poll calls ok every interval until it returns true or limit passes, and
// says how long that took and whether it succeeded.
func poll(limit, interval time.Duration, ok func() bool) (time.Duration, bool) {
	t0 := time.Now()
	for {
		if ok() {
			return time.Since(t0), true
		}
		if time.Since(t0) > limit {
			return time.Since(t0), false
		}
		time.Sleep(interval)
	}
}

// alive fails the test if p has exited.
func alive(t *testing.T, p *proc) {
	t.Helper()
	select {
	case <-p.Done():
		t.Fatalf("%s exited: %v\n%s", p.Name, p.Err(), p.Out.String())
	default:
	}
}

// spread is a name under the test zone's wildcard: a distinct cache key
// for each (prefix, i).
func spread(prefix string, i int) string {
	return fmt.Sprintf("%s%d.spread.shardns.test", prefix, i)
}

// cacheKey is the Redis key of name's A record, as docs/architecture.md spells it.
func cacheKey(name string) string {
	return "dns:{" + strings.ToLower(dns.Fqdn(name)) + "}:A:IN"
}
