package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestResolverdZonesWithNoUpstream runs the stack with no upstream at all:
// resolverd answers from a zone file, as on a machine with no internet.
func TestResolverdZonesWithNoUpstream(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shardns.test.zone"), []byte(testZone()), 0o644); err != nil {
		t.Fatal(err)
	}
	grpcAddr := port(t)
	r := start(t, "resolverd", nil, "-listen", grpcAddr, "-zones", dir)
	waitTCP(t, r, grpcAddr)
	dnsAddr := port(t)
	d := start(t, "dnsd", nil, "-listen", dnsAddr, "-resolver", grpcAddr)
	waitDNS(t, d, dnsAddr, zoneName)

	if got := dig(t, dnsAddr, "alias1.shardns.test", "A"); !slices.Equal(rdata(got.Answer), []string{"alias2.shardns.test.", "alias3.shardns.test.", "www.shardns.test.", "192.0.2.10"}) {
		t.Errorf("CNAME chain from a local zone: %v", got.Answer)
	}
	if got := dig(t, dnsAddr, "x.spread.shardns.test", "A"); !slices.Equal(rdata(got.Answer), []string{"192.0.2.99"}) {
		t.Errorf("wildcard from a local zone: %v", got.Answer)
	}
	nx := dig(t, dnsAddr, "nope.shardns.test", "A")
	if nx.Status != "NXDOMAIN" || len(nx.Authority) != 1 || nx.Authority[0].Header().Ttl > 60 {
		t.Errorf("NXDOMAIN from a local zone: %s %v", nx.Status, nx.Authority)
	}
	if got := dig(t, dnsAddr, "elsewhere.example", "A"); got.Status != "REFUSED" {
		t.Errorf("name outside every zone with no upstream: %s, want REFUSED", got.Status)
	}
}

// TestCacheapiSharesTheCacheWithDnsd: a name dnsd resolved is a Redis hit
// for cacheapi, in dns-json, fetched with curl.
func TestCacheapiSharesTheCacheWithDnsd(t *testing.T) {
	f := startFleet(t)
	if r := dig(t, f.dns, "www.shardns.test", "A"); r.Status != "NOERROR" {
		t.Fatalf("dig: %s", r.Status)
	}
	var addrs []string
	for _, s := range f.shards {
		addrs = append(addrs, s.Addr)
	}
	httpAddr := port(t)
	api := start(t, "cacheapi", nil, "-listen", httpAddr, "-redis", strings.Join(addrs, ","), "-resolver", f.grpc, "-l1", "0")
	waitTCP(t, api, httpAddr)

	var got struct {
		Status   int
		Source   string
		Question []struct{ Name string }
		Answer   []struct {
			Name, Data string
			TTL        uint32
			Type       uint16
		}
	}
	body := curl(t, "http://"+httpAddr+"/lookup?name=www.shardns.test&type=A")
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	if got.Status != 0 || got.Source != "redis" || len(got.Answer) != 1 || got.Answer[0].Data != "192.0.2.10" || got.Answer[0].TTL > 300 || got.Answer[0].Type != 1 {
		t.Errorf("cacheapi lookup: %+v; want the redis entry dnsd wrote", got)
	}
	miss := curl(t, "http://"+httpAddr+"/lookup?name=mail.shardns.test&type=MX")
	if !strings.Contains(miss, `"Source":"resolver"`) || !strings.Contains(miss, `"Status":0`) {
		t.Errorf("cacheapi miss: %s", miss)
	}
	if bad := curl(t, "http://"+httpAddr+"/lookup?name=a..b"); !strings.Contains(bad, `"error"`) {
		t.Errorf("bad name: %s", bad)
	}

	// /stats shows the four shards and both frontends, which publish their
	// counters to Redis.
	var st struct {
		Shards []struct {
			Addr string `json:"addr"`
			Up   bool   `json:"up"`
		} `json:"shards"`
		Frontends []struct {
			Kind    string `json:"kind"`
			Queries float64
		} `json:"frontends"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		body := curl(t, "http://"+httpAddr+"/stats")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/stats not JSON: %v\n%s", err, body)
		}
		kinds := map[string]bool{}
		for _, f := range st.Frontends {
			kinds[f.Kind] = true
		}
		up := 0
		for _, s := range st.Shards {
			if s.Up {
				up++
			}
		}
		if kinds["dnsd"] && kinds["cacheapi"] && up == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/stats: want 4 shards up and a dnsd and a cacheapi frontend:\n%s", body)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func curl(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl not found (apt-get install curl)")
		}
		t.Skip("curl not found: apt-get install curl")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-sS", "--max-time", "5", url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	return string(out)
}
