package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/procs"
)

// netnsMetricsAddr is where dnsd serves /metrics inside the test's own
// network namespace; nothing else listens there.
const netnsMetricsAddr = "127.0.0.1:9153"

// netnsZone is the zone dnsd answers as the namespace's only resolver:
// addresses of both families, a name with only one of each, a name with
// three A records and a CNAME.
const netnsZone = `$ORIGIN shardns.test.
$TTL 300
@       3600 IN SOA ns1 hostmaster 2026112201 7200 900 1209600 60
@       IN NS    ns1
ns1     IN A     127.0.0.1
www     IN A     192.0.2.10
www     IN AAAA  2001:db8::10
v4only  IN A     192.0.2.20
v6only  IN AAAA  2001:db8::30
multi   IN A     192.0.2.41
multi   IN A     192.0.2.42
multi   IN A     192.0.2.43
alias   IN CNAME www
`

// TestNetnsSystemResolver runs dnsd on 127.0.0.1:53 as the system resolver
// of a network namespace (its /etc/resolv.conf names only dnsd) and
// resolves the zone's names through glibc with getent, as every program on
// such a host would. dnsd's own counters show each lookup reached it.
func TestNetnsSystemResolver(t *testing.T) {
	ns := netnsCreate(t)
	zones := t.TempDir()
	if err := os.WriteFile(filepath.Join(zones, "shardns.test.zone"), []byte(netnsZone), 0o644); err != nil {
		t.Fatal(err)
	}
	// -upstream is a closed loopback port: names outside the zone fail
	// rather than leave the namespace, and dnsd does not read the
	// namespace's resolv.conf (which names dnsd itself).
	d := netnsStart(t, ns, "dnsd",
		"-listen", "127.0.0.1:53",
		"-zones", zones,
		"-upstream", "127.0.0.1:9",
		"-metrics", netnsMetricsAddr,
	)
	ns.waitDNS(t, d)

	www := []string{"www.shardns.test"}
	cases := []struct {
		db, key string
		exit    int
		addrs   []string // sorted
		names   []string // hosts: official name then aliases; ahosts*: the canonical name
	}{
		{"hosts", "www.shardns.test", 0, []string{"2001:db8::10"}, www},
		{"hosts", "www", 0, []string{"2001:db8::10"}, www}, // through resolv.conf's search list
		{"hosts", "alias.shardns.test", 0, []string{"2001:db8::10"}, []string{"www.shardns.test", "alias.shardns.test"}},
		{"hosts", "v4only.shardns.test", 0, []string{"192.0.2.20"}, []string{"v4only.shardns.test"}},
		{"hosts", "v6only.shardns.test", 0, []string{"2001:db8::30"}, []string{"v6only.shardns.test"}},
		{"hosts", "multi.shardns.test", 0, []string{"192.0.2.41", "192.0.2.42", "192.0.2.43"}, []string{"multi.shardns.test"}},
		{"hosts", "nope.shardns.test", 2, nil, nil},
		{"ahosts", "www.shardns.test", 0, []string{"192.0.2.10", "2001:db8::10"}, www},
		{"ahosts", "alias.shardns.test", 0, []string{"192.0.2.10", "2001:db8::10"}, www},
		{"ahosts", "multi.shardns.test", 0, []string{"192.0.2.41", "192.0.2.42", "192.0.2.43"}, []string{"multi.shardns.test"}},
		{"ahosts", "nope.shardns.test", 2, nil, nil},
		{"ahostsv4", "www.shardns.test", 0, []string{"192.0.2.10"}, www},
		{"ahostsv4", "alias.shardns.test", 0, []string{"192.0.2.10"}, www},
		{"ahostsv4", "v6only.shardns.test", 2, nil, nil},
		{"ahostsv6", "www.shardns.test", 0, []string{"2001:db8::10"}, www},
		{"ahostsv6", "alias.shardns.test", 0, []string{"2001:db8::10"}, www},
		{"ahostsv6", "v4only.shardns.test", 0, []string{"::ffff:192.0.2.20"}, []string{"v4only.shardns.test"}}, // AI_V4MAPPED
	}
	for _, c := range cases {
		t.Run(c.db+"_"+c.key, func(t *testing.T) {
			alive(t, d)
			before := ns.replies(t)
			out, code := ns.exec(t, 30*time.Second, ns.getent, c.db, c.key)
			if code != c.exit {
				t.Fatalf("getent %s %s: exit %d, want %d\n%s", c.db, c.key, code, c.exit, out)
			}
			var addrs, names []string
			if c.db == "hosts" {
				addrs, names = netnsParseHosts(t, out)
			} else {
				addrs, names = netnsParseAhosts(t, out)
			}
			if !slices.Equal(addrs, c.addrs) || !slices.Equal(names, c.names) {
				t.Errorf("getent %s %s: addresses %q names %q, want %q %q\n%s", c.db, c.key, addrs, names, c.addrs, c.names, out)
			}
			// Proof the answer came from dnsd and not from some other
			// source glibc knows (files, nscd, a host-wide resolver).
			if after := ns.replies(t); after <= before {
				t.Errorf("getent %s %s: dnsd replies %v before, %v after: the lookup did not reach dnsd (is nscd running?)", c.db, c.key, before, after)
			}
		})
	}

	m := ns.metrics(t)
	if n := m[`shardns_dns_replies_total{rcode="NXDOMAIN"}`]; n < 3 {
		t.Errorf("dnsd sent %v NXDOMAIN replies, want at least one per missing name (3)", n)
	}
	if n := m[`shardns_dns_replies_total{rcode="SERVFAIL"}`]; n != 0 {
		t.Errorf("dnsd sent %v SERVFAIL replies: some lookup left the zone", n)
	}
}

// netns is a network namespace made by one test, with its own
// /etc/netns/<name> files that `ip netns exec` mounts over /etc.
type netns struct {
	name   string
	ip     string // path of ip(8)
	getent string
	dig    string
	curl   string
}

var netnsNameRE = regexp.MustCompile(`^shardns-test-(\d+)-\d+$`)

// netnsCreate makes a namespace named shardns-test-<pid>-<n> with lo up,
// whose resolv.conf names only 127.0.0.1, and removes it (and its
// /etc/netns folder) when the test ends, failed or not. Not root: skip
// (fail under CI).
func netnsCreate(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := "needs root to make a network namespace: run as root, e.g. sudo -E go test -run Netns ./internal/e2e/"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ns := &netns{
		ip:     needTool(t, "ip", "iproute2"),
		getent: needTool(t, "getent", "libc-bin"),
		dig:    needTool(t, "dig", "bind9-dnsutils"),
		curl:   needTool(t, "curl", "curl"),
	}
	netnsSweep(t, ns.ip)

	for n := 0; ns.name == ""; n++ {
		if n == 100 {
			t.Fatal("netns: no free namespace name after 100 tries")
		}
		name := fmt.Sprintf("shardns-test-%d-%d", os.Getpid(), n)
		out, err := netnsRun(10*time.Second, ns.ip, "netns", "add", name)
		switch {
		case err == nil:
			ns.name = name
		case strings.Contains(out, "File exists"):
			continue
		default:
			msg := fmt.Sprintf("netns: ip netns add %s: %v: %s (a container without CAP_SYS_ADMIN cannot make namespaces)", name, err, out)
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	etc := filepath.Join("/etc/netns", ns.name)
	_, statErr := os.Stat("/etc/netns")
	madeParent := errors.Is(statErr, os.ErrNotExist)
	t.Cleanup(func() {
		if out, err := netnsRun(10*time.Second, ns.ip, "netns", "delete", ns.name); err != nil {
			t.Errorf("netns: ip netns delete %s: %v: %s", ns.name, err, out)
		}
		if err := os.RemoveAll(etc); err != nil {
			t.Errorf("netns: %v", err)
		}
		if madeParent {
			_ = os.Remove("/etc/netns") // only if still empty
		}
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns.name)); err == nil {
			t.Errorf("netns: %s still exists after delete", ns.name)
		}
	})

	if out, err := netnsRun(10*time.Second, ns.ip, "-n", ns.name, "link", "set", "lo", "up"); err != nil {
		t.Fatalf("netns: lo up: %v: %s", err, out)
	}
	// glibc's getaddrinfo with AI_ADDRCONFIG (getent ahostsv4/ahostsv6)
	// returns nothing for a family the host has no non-loopback address
	// of. A real host has some; give the namespace one of each, on lo.
	for _, a := range [][]string{{"198.51.100.53/32"}, {"2001:db8:ffff::53/128", "nodad"}} {
		args := append([]string{"-n", ns.name, "addr", "add", a[0], "dev", "lo"}, a[1:]...)
		if out, err := netnsRun(10*time.Second, ns.ip, args...); err != nil {
			t.Fatalf("netns: ip %v: %v: %s", args, err, out)
		}
	}

	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"resolv.conf":   "nameserver 127.0.0.1\nsearch shardns.test\noptions timeout:2 attempts:2\n",
		"hosts":         "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
		"nsswitch.conf": netnsNsswitch(),
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(etc, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// netnsNsswitch is this host's nsswitch.conf with hosts looked up in
// files, then DNS only: no nss-resolve or mDNS, which would answer from
// outside the namespace.
func netnsNsswitch() string {
	const hosts = "hosts: files dns"
	b, err := os.ReadFile("/etc/nsswitch.conf")
	if err != nil {
		return hosts + "\n"
	}
	var out []string
	found := false
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "hosts:") {
			line, found = hosts, true
		}
		out = append(out, line)
	}
	if !found {
		out = append(out, hosts)
	}
	return strings.Join(out, "\n") + "\n"
}

// netnsSweep deletes namespaces this test left when an earlier run was
// killed before its cleanup ran (a go test -timeout panic does that): a
// name of ours whose process is gone.
func netnsSweep(t *testing.T, ip string) {
	t.Helper()
	out, err := netnsRun(10*time.Second, ip, "netns", "list")
	if err != nil {
		t.Fatalf("netns: ip netns list: %v: %s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := netnsNameRE.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		if out, err := netnsRun(10*time.Second, ip, "netns", "delete", f[0]); err != nil {
			t.Logf("netns: removing stale %s: %v: %s", f[0], err, out)
		}
		_ = os.RemoveAll(filepath.Join("/etc/netns", f[0]))
	}
}

// netnsRun runs a command in this namespace (not the test's), with a
// deadline, and returns its combined output.
func netnsRun(limit time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// exec runs a command inside the namespace with `ip netns exec`, and
// returns its standard output and exit code; stderr goes to the log.
func (ns *netns) exec(t *testing.T, limit time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, ns.ip, append([]string{"netns", "exec", ns.name}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("%v: stderr: %s", args, s)
	}
	if ctx.Err() != nil {
		t.Fatalf("netns: %v did not finish within %v", args, limit)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), ee.ExitCode()
	default:
		t.Fatalf("netns: %v: %v", args, err)
		return "", -1
	}
}

// netnsStart runs one of the built binaries inside the namespace; like
// start, it is stopped with SIGTERM when the test ends (ip netns exec
// execs the binary, so the signal reaches it) and its log is printed if
// the test failed.
func netnsStart(t *testing.T, ns *netns, name string, args ...string) *proc {
	t.Helper()
	if name == "dnsd" {
		args = procs.WithFlag(args, "http", "")
	}
	full := append([]string{"netns", "exec", ns.name, filepath.Join(binDir, name)}, args...)
	return procs.Start(t, name+" in "+ns.name, exec.Command(ns.ip, full...))
}

// waitDNS waits until dnsd answers the zone's SOA on 127.0.0.1:53 inside
// the namespace.
func (ns *netns) waitDNS(t *testing.T, p *proc) {
	t.Helper()
	_, ok := poll(15*time.Second, 100*time.Millisecond, func() bool {
		alive(t, p)
		out, code := ns.exec(t, 10*time.Second, ns.dig, "@127.0.0.1", "+short", "+time=1", "+tries=1", "shardns.test", "SOA")
		return code == 0 && strings.Contains(out, "hostmaster.shardns.test.")
	})
	if !ok {
		t.Fatalf("dnsd in %s did not answer on 127.0.0.1:53\n%s", ns.name, p.Out.String())
	}
}

// metrics reads dnsd's /metrics inside the namespace: series (name and
// labels as printed) to value.
func (ns *netns) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	out, code := ns.exec(t, 10*time.Second, ns.curl, "-sS", "--max-time", "5", "http://"+netnsMetricsAddr+"/metrics")
	if code != 0 {
		t.Fatalf("netns: curl /metrics: exit %d", code)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("netns: metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// replies is the number of DNS replies dnsd has sent, all RCODEs.
func (ns *netns) replies(t *testing.T) float64 {
	t.Helper()
	var n float64
	for k, v := range ns.metrics(t) {
		if strings.HasPrefix(k, "shardns_dns_replies_total{") {
			n += v
		}
	}
	return n
}

// netnsParseHosts reads `getent hosts` output: one line per address, each
// "ADDRESS OFFICIAL-NAME ALIAS...". It returns the sorted addresses and the
// names, which every line must repeat.
func netnsParseHosts(t *testing.T, out string) (addrs, names []string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			t.Fatalf("getent hosts line %q: no name", line)
		}
		if names != nil && !slices.Equal(names, f[1:]) {
			t.Errorf("getent hosts: names differ between lines: %q and %q", names, f[1:])
		}
		addrs, names = append(addrs, f[0]), f[1:]
	}
	slices.Sort(addrs)
	return addrs, names
}

// netnsParseAhosts reads `getent ahosts*` output: for each address a
// STREAM, a DGRAM and a RAW line, the first line of all carrying the
// canonical name. It returns the sorted distinct addresses and the
// canonical name.
func netnsParseAhosts(t *testing.T, out string) (addrs, names []string) {
	t.Helper()
	socks := map[string][]string{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			t.Fatalf("getent ahosts line %q: no socket type", line)
		}
		if i == 0 {
			names = f[2:]
		} else if len(f) > 2 {
			t.Errorf("getent ahosts line %q: a name after the first line", line)
		}
		if _, seen := socks[f[0]]; !seen {
			addrs = append(addrs, f[0])
		}
		socks[f[0]] = append(socks[f[0]], f[1])
	}
	for a, s := range socks {
		slices.Sort(s)
		if !slices.Equal(s, []string{"DGRAM", "RAW", "STREAM"}) {
			t.Errorf("getent ahosts: %s has socket types %q", a, s)
		}
	}
	slices.Sort(addrs)
	return addrs, names
}
