package transport_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/transport"
)

// shutdown runs srv.Shutdown with a context that ends after wait, and
// fails the test if it has not returned within hangBound after that.
func shutdown(t *testing.T, srv *transport.Server, wait time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(wait + hangBound):
		t.Fatalf("Shutdown did not return %v after its context ended", hangBound)
		return nil
	}
}

// sendHeld sends a query for label over TCP and UDP and waits until both
// reach the handler.
func sendHeld(t *testing.T, e *env, label string) (*net.TCPConn, *net.UDPConn) {
	t.Helper()
	c := dialTCP(t, e.tcp)
	send(t, c, framed(query(t, label, 1)))
	u := dialUDP(t, e.udp)
	if _, err := u.Write(query(t, label, 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both queries to reach the handler", func() bool { return e.h.running.Load() == 2 })
	return c, u
}

// Shutdown waits for the queries in flight, and their replies still go
// out; then new queries are not served.
func TestShutdownWaitsForQueriesInFlight(t *testing.T) {
	h := newHandler()
	release := h.hold("wait")
	e := start(t, h, transport.Config{})
	c, u := sendHeld(t, e, "wait")
	go func() {
		time.Sleep(300 * time.Millisecond)
		release()
	}()
	if err := shutdown(t, e.srv, hangBound); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if r, f, x := h.running.Load(), h.finished.Load(), h.canceled.Load(); r != 0 || f != 2 || x != 0 {
		t.Errorf("after Shutdown: %d calls running, %d finished, %d canceled; want 0, 2, 0", r, f, x)
	}
	if id := readReply(t, c); id != 1 {
		t.Errorf("TCP reply ID %d, want 1", id)
	}
	expectClosed(t, c)
	if b := readDatagram(u, hangBound); b == nil {
		t.Error("the UDP query in flight at Shutdown got no reply")
	} else if id := replyID(t, b); id != 2 {
		t.Errorf("UDP reply ID %d, want 2", id)
	}
	if _, err := net.DialTimeout("tcp", e.tcp, time.Second); err == nil {
		t.Error("TCP still accepts after Shutdown")
	}
}

// Queries still in flight when Shutdown's context ends are canceled
// through the handler's context, and Shutdown returns the context's error.
func TestShutdownCancelsAtDeadline(t *testing.T) {
	h := newHandler()
	h.hold("stuck") // never released: only the server's context ends it
	e := start(t, h, transport.Config{})
	c, _ := sendHeld(t, e, "stuck")
	err := shutdown(t, e.srv, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline error", err)
	}
	if r, x := h.running.Load(), h.canceled.Load(); r != 0 || x != 2 {
		t.Errorf("after Shutdown: %d calls running, %d canceled; want 0, 2", r, x)
	}
	expectClosed(t, c)
}

// Connections accepted while Shutdown runs are closed too: Shutdown does
// not wait for their idle timeout.
func TestShutdownWhileClientsConnect(t *testing.T) {
	for range 20 {
		h := newHandler()
		e := start(t, h, transport.Config{TCPIdleTimeout: time.Minute})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var conns []net.Conn
		for range 4 {
			wg.Go(func() {
				for i := 0; i < 500; i++ {
					select {
					case <-stop:
						return
					default:
					}
					c, err := net.DialTimeout("tcp", e.tcp, time.Second)
					if err != nil {
						continue
					}
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
			})
		}
		waitFor(t, "clients to connect", func() bool { return e.metric(t, "shardns_dns_tcp_connections") >= 8 })
		err := shutdown(t, e.srv, hangBound)
		close(stop)
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
		if err != nil {
			t.Fatalf("Shutdown: %v (it waited for a connection it did not close)", err)
		}
	}
}
