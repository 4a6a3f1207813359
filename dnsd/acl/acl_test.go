package acl

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Test addresses are netip values only; nothing here sends traffic.

func mustParse(t testing.TB, list string) *ACL {
	t.Helper()
	a, err := Parse(list)
	if err != nil {
		t.Fatalf("Parse(%q): %v", list, err)
	}
	return a
}

func checkAllowed(t *testing.T, a *ACL, allow, deny []string) {
	t.Helper()
	for _, s := range allow {
		if !a.Allowed(netip.MustParseAddr(s)) {
			t.Errorf("ACL %s: %s denied, want allowed", a, s)
		}
	}
	for _, s := range deny {
		if a.Allowed(netip.MustParseAddr(s)) {
			t.Errorf("ACL %s: %s allowed, want denied", a, s)
		}
	}
}

func TestDefault(t *testing.T) {
	for _, list := range []string{"", "  ", Default} {
		a := mustParse(t, list)
		checkAllowed(t, a,
			[]string{
				"127.0.0.1", "127.255.255.254", "::1", "10.1.2.3", "172.16.0.1",
				"172.31.255.255", "192.168.1.1", "fd00::1", "fc00::1", "fe80::1",
				"fe80::1%eth0", "169.254.169.254", "100.64.0.1", "100.127.255.255",
				"::ffff:127.0.0.1", "::ffff:10.0.0.1",
			},
			[]string{
				"8.8.8.8", "2001:4860::8888", "203.0.113.1", "172.32.0.1",
				"172.15.255.255", "100.128.0.0", "100.63.255.255", "::2",
				"::ffff:8.8.8.8", "fec0::1", "0.0.0.0", "::", "::127.0.0.1",
				"11.0.0.0", "9.255.255.255",
			})
	}
}

func TestDefaultString(t *testing.T) {
	a := mustParse(t, "")
	want := "10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12," +
		"192.168.0.0/16,::1/128,fc00::/7,fe80::/10"
	if got := a.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestAny(t *testing.T) {
	for _, list := range []string{"any", "ANY", " Any ", "0.0.0.0/0,::/0", "::/0, 0.0.0.0/0", "10.0.0.0/8,any"} {
		a := mustParse(t, list)
		if got, want := a.String(), "0.0.0.0/0,::/0"; got != want {
			t.Errorf("Parse(%q).String() = %q, want %q", list, got, want)
		}
		checkAllowed(t, a,
			[]string{"0.0.0.0", "8.8.8.8", "255.255.255.255", "::", "2001:4860::8888",
				"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:203.0.113.1"},
			nil)
	}
}

func TestOnlyOneFamily(t *testing.T) {
	checkAllowed(t, mustParse(t, "0.0.0.0/0"),
		[]string{"8.8.8.8", "::ffff:8.8.8.8"}, []string{"::1", "2001:4860::8888"})
	// IPv6 prefixes never match IPv4 clients, even mapped ones.
	checkAllowed(t, mustParse(t, "::/0"),
		[]string{"::1", "2001:4860::8888"}, []string{"8.8.8.8", "::ffff:8.8.8.8"})
}

func TestCustom(t *testing.T) {
	tests := []struct {
		list        string
		str         string
		allow, deny []string
	}{
		{
			list:  "192.0.2.1",
			str:   "192.0.2.1/32",
			allow: []string{"192.0.2.1", "::ffff:192.0.2.1"},
			deny:  []string{"192.0.2.0", "192.0.2.2", "127.0.0.1", "::1"},
		},
		{
			list:  "2001:db8::1",
			str:   "2001:db8::1/128",
			allow: []string{"2001:db8::1", "2001:db8::1%lo"},
			deny:  []string{"2001:db8::", "2001:db8::2", "127.0.0.1"},
		},
		{
			list:  " 10.1.2.3/8 , 2001:db8:1:2::/48,198.51.100.0/25",
			str:   "10.0.0.0/8,198.51.100.0/25,2001:db8:1::/48",
			allow: []string{"10.255.0.1", "198.51.100.127", "2001:db8:1:ffff::1"},
			deny:  []string{"11.0.0.0", "198.51.100.128", "2001:db8:2::1", "192.168.1.1"},
		},
		{
			// Mapped prefixes become IPv4; contained and duplicate prefixes go.
			list:  "::ffff:10.0.0.0/104,10.2.0.0/16,10.0.0.0/8,::ffff:192.0.2.7",
			str:   "10.0.0.0/8,192.0.2.7/32",
			allow: []string{"10.2.3.4", "192.0.2.7", "::ffff:10.9.9.9"},
			deny:  []string{"192.0.2.8", "11.0.0.1"},
		},
		{
			// Adjacent prefixes stay listed, and match across their border.
			list:  "192.0.2.0/25,192.0.2.128/25,2001:db8::/33,2001:db8:8000::/33",
			str:   "192.0.2.0/25,192.0.2.128/25,2001:db8::/33,2001:db8:8000::/33",
			allow: []string{"192.0.2.127", "192.0.2.128", "192.0.2.255", "2001:db8:7fff:ffff::1", "2001:db8:8000::"},
			deny:  []string{"192.0.3.0", "192.0.1.255", "2001:db9::", "2001:db7:ffff::"},
		},
		{
			list:  "255.255.255.255,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,0.0.0.0,::",
			str:   "0.0.0.0/32,255.255.255.255/32,::/128,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
			allow: []string{"255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0", "::"},
			deny:  []string{"255.255.255.254", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "0.0.0.1", "::2"},
		},
	}
	for _, tt := range tests {
		a := mustParse(t, tt.list)
		if got := a.String(); got != tt.str {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.list, got, tt.str)
		}
		checkAllowed(t, a, tt.allow, tt.deny)
	}
}

func TestZeroAndNil(t *testing.T) {
	if mustParse(t, "any").Allowed(netip.Addr{}) {
		t.Error("zero Addr allowed")
	}
	var a *ACL
	if a.Allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Error("nil ACL allowed 127.0.0.1")
	}
	if got := a.String(); got != "none" {
		t.Errorf("nil ACL String() = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ list, want string }{
		{"10.0.0.0/33", `acl: bad prefix "10.0.0.0/33"`},
		{"::/129", `acl: bad prefix "::/129"`},
		{"10.0.0.0/", `acl: bad prefix "10.0.0.0/"`},
		{"1.2.3.4/8/9", `acl: bad prefix "1.2.3.4/8/9"`},
		{"10.0.0.0/-1", `acl: bad prefix "10.0.0.0/-1"`},
		{"fe80::/10%eth0", `acl: bad prefix "fe80::/10%eth0"`},
		{"localhost", `acl: bad address "localhost"`},
		{"10.0.0", `acl: bad address "10.0.0"`},
		{"256.0.0.1", `acl: bad address "256.0.0.1"`},
		{"fe80::1%eth0", `acl: bad address "fe80::1%eth0": IPv6 zones are not allowed`},
		{"10.0.0.0/8,,::1", `acl: empty entry in "10.0.0.0/8,,::1"`},
		{"10.0.0.0/8,", `acl: empty entry`},
		{",", `acl: empty entry`},
		{"anything", `acl: bad address "anything"`},
		{"10.0.0.0/8 ::1", `acl: bad prefix "10.0.0.0/8 ::1"`},
	}
	for _, tt := range tests {
		a, err := Parse(tt.list)
		if err == nil {
			t.Errorf("Parse(%q) = %s, want error %q", tt.list, a, tt.want)
			continue
		}
		if a != nil {
			t.Errorf("Parse(%q) returned an ACL with error %v", tt.list, err)
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %q, want prefix %q", tt.list, err, tt.want)
		}
	}
	if _, err := Parse("fe80::1%eth0"); !errors.Is(err, errZone) {
		t.Errorf("zone error does not wrap errZone: %v", err)
	}
}

func TestAllowedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	a := mustParse(t, "")
	addrs := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("::ffff:127.0.0.1"),
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("2001:4860::8888"),
	}
	n := testing.AllocsPerRun(100, func() {
		for _, x := range addrs {
			a.Allowed(x)
		}
	})
	if n != 0 {
		t.Errorf("Allowed allocates %v times per run, want 0", n)
	}
}

func TestSetReplacesForEveryHolder(t *testing.T) {
	a := mustParse(t, "10.0.0.0/8")
	holder := a // a listener's copy of the pointer
	checkAllowed(t, holder, []string{"10.1.2.3"}, []string{"192.0.2.1"})
	a.Set(mustParse(t, "192.0.2.0/24,2001:db8::/32"))
	checkAllowed(t, holder, []string{"192.0.2.1", "2001:db8::1"}, []string{"10.1.2.3"})
	if got := holder.String(); got != "192.0.2.0/24,2001:db8::/32" {
		t.Errorf("after Set, String() = %q", got)
	}
}

func TestSetWhileAllowedRuns(t *testing.T) {
	a := mustParse(t, "10.0.0.0/8")
	lists := []*ACL{mustParse(t, "10.0.0.0/8"), mustParse(t, "10.0.0.0/8,192.0.2.0/24")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			a.Set(lists[i%2])
		}
	}()
	in, out := netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("198.51.100.1")
	for range 20000 {
		if !a.Allowed(in) || a.Allowed(out) {
			t.Fatal("an address both lists agree on changed verdict during Set")
		}
	}
	<-done
}
