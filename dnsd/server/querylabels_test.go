package server

import (
	"testing"

	"github.com/miekg/dns"
)

// Every listed type has its own label, named as dig names it; any other
// is "other". RCODEs are named by the RFCs' mnemonics, BADCOOKIE
// included; an unassigned one by number; an extended one other than
// BADCOOKIE is "other".
func TestQueryLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, qt := range queryTypes {
		name := qtypeName(qtypeIndex(qt))
		if name != dns.TypeToString[qt] || seen[name] {
			t.Errorf("type %d labelled %q", qt, name)
		}
		seen[name] = true
	}
	for _, qt := range []uint16{0, dns.TypeSPF, dns.TypeAXFR, dns.TypeOPT, 65280, 65535} {
		if got := qtypeName(qtypeIndex(qt)); got != "other" {
			t.Errorf("type %d labelled %q, want other", qt, got)
		}
	}
	for rc, want := range map[int]string{
		dns.RcodeSuccess: "NOERROR", dns.RcodeNameError: "NXDOMAIN", dns.RcodeServerFailure: "SERVFAIL",
		dns.RcodeRefused: "REFUSED", dns.RcodeFormatError: "FORMERR", 11: "DSOTYPENI", 12: "RCODE12", 15: "RCODE15",
		dns.RcodeBadCookie: "BADCOOKIE", dns.RcodeBadVers: "other", -1: "other", 4095: "other",
	} {
		if got := rcodeName(rcodeIndex(rc)); got != want {
			t.Errorf("RCODE %d labelled %q, want %q", rc, got, want)
		}
	}
	for p := range numProtos {
		if protoNames[p] == "" {
			t.Errorf("protocol %d has no label", p)
		}
	}
}
