package zones

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const soaLine = "@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n"

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		content string
		line    int
		want    string
	}{
		{"no SOA", "a.example.zone", "\n\nwww 60 IN A 127.0.0.1\n", 3, "no SOA record"},
		{"empty", "a.example.zone", "", 1, "no SOA record"},
		{"syntax", "a.example.zone", soaLine + "www 60 IN A 127.0.0.1\nbad 60 IN A not-an-address\n", 3, "bad A"},
		{"unknown type", "a.example.db", soaLine + "\n\n\nx 60 IN BOGUS foo\n", 5, "a.example.db:5:"},
		{"second SOA", "a.example.zone", soaLine + "www 60 IN A 127.0.0.1\nsub 60 IN SOA ns1 hostmaster 1 2 3 4 5\n", 3, "second SOA"},
		{"outside", "a.example.zone", soaLine + "\nwww.example.org. 60 IN A 127.0.0.1\n", 3, "outside the zone a.example."},
		{"CNAME and data", "a.example.zone", soaLine + "x 60 IN A 127.0.0.1\nx 60 IN CNAME www\n", 3, "CNAME and other data (A)"},
		{"two CNAMEs", "a.example.zone", soaLine + "x 60 IN CNAME a\nx 60 IN CNAME b\n", 3, "second CNAME"},
		{"class", "a.example.zone", soaLine + "x 60 CH A 127.0.0.1\n", 2, "class CH"},
		{"multi-line record", "a.example.zone", "@ 3600 IN SOA ns1 hostmaster (\n 1 7200 900\n 1209600 300 )\nx 60 IN A 127.0.0.1\nx 60 IN CNAME y\n", 5, "CNAME and other data"},
		{"include outside dir", "a.example.zone", soaLine + "$INCLUDE /etc/hostname\n", 2, "failed to open"},
		{"generate", "a.example.zone", soaLine + "\n$GENERATE 0-9 h$.${0,250} A 127.0.0.1\n", 3, "bad owner name"},
		{"include up", "a.example.zone", soaLine + "$INCLUDE ../x.inc\n", 2, "failed to open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{tc.file: tc.content})
			_, err := Load(dir)
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			var ze *Error
			if !errors.As(err, &ze) {
				t.Fatalf("error %T %q is not a *zones.Error", err, err)
			}
			prefix := "zones: " + filepath.Join(dir, tc.file) + ":"
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want prefix %q and %q", err, prefix, tc.want)
			}
			if ze.Line != tc.line {
				t.Errorf("error %q at line %d, want %d", err, ze.Line, tc.line)
			}
		})
	}
}

func TestLoadDuplicateZone(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.example.zone": soaLine,
		"a.example.db":   soaLine,
	})
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "also loaded from") {
		t.Fatalf("error %v, want a duplicate zone error", err)
	}
}

func TestLoadSkipsOtherFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.example.zone":       soaLine,
		"notes.txt":            "not a zone",
		".hidden.zone":         "garbage",
		"sub/b.example.zone":   "garbage",
		"README":               "garbage",
		"b.example.zone~":      "garbage",
		"zone":                 "garbage",
		"b.example.zone.dpkg-": "garbage",
	})
	if err := os.Mkdir(filepath.Join(dir, "dir.zone"), 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Zones(); !slices.Equal(got, []string{"a.example."}) {
		t.Errorf("Zones() = %q, want only a.example.", got)
	}
}

func TestLoadMissingDir(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.HasPrefix(err.Error(), "zones: ") {
		t.Fatalf("error %v, want a zones: error", err)
	}
}

func TestLoadIncludeInsideDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.example.zone": soaLine + "$INCLUDE hosts.inc\nafter 60 IN A 127.0.0.3\n",
		"hosts.inc":      "www 60 IN A 127.0.0.1\n\nftp 60 IN A 127.0.0.2\n",
	})
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"www": "127.0.0.1", "ftp": "127.0.0.2", "after": "127.0.0.3"} {
		m := mustAnswer(t, a, name+".a.example.", dns.TypeA)
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%s: answer %v, want %s", name, m.Answer, want)
		}
	}
	// An error inside the included file names that file and its line.
	dir = writeFiles(t, map[string]string{
		"a.example.zone": soaLine + "$INCLUDE hosts.inc\n",
		"hosts.inc":      "www 60 IN A 127.0.0.1\n\nwww 60 IN CNAME x\n",
	})
	_, err = Load(dir)
	if want := "zones: " + filepath.Join(dir, "hosts.inc") + ":3: CNAME"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want prefix %q", err, want)
	}
	dir = writeFiles(t, map[string]string{
		"a.example.zone": soaLine + "$INCLUDE hosts.inc\n",
		"hosts.inc":      "www 60 IN A 127.0.0.1\n\n\nwww 60 IN A 127.0.0.256\n",
	})
	_, err = Load(dir)
	if want := "zones: " + filepath.Join(dir, "hosts.inc") + ":4: bad A"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want prefix %q", err, want)
	}
}

func TestLoadOriginAndApex(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		// Default origin from the file name, relative names below it.
		"example.net.db": soaLine + "www 60 IN A 127.0.0.1\n",
		// $ORIGIN overrides it: the SOA's owner is the apex.
		"misc.zone": "$ORIGIN example.edu.\n$TTL 120\n" + soaLine + "www IN A 127.0.0.2\n",
		// Duplicate records are dropped.
		"dup.example.zone": soaLine + "www 60 IN A 127.0.0.1\nWWW 60 IN A 127.0.0.1\n",
	})
	a, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Zones(), []string{"dup.example.", "example.edu.", "example.net."}; !slices.Equal(got, want) {
		t.Errorf("Zones() = %q, want %q", got, want)
	}
	m := mustAnswer(t, a, "www.example.edu.", dns.TypeA)
	if got := rrStrings(m.Answer); len(got) != 1 || got[0] != "www.example.edu. 120 IN A 127.0.0.2" {
		t.Errorf("answer %q", got)
	}
	m = mustAnswer(t, a, "www.dup.example.", dns.TypeA)
	if len(m.Answer) != 1 {
		t.Errorf("duplicate records kept: %v", m.Answer)
	}
}

func TestLoadLinksStayInside(t *testing.T) {
	outside := writeFiles(t, map[string]string{"secret.inc": "www 60 IN A 127.0.0.1\n", "b.example.zone": soaLine})
	dir := writeFiles(t, map[string]string{"a.example.zone": soaLine + "$INCLUDE link.inc\n"})
	if err := os.Symlink(filepath.Join(outside, "secret.inc"), filepath.Join(dir, "link.inc")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "a.example.zone:2:") {
		t.Errorf("error %v, want the $INCLUDE through a link out of dir refused at line 2", err)
	}

	dir = writeFiles(t, map[string]string{"a.example.zone": soaLine})
	if err := os.Symlink(filepath.Join(outside, "b.example.zone"), filepath.Join(dir, "b.example.zone")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.HasPrefix(err.Error(), "zones: "+filepath.Join(dir, "b.example.zone")) {
		t.Errorf("error %v, want the zone file linked from outside refused", err)
	}

	// Links inside dir work (as in a mounted Kubernetes ConfigMap).
	dir = writeFiles(t, map[string]string{"data/a.example.zone": soaLine})
	if err := os.Symlink("data/a.example.zone", filepath.Join(dir, "a.example.zone")); err != nil {
		t.Fatal(err)
	}
	a, err := Load(dir)
	if err != nil || !slices.Equal(a.Zones(), []string{"a.example."}) {
		t.Errorf("link inside dir: %v", err)
	}
}
