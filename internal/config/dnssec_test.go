package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// -trust-anchor and -dnssec parse into Resolving, -dnssec defaults to
// validate, and ValidateDNSSEC takes validate and off and names anything
// else.
func TestDNSSECFlags(t *testing.T) {
	parse := func(args ...string) (Resolving, error) {
		var r Resolving
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		r.Register(fs)
		return r, fs.Parse(args)
	}
	r, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if on, err := r.ValidateDNSSEC(); err != nil || !on || r.TrustAnchor != "" {
		t.Fatalf("defaults: validate %v, %v, trust anchor %q; want validation on and the built-in anchors", on, err, r.TrustAnchor)
	}
	r, err = parse("-dnssec", "off", "-trust-anchor", "/etc/shardns/root.key")
	if err != nil {
		t.Fatal(err)
	}
	if on, err := r.ValidateDNSSEC(); err != nil || on || r.TrustAnchor != "/etc/shardns/root.key" {
		t.Fatalf("-dnssec off -trust-anchor: validate %v, %v, trust anchor %q", on, err, r.TrustAnchor)
	}
	for _, bad := range []string{"on", "Validate", ""} {
		r, err := parse("-dnssec", bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.ValidateDNSSEC(); err == nil || !strings.Contains(err.Error(), "-dnssec") || !strings.Contains(err.Error(), "validate or off") {
			t.Errorf("-dnssec %q: %v, want an error naming the flag and its values", bad, err)
		}
	}
}
