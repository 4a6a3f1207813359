package frontend

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
	"github.com/shardns/shardns/internal/redisopt"
	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/logbuf"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// answerAll is a resolver that answers every A question with 192.0.2.1.
type answerAll struct{}

func (answerAll) answer(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}}
	return m, nil
}

// TestBuildWithRedisAuth builds a frontend from the security flags: the
// shards' password from a file, the queue's ACL user and TLS from its own
// flags and its password from the environment. One shard has another
// password: it is logged at start by address and reason, and its names
// are misses answered by the resolver, never errors; the other shard
// serves hits.
func TestBuildWithRedisAuth(t *testing.T) {
	ca := redistest.NewCA(t, "queue")
	good := redistest.StartSecure(t, redistest.Security{Password: "shard-pw"})
	bad := redistest.StartSecure(t, redistest.Security{Password: "not-ours"})
	qsrv := redistest.StartSecure(t, redistest.Security{User: "worker", UserPassword: "queue-pw", TLS: ca})
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte("shard-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{redisopt.QueuePasswordEnv: "queue-pw"}
	var f Flags
	f.Redis, f.RedisTimeout = good.Addr+","+bad.Addr, time.Second
	f.MaxTTL, f.Stale, f.QueueRedis, f.Queue = time.Hour, time.Hour, qsrv.Addr, "warm"
	f.RedisAuth = redisopt.Flags{
		PasswordFile: pwFile,
		QueueUser:    redisopt.String{Value: "worker", Given: true},
		QueueTLS:     redisopt.Bool{Value: true, Given: true},
		QueueTLSCA:   redisopt.String{Value: ca.CertFile, Given: true},
		Getenv:       func(k string) string { return env[k] },
	}
	var logs logbuf.Buffer
	fe, err := Build(f, dnstest.MsgResolver(answerAll{}.answer), prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()

	log := logs.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "addr="+bad.Addr) || !strings.Contains(log, "wrong user or password") {
		t.Errorf("no error naming the refusing shard %s and why:\n%s", bad.Addr, log)
	}
	if strings.Contains(log, good.Addr) || strings.Contains(log, qsrv.Addr) {
		t.Errorf("a server that takes our settings was logged:\n%s", log)
	}
	if _, err := fe.Queue.Counts(t.Context()); err != nil {
		t.Errorf("the queue over ACL and TLS: %v", err)
	}

	// Where each name goes, read at once: after three failed heartbeats
	// (0.75 s) the Ring drops the refusing shard and its names move.
	ctx := t.Context()
	names := make([]string, 40)
	shards := make([]string, len(names))
	onGood, onBad := 0, 0
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example.", i)
		shards[i] = fe.Shard(ctx, "dns:{"+names[i]+"}:A:IN")
		if shards[i] == bad.Addr {
			onBad++
		} else {
			onGood++
		}
	}
	if onGood == 0 || onBad == 0 {
		t.Fatalf("%d names on the good shard, %d on the refusing one: the test needs both", onGood, onBad)
	}
	for i, name := range names {
		shard := shards[i]
		for pass := range 2 {
			msg := new(dns.Msg)
			msg.SetQuestion(name, dns.TypeA)
			q, rej := dnsmsg.ParseQuery(msg)
			if rej != nil {
				t.Fatalf("%s: rejected %+v", name, rej)
			}
			res, err := fe.Chain.Lookup(ctx, &q)
			if err != nil {
				t.Fatalf("%s (on %s), lookup %d: %v", name, shard, pass, err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(res.Entry.Msg); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("%s: %v %v", name, r, err)
			}
			// L1 is off: a name on the good shard is a Redis hit the
			// second time.
			if pass == 1 && shard == good.Addr && res.Source != lookup.SourceRedis {
				t.Errorf("%s on %s: second answer from %s, want redis", name, shard, res.Source)
			}
		}
	}
}
