package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// journal records what the parts did, in order.
type journal struct {
	mu  sync.Mutex
	got []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.got = append(j.got, s)
	j.mu.Unlock()
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.got)
}

// part is a Part with every stage, each noting itself in j; its loop
// notes when its context ends and returns.
func (j *journal) part(name string) Part {
	return Part{
		Run: func(ctx context.Context) error {
			<-ctx.Done()
			j.add(name + " loop ends")
			return nil
		},
		Drain: func(context.Context) error { j.add(name + " drain"); return nil },
		Close: func() error { j.add(name + " close"); return nil },
	}
}

// Parts stop newest first, each drained, then its loop ended, then closed.
func TestStopOrder(t *testing.T) {
	j := &journal{}
	g := New(t.Context(), nil)
	for _, name := range []string{"a", "b", "c"} {
		if err := g.Add(name, j.part(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.OnClose("d", func() error { j.add("d close"); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := j.list(); len(got) != 0 {
		t.Fatalf("before Stop: %v", got)
	}
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"d close",
		"c drain", "c loop ends", "c close",
		"b drain", "b loop ends", "b close",
		"a drain", "a loop ends", "a close",
	}
	if got := j.list(); !slices.Equal(got, want) {
		t.Errorf("stop order:\n got %v\nwant %v", got, want)
	}
	// A second Stop changes nothing and reports the same.
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := j.list(); len(got) != len(want) {
		t.Errorf("second Stop ran stages again: %v", got)
	}
}

// A loop's context is not the one the group was made from: the group
// cancels it, not the caller.
func TestLoopContextIsTheGroups(t *testing.T) {
	type key struct{}
	parent, cancelParent := context.WithCancel(context.WithValue(t.Context(), key{}, "v"))
	g := New(parent, nil)
	got := make(chan any, 1)
	ended := make(chan struct{})
	g.Go("loop", func(ctx context.Context) {
		got <- ctx.Value(key{})
		<-ctx.Done()
		close(ended)
	})
	if v := <-got; v != "v" {
		t.Errorf("loop's context value %v, want the parent's", v)
	}
	cancelParent()
	select {
	case <-ended:
		t.Fatal("the loop ended with the parent context; the group should end it")
	case <-time.After(50 * time.Millisecond):
	}
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-ended
}

// A drain that does not finish is cut off at the deadline: the part is
// still closed, and the cut is logged with the part's name, not returned
// (the bound did its job). A drain that fails otherwise is an error.
func TestDrainBounded(t *testing.T) {
	var logs strings.Builder
	g := New(t.Context(), slog.New(slog.NewTextHandler(&logs, nil)))
	closed := false
	g.Add("broken server", Part{Drain: func(context.Context) error { return errors.New("listener gone") }})
	g.Add("slow server", Part{
		Drain: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		Close: func() error { closed = true; return nil },
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := g.Stop(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Stop took %v with a 100ms deadline", took)
	}
	if err == nil || !strings.Contains(err.Error(), "drain broken server: listener gone") || strings.Contains(err.Error(), "slow server") {
		t.Errorf("Stop: %v, want the broken drain only", err)
	}
	if !closed {
		t.Error("the part was not closed after its drain timed out")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), `part="slow server"`) {
		t.Errorf("the cut drain was not logged:\n%s", logs.String())
	}
}

// A loop that ignores its context is reported after the grace, and Stop
// still returns and closes the rest.
func TestStuckLoopReported(t *testing.T) {
	g := New(t.Context(), nil)
	release := make(chan struct{})
	ended := make(chan struct{})
	closedFirst := false
	g.OnClose("first", func() error { closedFirst = true; return nil })
	g.Go("stuck", func(context.Context) { <-release; close(ended) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	err := g.Stop(ctx)
	close(release)
	<-ended
	if err == nil || !strings.Contains(err.Error(), "stuck still running") {
		t.Errorf("Stop: %v, want the stuck loop named", err)
	}
	if !closedFirst {
		t.Error("the part before the stuck one was not closed")
	}
}

// A loop failing before the stop fails the group; Run then stops every
// part and returns the failure once.
func TestRunStopsOnFailure(t *testing.T) {
	j := &journal{}
	boom := errors.New("boom")
	err := Run(t.Context(), "testd", nil, time.Second, func(g *Group) error {
		g.Add("a", j.part("a"))
		g.Add("server", Part{Run: func(context.Context) error { return boom }})
		g.Add("b", j.part("b"))
		return nil
	}, nil)
	if !errors.Is(err, boom) || strings.Count(err.Error(), "boom") != 1 {
		t.Errorf("Run: %v, want boom once", err)
	}
	want := []string{"b drain", "b loop ends", "b close", "a drain", "a loop ends", "a close"}
	if got := j.list(); !slices.Equal(got, want) {
		t.Errorf("after the failure:\n got %v\nwant %v", got, want)
	}
}

// When start fails, what it added is stopped and its error returned.
func TestRunStartFails(t *testing.T) {
	j := &journal{}
	bad := errors.New("bad flag")
	err := Run(t.Context(), "testd", nil, time.Second, func(g *Group) error {
		g.Add("a", j.part("a"))
		return bad
	}, func() { t.Error("ready called after start failed") })
	if !errors.Is(err, bad) {
		t.Errorf("Run: %v, want %v", err, bad)
	}
	if want := []string{"a drain", "a loop ends", "a close"}; !slices.Equal(j.list(), want) {
		t.Errorf("got %v, want %v", j.list(), want)
	}
}

// Run returns nil once ctx ends and everything stopped cleanly; loops that
// end with context.Canceled count as clean.
func TestRunCleanStop(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, "testd", nil, time.Second, func(g *Group) error {
			g.Add("a", j.part("a"))
			g.Add("ctx loop", Part{Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
			close(started)
			return nil
		}, func() {
			select {
			case <-started: // ready comes once start has returned
			default:
				t.Error("ready called before start returned")
			}
			close(ready)
		})
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("ready not called after start returned")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := []string{"a drain", "a loop ends", "a close"}; !slices.Equal(j.list(), want) {
		t.Errorf("got %v, want %v", j.list(), want)
	}
}

// Errors of every stage are returned, each naming its part.
func TestStopErrors(t *testing.T) {
	g := New(t.Context(), nil)
	g.Add("x", Part{
		Run:   func(ctx context.Context) error { <-ctx.Done(); return errors.New("flush lost") },
		Close: func() error { return errors.New("close failed") },
	})
	err := g.Stop(t.Context())
	for _, want := range []string{"x: flush lost", "close x: close failed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Stop: %v, want it to contain %q", err, want)
		}
	}
}

// A part added while (or after) the group stops is closed at once.
func TestAddAfterStop(t *testing.T) {
	g := New(t.Context(), nil)
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	closed, ran := false, false
	err := g.Add("late", Part{
		Run:   func(context.Context) error { ran = true; return nil },
		Close: func() error { closed = true; return nil },
	})
	if !errors.Is(err, ErrStopped) || !closed || ran {
		t.Errorf("Add after Stop: err %v, closed %v, ran %v", err, closed, ran)
	}
}

// Concurrent Stops all wait for the one stop and agree.
func TestConcurrentStop(t *testing.T) {
	g := New(t.Context(), nil)
	var closes int
	g.Add("x", Part{
		Run:   func(ctx context.Context) error { <-ctx.Done(); time.Sleep(20 * time.Millisecond); return nil },
		Close: func() error { closes++; return errors.New("once") },
	})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = g.Stop(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if fmt.Sprint(err) != fmt.Sprint(errs[0]) || err == nil {
			t.Errorf("Stop %d: %v, Stop 0: %v", i, err, errs[0])
		}
	}
	if closes != 1 {
		t.Errorf("closed %d times", closes)
	}
}
