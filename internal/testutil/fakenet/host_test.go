package fakenet

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
)

// TestHost checks that a Host turns Fatal and Skip into Do's error, lets
// a Do without failure return nil, and runs the cleanups last first on
// Close, removing its temp dirs.
func TestHost(t *testing.T) {
	h := NewHost(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var order []int
	var dir string
	if err := h.Do(func(tb TB) {
		dir = tb.TempDir()
		tb.Cleanup(func() { order = append(order, 1) })
		tb.Cleanup(func() { order = append(order, 2) })
	}); err != nil {
		t.Fatalf("Do without failure: %v", err)
	}
	if err := h.Do(func(tb TB) { tb.Fatalf("fakenet: broken %d", 7); order = append(order, 9) }); err == nil || err.Error() != "fakenet: broken 7" {
		t.Fatalf("Do with Fatalf: %v", err)
	}
	if err := h.Do(func(tb TB) { tb.Skip("no nsd") }); err == nil || !strings.Contains(err.Error(), "no nsd") {
		t.Fatalf("Do with Skip: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("temp dir gone before Close: %v", err)
	}
	h.Close()
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Fatalf("cleanups ran %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir left after Close: %v", err)
	}
}
