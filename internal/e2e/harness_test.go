package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/freeport"
	"github.com/shardns/shardns/internal/testutil/procs"
)

// binDir holds dnsd, resolverd and cacheapi, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shardns-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if raceBuild {
		args = append(args, "-race")
	}
	args = append(args, "github.com/shardns/shardns/dnsd", "github.com/shardns/shardns/resolverd", "github.com/shardns/shardns/cacheapi")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	// cacheapi, dnsd -http and `cacheapi warm` keep the API token under
	// the user's configuration folder by default: keep it in this run's.
	if err := os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one of our binaries, running.
type proc = procs.Proc

// start runs a built binary with args and env, and stops it (SIGTERM, then
// SIGKILL) when the test ends. Its log is printed if the test failed.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	if name == "dnsd" {
		args = procs.WithFlag(args, "http", "") // not the default port: see procs.WithFlag
	}
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), env...)
	return procs.Start(t, name, cmd)
}

func port(t *testing.T) string {
	t.Helper()
	p, err := freeport.UDPTCP()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// waitTCP waits until addr accepts TCP connections.
func waitTCP(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			t.Fatalf("%s exited: %v\n%s", p.Name, p.Err(), p.Out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s not accepting connections\n%s", p.Name, addr, p.Out.String())
}

// digResult is what dig printed, parsed.
type digResult struct {
	Status    string
	Flags     map[string]bool
	Answer    []dns.RR
	Authority []dns.RR
	EDE       string
	Raw       string
}

var (
	statusRE = regexp.MustCompile(`status: ([A-Z]+)`)
	flagsRE  = regexp.MustCompile(`;; flags: ([a-z ]+);`)
	edeRE    = regexp.MustCompile(`; EDE: ([^\n]+)`)
)

// dig runs the real dig against addr with extra options and parses its
// answer and authority sections.
func dig(t *testing.T, addr, name, qtype string, opts ...string) digResult {
	t.Helper()
	bin, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("dig not found (apt-get install bind9-dnsutils)")
		}
		t.Skip("dig not found: apt-get install bind9-dnsutils")
	}
	host, p, _ := net.SplitHostPort(addr)
	args := append([]string{"@" + host, "-p", p, "+tries=1", "+time=5", "+nocookie", name, qtype}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	return parseDig(t, string(out))
}

func parseDig(t *testing.T, out string) digResult {
	t.Helper()
	r := digResult{Flags: map[string]bool{}, Raw: out}
	if m := statusRE.FindStringSubmatch(out); m != nil {
		r.Status = m[1]
	}
	if m := flagsRE.FindStringSubmatch(out); m != nil {
		for _, f := range strings.Fields(m[1]) {
			r.Flags[f] = true
		}
	}
	if m := edeRE.FindStringSubmatch(out); m != nil {
		r.EDE = m[1]
	}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			section = "answer"
		case strings.HasPrefix(line, ";; AUTHORITY SECTION"):
			section = "authority"
		case strings.HasPrefix(line, ";"), strings.TrimSpace(line) == "":
			if strings.HasPrefix(line, ";;") && !strings.Contains(line, "SECTION") {
				section = ""
			}
			if strings.TrimSpace(line) == "" {
				section = ""
			}
		default:
			if section == "" {
				continue
			}
			rr, err := dns.NewRR(line)
			if err != nil {
				t.Fatalf("dig printed an unparsable record %q: %v", line, err)
			}
			if section == "answer" {
				r.Answer = append(r.Answer, rr)
			} else {
				r.Authority = append(r.Authority, rr)
			}
		}
	}
	if r.Status == "" {
		t.Fatalf("no status in dig output:\n%s", out)
	}
	return r
}

// rdata returns the records' data, as dig prints it after the type.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	return out
}

// exchange sends one query with the Go client.
func exchange(addr, network, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: 1232}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(1232, false)
	r, _, err := c.Exchange(q, addr)
	return r, err
}

// waitDNS waits until addr answers DNS over UDP.
func waitDNS(t *testing.T, p *proc, addr, name string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.Done():
			t.Fatalf("%s exited: %v\n%s", p.Name, p.Err(), p.Out.String())
		default:
		}
		if r, err := exchange(addr, "udp", name, dns.TypeSOA); err == nil && r.Rcode == dns.RcodeSuccess {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s at %s did not answer\n%s", p.Name, addr, p.Out.String())
}
