package app

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/frontend"
	"github.com/shardns/shardns/resolverd/resolve"
)

// TestReloadResolverFlushesLocalZones edits a local zone and reloads the
// in-process resolver under a frontend whose L1 holds the zone's answer:
// a bare Reload leaves the cached answer served; ReloadResolver drops it,
// so the next lookup gets the edited data, with AA. A reload that fails
// changes nothing.
func TestReloadResolverFlushesLocalZones(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "local.test.zone")
	write := func(addr string) {
		t.Helper()
		zone := "$ORIGIN local.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 127.0.0.1\nwww A " + addr + "\n"
		if err := os.WriteFile(file, []byte(zone), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("192.0.2.1")
	cfg := Config{Resolving: config.Resolving{Zones: dir}, ResolvConf: filepath.Join(dir, "none")}
	rcfg, err := InProcessConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := resolve.Open(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	f := frontend.Flags{L1: 1000, L1Bytes: 1 << 20}
	f.MaxTTL = time.Hour
	fe, err := frontend.Build(f, res, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	m := new(dns.Msg)
	m.SetQuestion("www.local.test.", dns.TypeA)
	q, _ := dnsmsg.ParseQuery(m)
	lookup := func() (addr, source string, aa bool) {
		t.Helper()
		r, err := fe.Chain.Lookup(t.Context(), &q)
		if err != nil {
			t.Fatal(err)
		}
		a := new(dns.Msg)
		if err := a.Unpack(r.Stored().Msg); err != nil || len(a.Answer) != 1 {
			t.Fatalf("stored answer %v: %v", a, err)
		}
		return a.Answer[0].(*dns.A).A.String(), string(r.Source), a.Authoritative
	}
	lookup()
	if addr, src, aa := lookup(); addr != "192.0.2.1" || src != "l1" || !aa {
		t.Fatalf("second lookup: %s from %s, AA %v; want 192.0.2.1 from l1 with AA", addr, src, aa)
	}

	write("192.0.2.2")
	if err := res.Reload(rcfg); err != nil {
		t.Fatal(err)
	}
	if addr, src, _ := lookup(); addr != "192.0.2.1" || src != "l1" {
		t.Fatalf("after a bare Reload: %s from %s; want the cached 192.0.2.1 (what the flush is for)", addr, src)
	}
	write("192.0.2.3")
	if err := ReloadResolver(t.Context(), res, fe, cfg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if addr, src, aa := lookup(); addr != "192.0.2.3" || src == "l1" || !aa {
		t.Errorf("after ReloadResolver: %s from %s, AA %v; want the edited 192.0.2.3 from the resolver, with AA", addr, src, aa)
	}

	if err := os.WriteFile(file, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = ReloadResolver(t.Context(), res, fe, cfg, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "local.test.zone") {
		t.Errorf("reload of a broken zone: %v", err)
	}
	if addr, _, _ := lookup(); addr != "192.0.2.3" {
		t.Errorf("after a failed reload: %s, want 192.0.2.3 still", addr)
	}
}
