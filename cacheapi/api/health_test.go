package api

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/shardns/shardns/internal/testutil/redistest"
	"github.com/shardns/shardns/resolverd/rpc"
)

// readyz fetches /readyz.
func readyz(t *testing.T, m *member) (int, readiness) {
	t.Helper()
	resp, body := do(t, m.srv, http.MethodGet, "/readyz", nil, nil)
	var r readiness
	if err := json.Unmarshal(body, &r); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/readyz: %v %s", err, body)
	}
	return resp.StatusCode, r
}

func TestReadyzRedis(t *testing.T) {
	shards := redistest.StartN(t, 2)
	m := newFleet(t, shards, 1)[0]
	code, r := readyz(t, m)
	if code != http.StatusOK || r.Status != "ready" || r.Checks["redis"] != "ok" || r.Checks["resolver"] != "ok" {
		t.Errorf("all up: %d %+v", code, r)
	}
	shards[0].Kill()
	waitUntil(t, 10*time.Second, "ready with one shard of two", func() bool {
		code, r = readyz(t, m)
		return code == http.StatusOK
	})
	shards[1].Kill()
	waitUntil(t, 10*time.Second, "not ready with no shard", func() bool {
		code, r = readyz(t, m)
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(r.Error, "redis") || r.Checks["redis"] == "ok" || r.Checks["resolver"] != "ok" {
		t.Errorf("no shard: %+v", r)
	}
	// Lookups still work without Redis (a Redis error is a miss).
	if code, _, body := get(t, m.srv, http.MethodGet, "/lookup?name=www.example.test"); code != http.StatusOK {
		t.Errorf("lookup with every shard down: %d %s", code, body)
	}
	// /healthz says alive regardless.
	if code, _, _ := get(t, m.srv, http.MethodGet, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

// resolverd serves a real resolverd gRPC service (local zone) on loopback
// and returns its address and a func that stops it.
func resolverd(t *testing.T) (string, func()) {
	t.Helper()
	res := newZoneResolver(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rpc.New(res).Register(srv)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { srv.Stop(); wg.Wait() }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func TestReadyzRemoteResolver(t *testing.T) {
	addr, stop := resolverd(t)
	flags := testFlags(nil)
	flags.Resolver = addr
	m := newMember(t, flags, nil, nil)
	waitUntil(t, 10*time.Second, "ready with resolverd up", func() bool {
		code, _ := readyz(t, m)
		return code == http.StatusOK
	})
	_, r := readyz(t, m)
	if _, has := r.Checks["redis"]; has || r.Checks["resolver"] != "ok" {
		t.Errorf("checks %+v, want the resolver only", r.Checks)
	}
	stop()
	var code int
	waitUntil(t, 10*time.Second, "not ready with resolverd stopped", func() bool {
		code, r = readyz(t, m)
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(r.Error, "resolver") || r.Checks["resolver"] == "ok" {
		t.Errorf("resolverd down: %+v", r)
	}
}

func TestReadyzWithoutChecks(t *testing.T) {
	srv := serve(t, New(Config{Chain: newFixture(t, nil).chain}))
	code, _, body := get(t, srv, http.MethodGet, "/readyz")
	if code != http.StatusOK || !strings.Contains(string(body), `"ready"`) {
		t.Errorf("/readyz with nothing to check: %d %s", code, body)
	}
}
