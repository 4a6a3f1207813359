package e2e

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metric reads one sample from a Prometheus /metrics endpoint; 0 if absent.
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return 0
}

// TestPprofServesProfiles: dnsd -pprof serves Go's profiler, and a CPU
// profile longer than the other listeners' write timeout still arrives
// whole (a gzipped profile).
func TestPprofServesProfiles(t *testing.T) {
	pp := port(t)
	startAllInOne(t, "-pprof", pp)
	c := &http.Client{Timeout: 30 * time.Second}
	for _, tc := range []struct{ path, want string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/cmdline", "-pprof"},
		{"/debug/pprof/profile?seconds=11", "\x1f\x8b"},
	} {
		resp, err := c.Get("http://" + pp + tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: status %d, %d bytes, want 200 with %q", tc.path, resp.StatusCode, len(body), tc.want)
		}
	}
}
