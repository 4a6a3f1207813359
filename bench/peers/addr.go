package peers

import (
	"fmt"
	"net"
	"strconv"
)

// splitLoopback splits a loopback host:port, refusing any other address:
// every server of a run forwards to loopback only.
func splitLoopback(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("peers: %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", 0, fmt.Errorf("peers: %q is not a loopback address", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("peers: %q: bad port", addr)
	}
	return host, port, nil
}
