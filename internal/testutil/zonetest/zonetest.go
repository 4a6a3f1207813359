// Package zonetest loads zone files a test writes, and builds resolverd's
// resolver over them, for tests that need real answers from a zone.
package zonetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shardns/shardns/resolverd/resolve"
	"github.com/shardns/shardns/resolverd/zones"
)

// Load writes text (a zone file in RFC 1035 syntax) as file in a fresh
// temporary folder and loads the folder.
func Load(t testing.TB, file, text string) *zones.Authority {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	auth, err := zones.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

// Resolver is resolverd's resolver over the zone Load makes of file and
// text, forwarding other names to fwd when it is not nil.
func Resolver(t testing.TB, fwd resolve.Forwarder, file, text string) *resolve.Resolver {
	t.Helper()
	res, err := resolve.New(Load(t, file, text), fwd)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
