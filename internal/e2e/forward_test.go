package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
)

// forwardZone is a zone file for origin with www at addr.
func forwardZone(origin, addr string) string {
	return "$ORIGIN " + origin + ".\n$TTL 300\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A " + addr + "\n"
}

// TestForwardPerZone runs per-zone forwarding through the real binaries,
// the all-in-one dnsd and resolverd behind a dnsd, against two NSDs: one
// serves corp.example and its sub-zone lab.corp.example, the other
// example.org and, as a decoy, corp.example with other data. -forward
// sends corp.example to the first over UDP, lab.corp.example to the first
// over TCP (a group of its own), and the rest, ".", to the second. A local
// zone answers first. Local answers carry AA, from the resolver and from
// the cache alike; forwarded answers never do, though NSD set it.
func TestForwardPerZone(t *testing.T) {
	corp := nsdtest.Start(t, map[string]string{
		"corp.example":     forwardZone("corp.example", "10.1.0.1"),
		"lab.corp.example": forwardZone("lab.corp.example", "10.2.0.1"),
	})
	public := nsdtest.Start(t, map[string]string{
		"example.org":  forwardZone("example.org", "192.0.2.80"),
		"corp.example": forwardZone("corp.example", "203.0.113.1"),
	})
	zones := t.TempDir()
	if err := os.WriteFile(filepath.Join(zones, "local.corp.example.zone"), []byte(forwardZone("local.corp.example", "10.9.0.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := "corp.example=" + corp.Addr + "; lab.corp.example=tcp://" + corp.Addr + ";.=" + public.Addr
	resolving := []string{"-forward", spec, "-zones", zones}

	setups := map[string]func(t *testing.T) (dnsAddr, metrics string){
		"all-in-one": func(t *testing.T) (string, string) {
			dnsAddr, metrics := port(t), port(t)
			d := start(t, "dnsd", nil, append([]string{"-listen", dnsAddr, "-metrics", metrics, "-http", ""}, resolving...)...)
			waitDNS(t, d, dnsAddr, "corp.example.")
			return dnsAddr, metrics
		},
		"resolverd": func(t *testing.T) (string, string) {
			grpcAddr, metrics := port(t), port(t)
			r := start(t, "resolverd", nil, append([]string{"-listen", grpcAddr, "-metrics", metrics}, resolving...)...)
			waitTCP(t, r, grpcAddr)
			dnsAddr := port(t)
			d := start(t, "dnsd", nil, "-listen", dnsAddr, "-resolver", grpcAddr, "-http", "")
			waitDNS(t, d, dnsAddr, "corp.example.")
			return dnsAddr, metrics
		},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			dnsAddr, metrics := setup(t)
			for _, tc := range []struct {
				name, want string
				aa         bool
			}{
				{"www.corp.example", "10.1.0.1", false},
				{"www.lab.corp.example", "10.2.0.1", false},
				{"www.example.org", "192.0.2.80", false},
				{"www.local.corp.example", "10.9.0.1", true},
			} {
				// The first dig is a miss, the second a cache hit.
				for i := range 2 {
					got := dig(t, dnsAddr, tc.name, "A")
					if got.Status != "NOERROR" || !slices.Equal(rdata(got.Answer), []string{tc.want}) {
						t.Errorf("%s (dig %d): %s %v, want %s", tc.name, i+1, got.Status, got.Answer, tc.want)
					}
					if got.Flags["aa"] != tc.aa {
						t.Errorf("%s (dig %d): flags %v, want aa %v", tc.name, i+1, got.Flags, tc.aa)
					}
				}
			}
			nx := dig(t, dnsAddr, "nope.local.corp.example", "A")
			if nx.Status != "NXDOMAIN" || !nx.Flags["aa"] {
				t.Errorf("NXDOMAIN from the local zone: %s %v, want NXDOMAIN with aa", nx.Status, nx.Flags)
			}
			for upstream, group := range map[string]string{
				"udp://" + corp.Addr:   "corp.example.",
				"tcp://" + corp.Addr:   "lab.corp.example.",
				"udp://" + public.Addr: ".",
			} {
				series := `shardns_upstream_healthy{group="` + group + `",upstream="` + upstream + `"}`
				if v := metric(t, metrics, series); v != 1 {
					t.Errorf("%s = %v, want 1", series, v)
				}
			}
		})
	}
}

// TestForwardRefusesBadSpecs: a -forward that does not parse, or a
// default group given by both -upstream and -forward, stops dnsd at start
// with an error that names the flag and the fault.
func TestForwardRefusesBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-forward", "corp.example=10.0.0.1:53;corp.example=10.0.0.2:53"}, "-forward: forward: entry 2: zone corp.example. is already given in entry 1"},
		{[]string{"-forward", "corp.example="}, "zone corp.example. has no upstreams"},
		{[]string{"-forward", ".=127.0.0.1:53", "-upstream", "127.0.0.2:53"}, "the default upstreams are given twice"},
	} {
		d := start(t, "dnsd", nil, append([]string{"-listen", port(t), "-http", ""}, tc.args...)...)
		select {
		case <-d.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("%v: dnsd did not stop", tc.args)
		}
		if d.Err() == nil || !strings.Contains(d.Out.String(), tc.want) {
			t.Errorf("%v: exit %v, log:\n%s\nwant it to say %q", tc.args, d.Err(), d.Out.String(), tc.want)
		}
	}
}
