// Package lifecycle runs what a daemon starts in the background and holds
// open, and stops all of it one way: in the reverse order of starting,
// each part is drained (it stops taking new work and finishes what it
// has, up to a deadline), its context is cancelled and its loop waited
// for, and then it is closed. A part only depends on parts started before
// it, so each is stopped while what it uses is still open.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultDrain bounds a daemon's stop when no other bound is given.
const DefaultDrain = 5 * time.Second

// loopGrace is how long a part's loop may take to return once its context
// is cancelled, even when the stop's deadline has passed: a loop's last
// act (a final send of counts, removing a published entry) has its own
// bound of about a second.
const loopGrace = 2 * time.Second

// Part is one thing a daemon runs or holds open. Every field is optional.
type Part struct {
	// Run is a background loop. It starts in its own goroutine when the
	// part is added and must return once its context ends. An error it
	// returns before the group stops fails the group (see Failed).
	Run func(ctx context.Context) error
	// Drain stops taking new work and waits for the work in flight, until
	// ctx ends (a server's graceful shutdown).
	Drain func(ctx context.Context) error
	// Close releases what the part holds, once Run has returned.
	Close func() error
}

// Group is the parts a daemon runs, stopped together by Stop.
type Group struct {
	base context.Context
	log  *slog.Logger

	mu       sync.Mutex
	parts    []*part
	stopping bool
	stopped  chan struct{} // closed when Stop has finished
	stopErr  error

	failOnce sync.Once
	failed   chan struct{}
	failErr  error
}

// part is a started Part.
type part struct {
	name string
	Part
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned (at once without Run)
	err    error         // what Run returned
	failed bool          // err came before the cancel and failed the group
}

// New returns an empty group. Its parts' loops run under contexts derived
// from ctx's values but not from its cancellation: the group cancels each
// part itself, in order, when it stops.
func New(ctx context.Context, log *slog.Logger) *Group {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{
		base:    context.WithoutCancel(ctx),
		log:     log,
		stopped: make(chan struct{}),
		failed:  make(chan struct{}),
	}
}

// ErrStopped is returned by Add once the group is stopping.
var ErrStopped = errors.New("lifecycle: the group is stopping")

// Add starts p (its Run, when it has one) as the group's newest part.
// Once the group is stopping, p is not started: its Close is called at
// once and Add returns ErrStopped.
func (g *Group) Add(name string, p Part) error {
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		if p.Close != nil {
			if err := p.Close(); err != nil {
				return errors.Join(ErrStopped, fmt.Errorf("lifecycle: close %s: %w", name, err))
			}
		}
		return ErrStopped
	}
	pt := &part{name: name, Part: p, done: make(chan struct{})}
	g.parts = append(g.parts, pt)
	if p.Run == nil {
		close(pt.done)
		g.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(g.base)
	pt.cancel = cancel
	g.mu.Unlock()
	go func() {
		defer close(pt.done)
		pt.err = p.Run(ctx)
		if pt.err != nil && ctx.Err() == nil {
			pt.failed = true
			g.fail(fmt.Errorf("lifecycle: %s: %w", name, pt.err))
		}
	}()
	return nil
}

// Go adds a part that is only a loop.
func (g *Group) Go(name string, run func(ctx context.Context)) error {
	return g.Add(name, Part{Run: func(ctx context.Context) error { run(ctx); return nil }})
}

// OnClose adds a part that is only something to close.
func (g *Group) OnClose(name string, close func() error) error {
	return g.Add(name, Part{Close: close})
}

func (g *Group) fail(err error) {
	g.failOnce.Do(func() {
		g.failErr = err
		close(g.failed)
	})
}

// Failed is closed when a part's loop returned an error before the group
// began to stop; Err says which.
func (g *Group) Failed() <-chan struct{} { return g.failed }

// Err is the first loop's error that failed the group, or nil.
func (g *Group) Err() error {
	select {
	case <-g.failed:
		return g.failErr
	default:
		return nil
	}
}

// Stop stops every part, newest first: it drains the part (bounded by
// ctx; a drain cut off at ctx's end is logged at warn level), cancels its loop's context and waits for the loop (until ctx ends,
// and at least a short grace after the cancel), then closes it. A loop
// still running then is reported in the error and left to end on its own.
// Stop returns every error met on the way; later calls wait for the first
// and return the same.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	if g.stopping {
		g.mu.Unlock()
		<-g.stopped
		return g.stopErr
	}
	g.stopping = true
	parts := g.parts
	g.parts = nil
	g.mu.Unlock()

	var errs []error
	for i := len(parts) - 1; i >= 0; i-- {
		if err := parts[i].stop(ctx, g.log); err != nil {
			errs = append(errs, err)
		}
	}
	g.stopErr = errors.Join(errs...)
	close(g.stopped)
	return g.stopErr
}

// stop drains, cancels, waits for and closes one part. A drain cut off by
// ctx's deadline is the bound doing its job: it is logged, not returned.
func (p *part) stop(ctx context.Context, log *slog.Logger) error {
	var errs []error
	if p.Drain != nil {
		err := p.Drain(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			log.Warn("work in flight cut off: the drain deadline passed", "part", p.name, "err", err)
		default:
			errs = append(errs, fmt.Errorf("lifecycle: drain %s: %w", p.name, err))
		}
	}
	if p.cancel != nil {
		p.cancel()
		wait := loopGrace
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) > wait {
			wait = time.Until(dl)
		}
		t := time.NewTimer(wait)
		select {
		case <-p.done:
			if p.err != nil && !p.failed && !errors.Is(p.err, context.Canceled) {
				errs = append(errs, fmt.Errorf("lifecycle: %s: %w", p.name, p.err))
			}
		case <-t.C:
			errs = append(errs, fmt.Errorf("lifecycle: %s still running %v after it was cancelled", p.name, wait))
		}
		t.Stop()
	}
	if p.Close != nil {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("lifecycle: close %s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

// Run is the body of a daemon: start adds the daemon's parts to a new
// group; then Run waits until ctx ends (SIGINT or SIGTERM) or a part's
// loop fails, and stops the group with drain as the bound of the whole
// stop. If start fails, what it had added is stopped and its error
// returned. name prefixes the log lines. ready, when not nil, is called
// once start has returned without error: every part is started and every
// listener open (the daemon tells systemd it is ready there).
func Run(ctx context.Context, name string, log *slog.Logger, drain time.Duration, start func(*Group) error, ready func()) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if drain <= 0 {
		drain = DefaultDrain
	}
	g := New(ctx, log)
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
		defer cancel()
		return g.Stop(sctx)
	}
	if err := start(g); err != nil {
		return errors.Join(err, stop())
	}
	if ready != nil {
		ready()
	}
	var failed error
	select {
	case <-ctx.Done():
		log.Info(name+" shutting down", "drain", drain)
	case <-g.Failed():
		failed = g.Err()
		log.Error(name+" shutting down: a part failed", "err", failed)
	}
	err := errors.Join(failed, stop())
	if err == nil {
		log.Info(name + " stopped")
	}
	return err
}
