package resolverclient_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/proto/resolverv1"
	"github.com/shardns/shardns/resolverd/rpc"
)

// servedResolverd is a resolverd gRPC server a test can stop its own way.
type servedResolverd struct {
	addr string
	srv  *grpc.Server
	hs   *health.Server
	done chan struct{} // closed when Serve returned
}

// startStoppable is startResolverd (plaintext) with the server given back.
func startStoppable(t *testing.T, addr string) *servedResolverd {
	t.Helper()
	return startStoppableWith(t, addr, rpc.ServerOptions()...)
}

// startStoppableWith is startStoppable with the server's options opts.
func startStoppableWith(t testing.TB, addr string, opts ...grpc.ServerOption) *servedResolverd {
	t.Helper()
	res := exampleResolver(t, addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &servedResolverd{addr: ln.Addr().String(), srv: grpc.NewServer(opts...), done: make(chan struct{})}
	s.hs = rpc.New(res).Register(s.srv)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.srv.Stop()
		<-s.done
	})
	return s
}

// askName resolves name A through r and returns the address answered.
func askName(ctx context.Context, r *resolverclient.Client, name string, id uint16) (string, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.Id = id
	m, err := resolveMsg(ctx, r, q)
	if err != nil {
		return "", err
	}
	if m.Id != id || len(m.Answer) != 1 {
		return "", errors.New("unexpected answer: " + m.String())
	}
	return m.Answer[0].(*dns.A).A.String(), nil
}

// TestClientConcurrentQueriesShareStreams sends many queries at once,
// over the one stream each resolverd has: every one gets the answer to
// its own question (its ID), none another's.
func TestClientConcurrentQueriesShareStreams(t *testing.T) {
	checkLeaks(t)
	a := startStoppable(t, "192.0.2.1")
	b := startStoppable(t, "192.0.2.2")
	r := dial(t, a.addr, b.addr)
	const workers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				// Zone names that do not exist answer NXDOMAIN: use www,
				// telling queries apart by their IDs.
				got, err := askName(ctx, r, "www.example.test.", uint16(w*each+i+1))
				cancel()
				if err != nil {
					errs <- err
					return
				}
				if got != "192.0.2.1" && got != "192.0.2.2" {
					errs <- errors.New("answer " + got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestClientDrainingResolverdStopsGracefully checks that a resolverd
// that says NOT_SERVING, as it does when it drains, sees the frontend's
// stream to it end, so its graceful stop completes while the frontend
// lives on and asks the other resolverd.
func TestClientDrainingResolverdStopsGracefully(t *testing.T) {
	checkLeaks(t)
	a := startStoppable(t, "192.0.2.1")
	b := startStoppable(t, "192.0.2.2")
	r := dial(t, a.addr, b.addr)
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := askName(ctx, r, "www.example.test.", uint16(i+1))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		seen[got] = true
	}
	if len(seen) < 2 {
		t.Fatalf("answers from %v, want both resolverds used (each has a stream open)", seen)
	}

	// What resolverd does on SIGTERM: health first, then a graceful stop.
	b.hs.Shutdown()
	stopped := make(chan struct{})
	go func() { b.srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("graceful stop still waiting after 5 s: the frontend's stream to the draining resolverd stayed open")
	}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := askName(ctx, r, "www.example.test.", uint16(1000+i))
		cancel()
		if err != nil || got != "192.0.2.1" {
			t.Fatalf("after b stopped, call %d: %q %v; want a's answer", i, got, err)
		}
	}
}

// TestClientFailsOverWhenAResolverdDies stops one resolverd abruptly: the
// queries that follow are answered by the other.
func TestClientFailsOverWhenAResolverdDies(t *testing.T) {
	checkLeaks(t)
	a := startStoppable(t, "192.0.2.1")
	b := startStoppable(t, "192.0.2.2")
	r := dial(t, a.addr, b.addr)
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := askName(ctx, r, "www.example.test.", uint16(i+1))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	b.srv.Stop()
	<-b.done
	// The stream to b breaks; what was in flight on it fails, as a call
	// would. Within a bounded number of queries every answer is a's.
	run := 0
	for i := 0; i < 200 && run < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := askName(ctx, r, "www.example.test.", uint16(100+i))
		cancel()
		if err == nil && got == "192.0.2.1" {
			run++
			continue
		}
		run = 0
		time.Sleep(10 * time.Millisecond)
	}
	if run < 20 {
		t.Fatal("queries did not settle on the live resolverd")
	}
}

// TestClientCancelledQueryReturns checks that a query whose context ends
// returns at once, and that the stream serves the next query.
func TestClientCancelledQueryReturns(t *testing.T) {
	checkLeaks(t)
	a := startStoppable(t, "192.0.2.1")
	r := dial(t, a.addr)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := askName(ctx, r, "www.example.test.", 1); !errors.Is(err, context.Canceled) && err == nil {
		t.Fatal("a cancelled query answered")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := askName(ctx, r, "www.example.test.", 2); err != nil || got != "192.0.2.1" {
		t.Fatalf("after a cancelled query: %q %v", got, err)
	}
}

// TestClientAsksAServerOfTheGeneratedCodec checks Remote, which writes and
// reads the resolver's messages with package codec, against a server that
// uses gRPC's own proto codec: the bytes are the same.
func TestClientAsksAServerOfTheGeneratedCodec(t *testing.T) {
	checkLeaks(t)
	a := startStoppableWith(t, "192.0.2.9") // no options: gRPC's proto codec
	r := dial(t, a.addr)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := askName(ctx, r, "www.example.test.", uint16(i+1))
		cancel()
		if err != nil || got != "192.0.2.9" {
			t.Fatalf("call %d: %q %v", i, got, err)
		}
	}
}

// unaryOnly is a resolverd from before ResolveStream: Resolve only.
type unaryOnly struct {
	resolverv1.UnimplementedResolverServer
	svc *rpc.Service
}

func (u unaryOnly) Resolve(ctx context.Context, req *resolverv1.ResolveRequest) (*resolverv1.ResolveResponse, error) {
	return u.svc.Resolve(ctx, req)
}

// TestClientAsksAResolverdWithoutStreamsByCalls checks that a resolverd
// that answers ResolveStream Unimplemented is asked by Resolve, the first
// query included.
func TestClientAsksAResolverdWithoutStreamsByCalls(t *testing.T) {
	checkLeaks(t)
	res := exampleResolver(t, "192.0.2.5")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	resolverv1.RegisterResolverServer(srv, unaryOnly{svc: rpc.New(res)})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })

	r := dial(t, ln.Addr().String())
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := askName(ctx, r, "www.example.test.", uint16(i+1))
		cancel()
		if err != nil || got != "192.0.2.5" {
			t.Fatalf("call %d: %q %v; want the answer by Resolve", i, got, err)
		}
	}
}
