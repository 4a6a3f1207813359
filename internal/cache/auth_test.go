package cache

import (
	"crypto/x509"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// TestRingACLUserOverTLS stores and reads entries through a Ring whose
// shard takes only TLS and an ACL user (the default user off), and hears
// an invalidation over the subscriber's own connection, which must log in
// and use TLS the same way.
func TestRingACLUserOverTLS(t *testing.T) {
	ca := redistest.NewCA(t, "ring")
	srv := redistest.StartSecure(t, redistest.Security{User: "app", UserPassword: "secret", TLS: ca})
	r, err := NewRing(RedisConfig{
		Addrs: []string{srv.Addr}, Timeout: slowTimeout,
		Username: "app", Password: "secret", TLS: ca.ClientTLS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	k := key("www.example.com.", "A")
	e := keyed(k, testEntry(time.Now(), 300*time.Second, time.Hour, 100))
	mustSet(t, r, k, e)
	if d := sameEntry(e, mustGet(t, r, k)); d != "" {
		t.Errorf("round trip: %s", d)
	}
	raw, err := srv.Client().Get(t.Context(), k).Bytes()
	if err != nil || string(raw) != string(e.Encode()) {
		t.Errorf("the shard does not hold the entry: %v", err)
	}

	got := make(chan Invalidation, 1)
	sub := r.SubscribeInvalidations(func(inv Invalidation) { got <- inv }, nil)
	defer sub.Close()
	inv := NewInvalidation("example.com.", true)
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// The subscriber may join a moment after SubscribeInvalidations
	// returns: publish until it hears.
	for heard := false; !heard; {
		if err := r.PublishInvalidation(t.Context(), inv); err != nil {
			t.Fatalf("publish: %v", err)
		}
		select {
		case g := <-got:
			if g.ID != inv.ID {
				t.Fatalf("heard %+v, want %+v", g, inv)
			}
			heard = true
		case <-tick.C:
		case <-deadline:
			t.Fatal("no invalidation heard over TLS within 5 s")
		}
	}
}

// TestRingShardThatRefusesUs runs a Ring over two shards, one of which
// has another password: its keys fail quickly (a miss on the query path,
// as for a dead shard), the other shard's keys work.
func TestRingShardThatRefusesUs(t *testing.T) {
	good := redistest.StartSecure(t, redistest.Security{Password: "pw"})
	bad := redistest.StartSecure(t, redistest.Security{Password: "other"})
	r, err := NewRing(RedisConfig{Addrs: []string{good.Addr, bad.Addr}, Timeout: faultTimeout, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var onGood, onBad []string
	for i := 0; len(onGood) < 5 || len(onBad) < 5; i++ {
		k := key("n"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+".example.", "A")
		if shardOf(t, r, k) == good.Addr {
			onGood = append(onGood, k)
		} else {
			onBad = append(onBad, k)
		}
	}
	e := testEntry(time.Now(), 300*time.Second, time.Hour, 64)
	for _, k := range onBad {
		t0 := time.Now()
		err := r.Set(t.Context(), k, keyed(k, e))
		if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("Set on the refusing shard: %v, want WRONGPASS", err)
		}
		_, err = r.Get(t.Context(), k)
		if err == nil || errors.Is(err, ErrMiss) || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Errorf("Get on the refusing shard: %v, want a WRONGPASS error", err)
		}
		if d := time.Since(t0); d > hangBound {
			t.Errorf("Set and Get on the refusing shard took %v", d)
		}
	}
	for _, k := range onGood {
		mustSet(t, r, k, keyed(k, e))
		mustGet(t, r, k)
	}
}

// TestRingUntrustedCertificate reaches a TLS shard with a client that
// trusts another CA: every call fails on the certificate, none hangs.
func TestRingUntrustedCertificate(t *testing.T) {
	srv := redistest.StartSecure(t, redistest.Security{TLS: redistest.NewCA(t, "server")})
	r, err := NewRing(RedisConfig{Addrs: []string{srv.Addr}, Timeout: faultTimeout, TLS: redistest.NewCA(t, "client").ClientTLS()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t0 := time.Now()
	_, err = r.Get(t.Context(), key("a.example.", "A"))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("Get: %v, want an unknown certificate authority", err)
	}
	if d := time.Since(t0); d > hangBound {
		t.Errorf("Get took %v", d)
	}
}

// TestClusterPassword reaches a Redis Cluster whose nodes ask for a
// password (and give it to each other): with it, entries go to and come
// back from the slot's master; without it, nothing does.
func TestClusterPassword(t *testing.T) {
	c := redistest.StartSecureCluster(t, redistest.Security{Password: "cluster-pw"}, 3, 0)
	r, err := NewCluster(RedisConfig{Addrs: c.Addrs()[:1], Timeout: slowTimeout, Password: "cluster-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := testEntry(time.Now(), 300*time.Second, time.Hour, 64)
	keys := []string{key("a.example.", "A"), key("b.example.", "A"), key("c.example.", "AAAA")}
	for _, k := range keys {
		mustSet(t, r, k, keyed(k, e))
		mustGet(t, r, k)
		if n, err := c.MasterOf(k).Client().Exists(t.Context(), k).Result(); err != nil || n != 1 {
			t.Errorf("%s not on its slot's master: %d, %v", k, n, err)
		}
	}

	anon, err := NewCluster(RedisConfig{Addrs: c.Addrs()[:1], Timeout: faultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := anon.Set(t.Context(), keys[0], e); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("Set without the password: %v, want NOAUTH", err)
	}
	if _, err := anon.Get(t.Context(), keys[0]); err == nil || errors.Is(err, ErrMiss) {
		t.Errorf("Get without the password: %v, want an error", err)
	}
}

// TestClusterACLUserOverTLS reaches a Redis Cluster whose nodes take only
// TLS and an ACL user, on the client connections, between each other and
// to their replicas: the slot map's addresses are dialed with TLS and the
// user's login too.
func TestClusterACLUserOverTLS(t *testing.T) {
	ca := redistest.NewCA(t, "cluster")
	c := redistest.StartSecureCluster(t, redistest.Security{User: "app", UserPassword: "secret", TLS: ca}, 3, 0)
	r, err := NewCluster(RedisConfig{
		Addrs: c.Addrs()[:1], Timeout: slowTimeout,
		Username: "app", Password: "secret", TLS: ca.ClientTLS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := testEntry(time.Now(), 300*time.Second, time.Hour, 64)
	masters := map[string]bool{}
	for i := range 12 {
		k := key(string(rune('a'+i))+".example.", "A")
		mustSet(t, r, k, keyed(k, e))
		mustGet(t, r, k)
		masters[c.MasterOf(k).Addr] = true
	}
	if len(masters) != 3 {
		t.Errorf("the keys reached %d masters, want 3", len(masters))
	}
	untrusted, err := NewCluster(RedisConfig{
		Addrs: c.Addrs()[:1], Timeout: faultTimeout,
		Username: "app", Password: "secret", TLS: redistest.NewCA(t, "other").ClientTLS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	var unknown x509.UnknownAuthorityError
	if err := untrusted.Set(t.Context(), key("a.example.", "A"), e); !errors.As(err, &unknown) {
		t.Errorf("Set with an untrusted certificate: %v, want an unknown certificate authority", err)
	}
}

func TestRedisUserNeedsPassword(t *testing.T) {
	for _, open := range []func(RedisConfig) (*Redis, error){NewRing, NewCluster} {
		if r, err := open(RedisConfig{Addrs: []string{"127.0.0.1:1"}, Username: "app"}); err == nil {
			r.Close()
			t.Error("a user without a password was taken")
		}
	}
}

// BenchmarkRingGetSecure reads entries from one shard, batched and with
// many Gets in flight, as the query path does: plain, with a password,
// and with a password over TLS.
func BenchmarkRingGetSecure(b *testing.B) {
	ca := redistest.NewCA(b, "bench")
	now := time.Now()
	keys := make([]string, 256)
	for i := range keys {
		keys[i] = key("b"+strconv.Itoa(i)+".example.", "A")
	}
	for _, bc := range []struct {
		name string
		sec  redistest.Security
		cfg  RedisConfig
	}{
		{"plain", redistest.Security{}, RedisConfig{}},
		{"password", redistest.Security{Password: "pw"}, RedisConfig{Password: "pw"}},
		{"password+TLS", redistest.Security{Password: "pw", TLS: ca}, RedisConfig{Password: "pw", TLS: ca.ClientTLS()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := redistest.StartSecure(b, bc.sec)
			cfg := bc.cfg
			cfg.Addrs, cfg.Timeout = []string{srv.Addr}, slowTimeout
			r := filledRing(b, cfg, keys, now)
			var next atomic.Uint64
			b.SetParallelism(32)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(1) * 7919
				for pb.Next() {
					i++
					if _, err := r.Get(b.Context(), keys[i%uint64(len(keys))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
