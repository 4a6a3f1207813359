package peers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/bench/redisproc"
	"github.com/shardns/shardns/cacheapi/token"
)

// Delayed starts the fixed-answer server built from bench/fixeddns with
// -delay: every answer comes after delay, as from a distant upstream.
func Delayed(ctx context.Context, e Env, bin string, delay time.Duration) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := e.start("fixeddns-delayed", bin, "-listen", loopback(port), "-delay", delay.String())
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "delayed answer", Addr: loopback(port), Procs: []*proc.Proc{p}}
	if err := WaitDNS(ctx, s, "probe.", dns.TypeA); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// QueueRedis starts the work queue's Redis as deploy/redis/queue.conf
// runs it (AOF with fsync every second, no RDB snapshots, noeviction) on
// a free loopback port, and waits until it answers.
func QueueRedis(ctx context.Context, e Env, bin string) (string, *proc.Proc, error) {
	s, err := redisproc.Start(ctx, redisproc.Config{
		Group: e.Group, Name: "queue-redis", Prefix: e.Prefix, Bin: bin, Dir: filepath.Join(e.Dir, "queue-redis"),
		Args: []string{"--appendonly", "yes", "--appendfsync", "everysec",
			"--maxmemory", "256mb", "--maxmemory-policy", "noeviction"},
	})
	if err != nil {
		return "", nil, fmt.Errorf("peers: queue redis: %w", err)
	}
	return s.Addr, s.Proc, nil
}

// CacheShards starts n Redis cache shards as the other shardns rows run
// them (maxmemory 1 GB, allkeys-lfu, no persistence).
func CacheShards(ctx context.Context, e Env, bin, label string, n int) ([]string, []*proc.Proc, error) {
	cfg := ShardnsConfig{Name: label, Redis: bin, RedisMaxMemory: "1gb", RedisPolicy: "allkeys-lfu"}
	var addrs []string
	var procs []*proc.Proc
	for i := range n {
		addr, p, err := startRedis(ctx, e, cfg, i)
		if p != nil {
			procs = append(procs, p)
		}
		if err != nil {
			for _, p := range procs {
				p.Stop()
			}
			return nil, nil, err
		}
		addrs = append(addrs, addr)
	}
	return addrs, procs, nil
}

// WorkerConfig is one resolverd run for its queue workers.
type WorkerConfig struct {
	Resolverd  string // the binary
	Name       string // log file name
	Upstream   string // loopback host:port
	Redis      string // cache shards, comma list
	QueueRedis string
	Workers    int // -workers; 0: none (a resolver for the frontends only)
}

// Resolverd starts resolverd with cfg's workers and waits until its gRPC
// port takes connections. It returns the process and the gRPC address.
func Resolverd(ctx context.Context, e Env, cfg WorkerConfig) (*proc.Proc, string, error) {
	if _, _, err := splitLoopback(cfg.Upstream); err != nil {
		return nil, "", err
	}
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := loopback(port)
	p, err := e.start(cfg.Name, cfg.Resolverd, "-listen", addr, "-upstream", cfg.Upstream,
		"-redis", cfg.Redis, "-queue-redis", cfg.QueueRedis, "-workers", strconv.Itoa(cfg.Workers),
		"-log-level", "warn")
	if err != nil {
		return nil, "", err
	}
	if err := waitTCP(ctx, addr, p); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, addr, nil
}

// CacheapiConfig is the cacheapi a run submits jobs through.
type CacheapiConfig struct {
	Cacheapi   string // the binary
	Redis      string // cache shards, comma list
	Resolver   string // resolverd gRPC address
	QueueRedis string
}

// API is a started cacheapi.
type API struct {
	Proc  *proc.Proc
	Base  string // http://127.0.0.1:port
	Token string // the bearer token its calls that change state need
}

// Cacheapi starts cacheapi on a free loopback port, its token file in the
// scratch folder (cacheapi makes the token there at start; the user's own
// token file is left alone), and waits until GET /jobs answers 200 (the
// work queue is reachable).
func Cacheapi(ctx context.Context, e Env, cfg CacheapiConfig) (*API, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := loopback(port)
	tokenFile := filepath.Join(e.Dir, "cacheapi-token")
	p, err := e.start("cacheapi", cfg.Cacheapi, "-listen", addr, "-redis", cfg.Redis, "-resolver", cfg.Resolver,
		"-queue-redis", cfg.QueueRedis, "-token-file", tokenFile, "-log-level", "warn")
	if err != nil {
		return nil, err
	}
	a := &API{Proc: p, Base: "http://" + addr}
	if err := waitHTTP(ctx, a.Base+"/jobs", p); err != nil {
		p.Stop()
		return nil, err
	}
	if a.Token, err = token.Read(tokenFile); err != nil {
		p.Stop()
		return nil, fmt.Errorf("peers: cacheapi: %w", err)
	}
	return a, nil
}

// waitTCP waits until addr takes TCP connections, p exits, or startWait
// passes.
func waitTCP(ctx context.Context, addr string, p *proc.Proc) error {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("peers: %s exited (%v): %s", p.Name, err, p.LogTail(2000))
		}
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("peers: %s did not listen on %s within %v", p.Name, addr, startWait)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitHTTP waits until GET url answers 200, p exits, or startWait passes.
func waitHTTP(ctx context.Context, url string, p *proc.Proc) error {
	ctx, cancel := context.WithTimeout(ctx, startWait)
	defer cancel()
	c := &http.Client{Timeout: time.Second}
	var last error
	for {
		if done, err := p.Exited(); done {
			return fmt.Errorf("peers: %s exited (%v): %s", p.Name, err, p.LogTail(2000))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("peers: %w", err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("peers: %s: GET %s did not answer 200 within %v: %v", p.Name, url, startWait, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
