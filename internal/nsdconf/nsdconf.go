// Package nsdconf writes nsd.conf files for Debian's nsd run as an
// unprivileged loopback authoritative server: in tests (internal/testutil/
// nsdtest) and as the authoritative peer of the load runs (bench/peers).
package nsdconf

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Zone is one zone nsd serves.
type Zone struct {
	Name string // origin, fully qualified ("." for the root)
	File string // zone file, absolute or relative to the configuration's dir
}

// Config returns an nsd.conf serving zones on 127.0.0.1:port (UDP and
// TCP, no IPv6), one server process, with its pid, zone list, transfer
// state and log kept in dir, and response rate limiting off (a load
// generator or a test on one address would trip it).
func Config(port int, dir string, zones ...Zone) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  ip-address: 127.0.0.1@%d
  port: %d
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: %q
  pidfile: %q
  database: ""
  zonelistfile: %q
  xfrdfile: %q
  xfrdir: %q
  logfile: %q
  server-count: 1
  tcp-count: 200
  verbosity: 1
  hide-version: yes
  reuseport: no
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
`, port, port, dir, filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "zone.list"),
		filepath.Join(dir, "xfrd.state"), dir, LogPath(dir))
	for _, z := range zones {
		fmt.Fprintf(&b, "zone:\n  name: %q\n  zonefile: %q\n", z.Name, z.File)
	}
	return b.String()
}

// LogPath is where nsd run with Config(_, dir, ...) writes its log.
func LogPath(dir string) string { return filepath.Join(dir, "nsd.log") }
