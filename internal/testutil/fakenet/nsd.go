package fakenet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/nsdconf"
)

// nsdServer is one nsd process of the fake Internet.
type nsdServer struct {
	addr string // host:port
	dir  string
	conf string // nsd.conf, which nsd-control reads too
	cmd  *exec.Cmd
	done chan struct{}
}

// startNSD writes the zones (origins, texts from texts) into dir and runs
// nsd on addr:port, its control socket at ctl, until it answers the SOA of
// each.
func startNSD(dir, ctl, addr string, port int, origins []string, texts map[string]string) (*nsdServer, error) {
	bin, err := lookPath("nsd")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fakenet: nsd %s: %w", addr, err)
	}
	var zones []nsdconf.Zone
	for _, origin := range origins {
		file := strings.TrimSuffix(origin, ".")
		if file == "" {
			file = "root"
		}
		file += ".zone"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(texts[origin]), 0o644); err != nil {
			return nil, fmt.Errorf("fakenet: nsd %s: %w", addr, err)
		}
		zones = append(zones, nsdconf.Zone{Name: origin, File: file})
	}
	conf := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(conf, []byte(nsdconf.Server{Addr: addr, Port: port, Dir: dir, Control: ctl}.Config(zones...)), 0o644); err != nil {
		return nil, fmt.Errorf("fakenet: nsd %s: %w", addr, err)
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	cmd.SysProcAttr = sysProcAttr()
	out, err := os.Create(filepath.Join(dir, "nsd.out"))
	if err != nil {
		return nil, fmt.Errorf("fakenet: nsd %s: %w", addr, err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fakenet: start nsd on %s: %w", addr, err)
	}
	s := &nsdServer{addr: net.JoinHostPort(addr, strconv.Itoa(port)), dir: dir, conf: conf, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	for _, origin := range origins {
		if err := waitSOA(s.addr, origin, s.done, 10*time.Second); err != nil {
			s.stop()
			log, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
			stdout, _ := os.ReadFile(filepath.Join(dir, "nsd.out"))
			return nil, fmt.Errorf("fakenet: nsd on %s: %w\nnsd log:\n%s%s", s.addr, err, log, stdout)
		}
	}
	return s, nil
}

// waitSOA polls addr over UDP until it answers origin's SOA with
// authority, the process behind it ends (done) or limit passes.
func waitSOA(addr, origin string, done <-chan struct{}, limit time.Duration) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(origin, dns.TypeSOA)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("the server exited")
		default:
		}
		if r, _, err := c.Exchange(q, addr); err == nil && r.Rcode == dns.RcodeSuccess && r.Authoritative && len(r.Answer) > 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no SOA of %s within %v", origin, limit)
}

// queries asks nsd (nsd-control stats_noreset) how many queries it has
// received since it started, over UDP and TCP.
func (s *nsdServer) queries(ctx context.Context) (uint64, error) {
	bin, err := lookPath("nsd-control")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", s.conf, "stats_noreset").Output()
	if err != nil {
		return 0, fmt.Errorf("fakenet: nsd-control stats_noreset for %s: %w", s.addr, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "num.queries="); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("fakenet: nsd-control stats_noreset for %s: num.queries %q: %w", s.addr, v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("fakenet: nsd-control stats_noreset for %s: no num.queries in %q", s.addr, out)
}

// stop ends nsd (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (s *nsdServer) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
