package peers

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/bench/redisproc"
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
		"-allow", "127.0.0.0/8", "-http", ""}
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

// startRedis starts shard i of cfg with persistence off and waits until
// it answers.
func startRedis(ctx context.Context, e Env, cfg ShardnsConfig, i int) (string, *proc.Proc, error) {
	mem, pol := cfg.RedisMaxMemory, cfg.RedisPolicy
	if mem == "" {
		mem = "1gb"
	}
	if pol == "" {
		pol = "allkeys-lfu"
	}
	name := procName(cfg.Name, fmt.Sprintf("redis%d", i))
	s, err := redisproc.Start(ctx, redisproc.Config{
		Group: e.Group, Name: name, Prefix: e.Prefix, Bin: cfg.Redis, Dir: filepath.Join(e.Dir, name),
		Args: []string{"--maxmemory", mem, "--maxmemory-policy", pol},
	})
	if err != nil {
		return "", nil, fmt.Errorf("peers: %w", err)
	}
	return s.Addr, s.Proc, nil
}
