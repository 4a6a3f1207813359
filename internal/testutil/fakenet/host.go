package fakenet

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// TB is what Start, Spare and StartUnbound need from their caller: a
// testing.TB, or a Host outside tests.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
}

// Host runs the fake Internet outside a test (a benchmark command): it
// keeps the cleanups that Start, Spare and StartUnbound register, runs
// them on Close, and turns their failures into errors returned by Do.
type Host struct {
	log      *slog.Logger
	mu       sync.Mutex
	cleanups []func()
}

// NewHost returns a Host that logs its failures and cleanups on log.
func NewHost(log *slog.Logger) *Host {
	return &Host{log: log}
}

// hostFailure carries a failure out of f in Do.
type hostFailure struct{ err error }

// Do runs f with h as its TB and returns the failure f reported (Fatal,
// Fatalf, Skip) as an error; what f started before failing keeps running
// until Close. f must call h's methods from its own goroutine only, as a
// test calls Fatal.
func (h *Host) Do(f func(t TB)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			hf, ok := r.(hostFailure)
			if !ok {
				panic(r)
			}
			err = hf.err
		}
	}()
	f(h)
	return nil
}

// Helper does nothing: a Host reports no lines.
func (h *Host) Helper() {}

// Cleanup registers fn to run on Close, the last registered first.
func (h *Host) Cleanup(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, fn)
}

// TempDir makes a folder that Close removes; a failure to make it is a
// failure of Do.
func (h *Host) TempDir() string {
	dir, err := os.MkdirTemp("", "fakenet-")
	if err != nil {
		h.Fatal("fakenet: temp dir: ", err)
	}
	h.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Fatal ends the running Do with its arguments as the error.
func (h *Host) Fatal(args ...any) {
	panic(hostFailure{errors.New(fmt.Sprint(args...))})
}

// Fatalf ends the running Do with the formatted error.
func (h *Host) Fatalf(format string, args ...any) {
	panic(hostFailure{fmt.Errorf(format, args...)})
}

// Skip ends the running Do with its arguments as the error: outside a
// test, a missing tool or privilege is a failure.
func (h *Host) Skip(args ...any) {
	h.log.Warn("fakenet cannot run", "why", fmt.Sprint(args...))
	h.Fatal(args...)
}

// Close runs every registered cleanup, the last registered first.
func (h *Host) Close() {
	h.mu.Lock()
	fns := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
