package peers

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
)

// ShardnsConfig says which arrangement of shardns to start.
type ShardnsConfig struct {
	Name           string        // row label in the report
	Dnsd           string        // dnsd binary
	Resolverd      string        // resolverd binary; used when UseResolverd
	Redis          string        // redis-server binary; used when Shards > 0
	Shards         int           // Redis cache shards; 0 = in-process cache only
	UseResolverd   bool          // misses go over gRPC to a resolverd process; else dnsd resolves in-process
	L1             int           // -l1 entries; 0 turns L1 off
	MinTTL         time.Duration // -min-ttl
	RedisMaxMemory string        // maxmemory of each shard, e.g. "1gb"
	RedisPolicy    string        // maxmemory-policy of each shard
}

// Shardns starts cfg's Redis shards, resolverd and dnsd, all on loopback,
// resolving through upstream, and waits until dnsd answers probe.
// dnsd serves Prometheus metrics on a loopback port (Server.Metrics).
func Shardns(ctx context.Context, e Env, cfg ShardnsConfig, upstream *Server, probe string) (*Server, error) {
	if _, _, err := splitLoopback(upstream.Addr); err != nil {
		return nil, err
	}
	s := &Server{Name: cfg.Name}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	var shards []string
	for i := range cfg.Shards {
		addr, p, err := startRedis(ctx, e, cfg, i)
		if p != nil {
			s.Procs = append(s.Procs, p)
		}
		if err != nil {
			return nil, err
		}
		shards = append(shards, addr)
	}
	s.RedisAddrs = shards
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	mport, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{cfg.Dnsd, "-listen", loopback(port), "-metrics", loopback(mport),
		"-l1", strconv.Itoa(cfg.L1), "-min-ttl", cfg.MinTTL.String(), "-log-level", "warn",
		"-allow", "127.0.0.0/8"}
	if len(shards) > 0 {
		args = append(args, "-redis", strings.Join(shards, ","))
	}
	if cfg.UseResolverd {
		gport, err := FreePort()
		if err != nil {
			return nil, err
		}
		rmport, err := FreePort()
		if err != nil {
			return nil, err
		}
		p, err := e.start(procName(cfg.Name, "resolverd"), cfg.Resolverd, "-listen", loopback(gport),
			"-upstream", upstream.Addr, "-metrics", loopback(rmport), "-log-level", "warn")
		if err != nil {
			return nil, err
		}
		s.Procs = append(s.Procs, p)
		s.ResolverdMetrics = "http://" + loopback(rmport) + "/metrics"
		args = append(args, "-resolver", loopback(gport))
	} else {
		args = append(args, "-upstream", upstream.Addr)
	}
	p, err := e.start(procName(cfg.Name, "dnsd"), args...)
	if err != nil {
		return nil, err
	}
	s.Procs = append(s.Procs, p)
	s.Addr = loopback(port)
	s.Metrics = "http://" + loopback(mport) + "/metrics"
	if err := WaitDNS(ctx, s, probe, dns.TypeA); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// procName makes a log file name out of a row label and a part.
func procName(label, part string) string {
	r := strings.NewReplacer(" ", "-", "(", "", ")", "", "/", "-", "×", "x", ",", "", "+", "-")
	return strings.ToLower(r.Replace(label)) + "-" + part
}

// startRedis starts shard i with persistence off and waits for PING.
func startRedis(ctx context.Context, e Env, cfg ShardnsConfig, i int) (string, *proc.Proc, error) {
	port, err := FreePort()
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(e.Dir, procName(cfg.Name, fmt.Sprintf("redis%d", i)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("peers: redis: %w", err)
	}
	mem, pol := cfg.RedisMaxMemory, cfg.RedisPolicy
	if mem == "" {
		mem = "1gb"
	}
	if pol == "" {
		pol = "allkeys-lfu"
	}
	p, err := e.start(procName(cfg.Name, fmt.Sprintf("redis%d", i)), cfg.Redis,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory", mem, "--maxmemory-policy", pol, "--dir", dir, "--logfile", "")
	if err != nil {
		return "", nil, err
	}
	addr := loopback(port)
	if err := waitPing(ctx, addr, p); err != nil {
		return "", p, err
	}
	return addr, p, nil
}

// waitPing waits until the Redis at addr answers PING.
func waitPing(ctx context.Context, addr string, p *proc.Proc) error {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("peers: redis at %s exited (%v): %s", addr, err, p.LogTail(2000))
		}
		if ping(ctx, addr) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("peers: redis at %s did not answer PING within %v", addr, startWait)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 200 * time.Millisecond}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redis answered %q", line)
	}
	return nil
}
