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

// Server is where an nsd serves and keeps its state.
type Server struct {
	Addr string // IP address to serve on; "" is 127.0.0.1
	Port int
	Dir  string // its pid, zone list, transfer state and log
	// Control is the Unix socket nsd-control reaches it on (for its
	// query counts); "" turns remote control off.
	Control string
}

// Config returns an nsd.conf serving zones on 127.0.0.1:port; see
// Server.Config.
func Config(port int, dir string, zones ...Zone) string {
	return Server{Port: port, Dir: dir}.Config(zones...)
}

// Config returns an nsd.conf serving zones on s.Addr:s.Port (UDP and TCP,
// no IPv6), one server process, with its state and log kept in s.Dir,
// and response rate limiting off (a load generator, a test on one address
// or a resolver retrying would trip it).
func (s Server) Config(zones ...Zone) string {
	addr := s.Addr
	if addr == "" {
		addr = "127.0.0.1"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  ip-address: %s@%d
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
`, addr, s.Port, s.Port, s.Dir, filepath.Join(s.Dir, "nsd.pid"), filepath.Join(s.Dir, "zone.list"),
		filepath.Join(s.Dir, "xfrd.state"), s.Dir, LogPath(s.Dir))
	if s.Control == "" {
		b.WriteString("remote-control:\n  control-enable: no\n")
	} else {
		fmt.Fprintf(&b, "remote-control:\n  control-enable: yes\n  control-interface: %q\n", s.Control)
	}
	for _, z := range zones {
		fmt.Fprintf(&b, "zone:\n  name: %q\n  zonefile: %q\n", z.Name, z.File)
	}
	return b.String()
}

// LogPath is where nsd run with Config(_, dir, ...) writes its log.
func LogPath(dir string) string { return filepath.Join(dir, "nsd.log") }
