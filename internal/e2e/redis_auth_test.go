package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/redisopt"
	"github.com/shardns/shardns/internal/testutil/nsdtest"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// TestRedisPasswordAndTLS runs the fleet against Redis servers that take
// only TLS and a password: a cache shard (the default user's password)
// and the queue's Redis (an ACL user, the default user off), all signed by
// a CA the test makes. No password is on a command line: resolverd reads
// the shard's from SHARDNS_REDIS_PASSWORD, dnsd from -redis-password-file,
// and both the queue's from SHARDNS_QUEUE_REDIS_PASSWORD.
//
// Answers dig gets through dnsd reach the shard (read back by a client
// that logs in), a job submitted to the queue is worked by resolverd into
// the shard, and a second dnsd given an extra shard with another password
// logs that shard at start by address and reason and still answers every
// name (its names are misses, never SERVFAIL).
func TestRedisPasswordAndTLS(t *testing.T) {
	const shardPW, queuePW = "shard pass-1", "queue-pass-2"
	ca := redistest.NewCA(t, "e2e")
	shard := redistest.StartSecure(t, redistest.Security{Password: shardPW, TLS: ca})
	qsrv := redistest.StartSecure(t, redistest.Security{User: "worker", UserPassword: queuePW, TLS: ca},
		"--maxmemory-policy", "noeviction")
	nsd := nsdtest.Start(t, map[string]string{zoneName: testZone()})

	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(shardPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsFlags := []string{"-redis-tls", "-redis-tls-ca", ca.CertFile, "-queue-redis-user", "worker"}
	queueEnv := redisopt.QueuePasswordEnv + "=" + queuePW

	grpcAddr := port(t)
	resolver := start(t, "resolverd", []string{redisopt.PasswordEnv + "=" + shardPW, queueEnv},
		append([]string{"-listen", grpcAddr, "-upstream", nsd.Addr, "-redis", shard.Addr,
			"-queue-redis", qsrv.Addr, "-workers", "2"}, tlsFlags...)...)
	waitTCP(t, resolver, grpcAddr)

	dnsAddr := port(t)
	dnsd := start(t, "dnsd", []string{queueEnv},
		append([]string{"-listen", dnsAddr, "-redis", shard.Addr, "-redis-password-file", pwFile,
			"-resolver", grpcAddr, "-l1", "0", "-queue-redis", qsrv.Addr}, tlsFlags...)...)
	waitDNS(t, dnsd, dnsAddr, zoneName)

	for _, p := range []*proc{resolver, dnsd} {
		if out := p.Out.String(); strings.Contains(out, "refused us") || strings.Contains(out, "unreachable") {
			t.Errorf("%s logged a Redis server as unusable:\n%s", p.Name, out)
		}
	}

	// dig through dnsd; the answer reaches the shard, which only a client
	// that logs in over TLS can read.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := shard.Client()
	for i := range 5 {
		name := spread("tls", i)
		r := dig(t, dnsAddr, name, "A")
		if r.Status != "NOERROR" || len(r.Answer) != 1 {
			t.Fatalf("dig %s: %s %v", name, r.Status, r.Answer)
		}
		if _, ok := poll(5*time.Second, 20*time.Millisecond, func() bool {
			return c.Exists(ctx, cacheKey(name)).Val() == 1
		}); !ok {
			t.Errorf("%s did not reach the shard", name)
		}
	}
	anon := shard.Options(time.Second)
	anon.Password = ""
	ac := redis.NewClient(anon)
	defer ac.Close()
	if err := ac.Get(ctx, cacheKey(spread("tls", 0))).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("a client without the password read the shard: %v", err)
	}

	// A job through the queue: resolverd's workers take it over ACL and
	// TLS and store the answer in the shard.
	queueAuth := redisopt.Auth{User: "worker", Password: queuePW, TLS: ca.ClientTLS()}
	q, err := queue.Open(qsrv.Addr, queue.Config{Auth: queueAuth})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Client().Close()
	const queued = "queued.spread.shardns.test"
	job, err := q.Submit(ctx, []queue.Item{{Name: queued, Type: "A"}}, "e2e")
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if _, ok := poll(20*time.Second, 50*time.Millisecond, func() bool {
		j, err := q.Job(ctx, job.ID)
		return err == nil && j.State == "finished"
	}); !ok {
		j, _ := q.Job(ctx, job.ID)
		t.Fatalf("job not finished: %+v\n%s", j, resolver.Out.String())
	}
	if n := c.Exists(ctx, cacheKey(queued)).Val(); n != 1 {
		t.Errorf("the queued name's answer is not in the shard")
	}
	// dnsd counts its hits for the fleet's prefetch in the queue's Redis,
	// over its own ACL and TLS client.
	for range 3 {
		dig(t, dnsAddr, spread("tls", 0), "A")
	}
	if _, ok := poll(10*time.Second, 50*time.Millisecond, func() bool {
		return qsrv.Client().ZScore(ctx, "q:{warm}:hot:hits", cacheKey(spread("tls", 0))).Val() > 0
	}); !ok {
		t.Errorf("dnsd's hits did not reach the queue's Redis\n%s", dnsd.Out.String())
	}

	// A second dnsd with one more shard, whose password is not ours.
	other := redistest.StartSecure(t, redistest.Security{Password: "not-ours", TLS: ca})
	dns2 := port(t)
	dnsd2 := start(t, "dnsd", []string{redisopt.PasswordEnv + "=" + shardPW},
		"-listen", dns2, "-redis", shard.Addr+","+other.Addr, "-redis-tls", "-redis-tls-ca", ca.CertFile,
		"-resolver", grpcAddr, "-l1", "0")
	waitDNS(t, dnsd2, dns2, zoneName)
	out := dnsd2.Out.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "addr="+other.Addr) || !strings.Contains(out, "wrong user or password") {
		t.Errorf("dnsd did not log the refusing shard %s with its reason:\n%s", other.Addr, out)
	}
	for i := range 40 {
		name := spread("mixed", i)
		for range 2 {
			if r := dig(t, dns2, name, "A"); r.Status != "NOERROR" || len(r.Answer) != 1 {
				t.Fatalf("dig %s with a refusing shard: %s %v", name, r.Status, r.Answer)
			}
		}
	}
}
