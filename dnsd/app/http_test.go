package app

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/procs"
)

// dnsd serves HTTP on DefaultHTTP unless -http says otherwise, and -http
// ” serves none.
func TestHTTPDefault(t *testing.T) {
	var cfg Config
	procs.Parse(t, &cfg)
	if cfg.HTTP != DefaultHTTP || DefaultHTTP != "127.0.0.1:8080" {
		t.Errorf("-http defaults to %q, want %q", cfg.HTTP, "127.0.0.1:8080")
	}
	cfg = Config{}
	procs.Parse(t, &cfg, "-http", "")
	if cfg.HTTP != "" {
		t.Errorf("-http '' left %q", cfg.HTTP)
	}
}

// A -http address already in use stops dnsd at start with an error that
// names the flag and says how to change it.
func TestHTTPBusyAddressFails(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var cfg Config
	procs.Parse(t, &cfg, "-listen", "127.0.0.1:0", "-upstream", upstream(t), "-l1", "100",
		"-http", busy.Addr().String(), "-token", "test-token", "-drain-timeout", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = Run(ctx, cfg, slog.New(slog.DiscardHandler))
	if ctx.Err() != nil {
		t.Fatal("Run did not return with the -http address busy")
	}
	if err == nil {
		t.Fatal("Run started with the -http address busy")
	}
	for _, want := range []string{"-http " + busy.Addr().String(), "address already in use", "'' to serve none"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
