package deploy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/shardns/shardns/internal/testutil/freeport"
)

// TestComposeHealthchecksOnRealDaemons runs each healthcheck of
// docker-compose.yml, moved to the test's loopback ports, against the real
// daemons: healthy while they serve, unhealthy once they stopped.
func TestComposeHealthchecksOnRealDaemons(t *testing.T) {
	probes := map[string][]string{} // daemon → healthcheck argv
	for _, s := range loadCompose(t, nil, nil).Services {
		if d := daemonOf(s); d != "" && s.HealthCheck != nil {
			probes[d] = s.HealthCheck.Test[2:]
		}
	}
	port := func() string {
		p, err := freeport.UDPTCP()
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(p)
	}
	ports := map[string]string{"resolverd": port(), "dnsd": port(), "cacheapi": port()}
	resolver := net.JoinHostPort("127.0.0.1", ports["resolverd"])
	args := map[string][]string{
		"resolverd": {"-listen", resolver, "-zones", testZones(t), "-workers", "0"},
		"dnsd":      {"-listen", "127.0.0.1:" + ports["dnsd"], "-resolver", resolver},
		"cacheapi":  {"-listen", "127.0.0.1:" + ports["cacheapi"], "-resolver", resolver},
	}
	running := map[string]*daemon{}
	for _, d := range daemons {
		if probes[d] == nil {
			t.Fatalf("docker-compose.yml has no healthcheck for %s", d)
		}
		running[d] = startDaemon(t, d, args[d]...)
	}
	for _, d := range daemons {
		argv := moveProbe(t, probes[d], ports[d])
		waitFor(t, running[d], "healthy "+strings.Join(argv, " "), func() error {
			if code, out := runProbe(t, argv...); code != 0 {
				return fmt.Errorf("exit %d: %s", code, out)
			}
			return nil
		})
	}
	// cacheapi and dnsd first: resolverd's probe then sees its own state.
	for _, d := range []string{"cacheapi", "dnsd", "resolverd"} {
		running[d].Stop(t)
		argv := moveProbe(t, probes[d], ports[d])
		if code, out := runProbe(t, argv...); code != 1 {
			t.Errorf("%s stopped: healthcheck %v exit %d, want 1: %s", d, argv, code, out)
		}
	}
}

// moveProbe rewrites a probe's 127.0.0.1:<port> to the test's port.
func moveProbe(t *testing.T, argv []string, port string) []string {
	t.Helper()
	out := make([]string, len(argv))
	moved := false
	for i, a := range argv {
		if j := strings.Index(a, "127.0.0.1:"); j >= 0 {
			rest := a[j+len("127.0.0.1:"):]
			k := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
			if k < 0 {
				k = len(rest)
			}
			a = a[:j] + "127.0.0.1:" + port + rest[k:]
			moved = true
		}
		out[i] = a
	}
	if !moved {
		t.Fatalf("probe %v names no 127.0.0.1 port", argv)
	}
	return out
}
