package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/cacheapi/stats"
	"github.com/shardns/shardns/internal/testutil/dnstest"
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

// dnsd all-in-one without Redis serves /stats describing its own cache
// and lookups, and the status page, on its -http address (read with
// curl, as an operator would).
func TestStatsInProcess(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	var cfg Config
	procs.Parse(t, &cfg, "-listen", "127.0.0.1:0", "-upstream", upstream(t), "-zones", dnstest.ExampleZones(t),
		"-http", "127.0.0.1:0", "-token", "test-token", "-drain-timeout", "1s")
	addr, logs, stop := procs.RunInProcess(t, "dnsd", boundUDP, func(ctx context.Context, log *slog.Logger) error {
		return Run(ctx, cfg, log)
	})
	defer stop()
	c := &dns.Client{Timeout: 5 * time.Second}
	for range 3 { // a miss, then hits
		for _, name := range []string{"up.test.", "www.example.test."} {
			if _, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := httpAddr.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no HTTP address logged:\n%s", logs)
	}
	get := func(path string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, "-sS", "--fail-with-body", "http://"+m[1]+path).Output()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", path, err, out)
		}
		return out
	}
	var st stats.Response
	if err := json.Unmarshal(get("/stats"), &st); err != nil {
		t.Fatal(err)
	}
	p := st.Process
	if p == nil || p.Kind != "dnsd" || p.Queries != 6 || p.L1Hits != 4 || p.Misses != 2 || p.HitRatio == nil ||
		p.L1 == nil || p.L1.Entries != 2 || p.L1.Bytes <= 0 || p.L1.MaxEntries != 100000 || p.QPS <= 0 || p.P99Ms <= 0 {
		t.Errorf("/stats process: %+v (L1 %+v)", p, p.L1)
	}
	if len(st.Shards) != 0 || len(st.Frontends) != 0 {
		t.Errorf("/stats without Redis lists shards %v, frontends %v", st.Shards, st.Frontends)
	}
	if page := get("/"); !strings.Contains(string(page), `id="process"`) {
		t.Errorf("GET / is not the status page:\n%.300s", page)
	}
}
