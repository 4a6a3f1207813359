package lookup

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

// blockingResolver answers from zoneResolver while open, and once blocked
// holds every call until its context ends.
type blockingResolver struct {
	*zoneResolver
	blocked chan struct{} // closed: calls block
	waiting chan struct{} // a token per call held
}

func (r *blockingResolver) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	select {
	case <-r.blocked:
		r.waiting <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	default:
		return r.zoneResolver.Resolve(ctx, q)
	}
}

// Close cancels the refreshes and the shared resolver calls in flight and
// waits for them: no goroutine of the chain outlives it, and nothing
// starts after it.
func TestCloseEndsRefreshesInFlight(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	const names = 5
	z := &zoneResolver{records: map[string]string{}}
	for i := range names {
		n := "n" + strconv.Itoa(i) + ".test."
		z.records[n] = n + " 100 IN A 192.0.2.1"
	}
	r := &blockingResolver{zoneResolver: z, blocked: make(chan struct{}), waiting: make(chan struct{}, 2*names)}
	h, clk, _ := setup(t, r, 0)
	ctx := context.Background()
	for i := range names {
		if _, err := h.Lookup(ctx, newQuery("n"+strconv.Itoa(i)+".test.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	close(r.blocked)
	clk.Add(95 * time.Second)
	for i := range names {
		for range 2 { // popular and due: a refresh starts
			if _, err := h.Lookup(ctx, newQuery("n"+strconv.Itoa(i)+".test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A client that gives up leaves its shared call running.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := h.Lookup(short, newQuery("gone.test.", dns.TypeA)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("a lookup past its deadline: %v, want ErrTimeout", err)
	}
	for range names + 1 {
		select {
		case <-r.waiting:
		case <-time.After(5 * time.Second):
			t.Fatal("the refreshes did not reach the resolver")
		}
	}
	done := make(chan struct{})
	go func() { h.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with refreshes in flight")
	}
	goleak.VerifyNone(t, opt)

	// After Close nothing starts: a due hit refreshes nothing, and a miss
	// fails without asking the resolver.
	calls := z.calls.Load()
	if _, err := h.Lookup(ctx, newQuery("late.test.", dns.TypeA)); !errors.Is(err, ErrResolver) {
		t.Errorf("a miss after Close: %v, want ErrResolver", err)
	}
	if n := z.calls.Load() - calls; n != 0 || len(r.waiting) != 0 {
		t.Errorf("%d resolver calls after Close", n)
	}
	h.Close() // twice is fine
	goleak.VerifyNone(t, opt)
}
