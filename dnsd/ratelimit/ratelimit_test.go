package ratelimit

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Test addresses are netip values only; nothing here sends traffic.

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func newLimiter(cfg Config) (*Limiter, *fakeClock) {
	c := &fakeClock{}
	cfg.Now = c.Now
	return New(cfg), c
}

// results runs n checks for a and returns their actions as a string of
// A (allow), S (slip) and D (drop).
func results(l *Limiter, a netip.Addr, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteByte("ASD"[l.Check(a)])
	}
	return sb.String()
}

func TestDisabled(t *testing.T) {
	var nilLimiter *Limiter
	limiters := map[string]*Limiter{"nil": nilLimiter}
	for name, rate := range map[string]float64{"zero": 0, "negative": -1, "NaN": math.NaN(), "Inf": math.Inf(1)} {
		limiters[name], _ = newLimiter(Config{Rate: rate, Burst: 1})
	}
	for name, l := range limiters {
		if got := results(l, addr("192.0.2.1"), 1000); got != strings.Repeat("A", 1000) {
			t.Errorf("%s limiter: %s, want all allowed", name, got)
		}
		if s := l.Stats(); s != (Stats{}) {
			t.Errorf("%s limiter: Stats() = %+v, want zero", name, s)
		}
	}
}

func TestUnderRateAllAllowed(t *testing.T) {
	for _, tt := range []struct {
		rate  float64
		burst int
		step  time.Duration
	}{
		{rate: 10, step: 100 * time.Millisecond},
		{rate: 5, burst: 1, step: 200 * time.Millisecond},
		{rate: 0.5, step: 2 * time.Second},
		{rate: 1000, step: time.Millisecond},
	} {
		l, c := newLimiter(Config{Rate: tt.rate, Burst: tt.burst})
		for i := range 500 {
			if got := l.Check(addr("192.0.2.1")); got != Allow {
				t.Fatalf("rate %v burst %d: query %d at %v: %v, want allow", tt.rate, tt.burst, i, tt.step*time.Duration(i), got)
			}
			c.Advance(tt.step)
		}
		if s := l.Stats(); s.Allowed != 500 || s.Slipped+s.Dropped != 0 || s.Tracked != 1 {
			t.Errorf("rate %v: Stats() = %+v", tt.rate, s)
		}
	}
}

func TestBurstSlipRatio(t *testing.T) {
	tests := []struct {
		slip int
		want string // the 12 over-limit results
	}{
		{slip: 0, want: "SDSDSDSDSDSD"}, // default 2
		{slip: 1, want: "SSSSSSSSSSSS"},
		{slip: 2, want: "SDSDSDSDSDSD"},
		{slip: 3, want: "SDDSDDSDDSDD"},
		{slip: 5, want: "SDDDDSDDDDSD"},
		{slip: -1, want: "DDDDDDDDDDDD"},
	}
	for _, tt := range tests {
		l, _ := newLimiter(Config{Rate: 10, Slip: tt.slip})
		got := results(l, addr("198.51.100.7"), 10+12)
		if want := strings.Repeat("A", 10) + tt.want; got != want {
			t.Errorf("slip %d: %s, want %s", tt.slip, got, want)
		}
		s := l.Stats()
		if want := strings.Count(tt.want, "S"); s.Allowed != 10 || s.Slipped != uint64(want) || s.Dropped != uint64(12-want) {
			t.Errorf("slip %d: Stats() = %+v", tt.slip, s)
		}
	}
}

func TestSlipCountRestartsOnlyWhenRefilled(t *testing.T) {
	l, c := newLimiter(Config{Rate: 10, Burst: 4, Slip: 3})
	a := addr("192.0.2.1")
	if got := results(l, a, 6); got != "AAAASD" {
		t.Fatalf("first burst: %s", got)
	}
	// One token back: the slip count carries on.
	c.Advance(100 * time.Millisecond)
	if got := results(l, a, 3); got != "ADS" {
		t.Fatalf("after one token: %s, want ADS", got)
	}
	// A full bucket starts a new episode, which opens with a slip.
	c.Advance(time.Second)
	if got := results(l, a, 6); got != "AAAASD" {
		t.Fatalf("after refill: %s, want AAAASD", got)
	}
}

func TestRefill(t *testing.T) {
	l, c := newLimiter(Config{Rate: 2, Slip: -1})
	a := addr("2001:db8::1")
	if got := results(l, a, 3); got != "AAD" {
		t.Fatalf("burst: %s, want AAD", got)
	}
	c.Advance(499 * time.Millisecond)
	if got := l.Check(a); got != Drop {
		t.Fatalf("after 499ms: %v, want drop", got)
	}
	c.Advance(time.Millisecond)
	if got := results(l, a, 2); got != "AD" {
		t.Fatalf("after 500ms: %s, want AD", got)
	}
	// A long quiet spell refills only up to the burst.
	c.Advance(time.Hour)
	if got := results(l, a, 3); got != "AAD" {
		t.Fatalf("after an hour: %s, want AAD", got)
	}
	// A clock that runs backwards adds nothing.
	c.Advance(-time.Minute)
	if got := l.Check(a); got != Drop {
		t.Fatalf("after clock went back: %v, want drop", got)
	}
}

func TestFractionalRate(t *testing.T) {
	l, c := newLimiter(Config{Rate: 0.5, Slip: -1}) // burst max(1, 0) = 1
	a := addr("192.0.2.1")
	want := []Action{Allow, Drop}
	for i, step := range []time.Duration{time.Second, time.Second} {
		if got := l.Check(a); got != want[i] {
			t.Fatalf("check %d: %v, want %v", i, got, want[i])
		}
		c.Advance(step)
	}
	if got := l.Check(a); got != Allow {
		t.Fatalf("after 2s: %v, want allow", got)
	}
}

// drain uses up a's bucket and reports whether it is then limited.
func drained(l *Limiter, a netip.Addr, burst int) bool {
	results(l, a, burst)
	return l.Check(a) != Allow
}

func TestIPv4PrefixSharing(t *testing.T) {
	l, _ := newLimiter(Config{Rate: 4, Slip: -1})
	if got := results(l, addr("192.0.2.1"), 2) + results(l, addr("192.0.2.200"), 2); got != "AAAA" {
		t.Fatalf("first four from one /24: %s", got)
	}
	for _, s := range []string{"192.0.2.1", "192.0.2.255", "::ffff:192.0.2.9", "192.0.2.0"} {
		if got := l.Check(addr(s)); got != Drop {
			t.Errorf("%s shares the drained /24, got %v, want drop", s, got)
		}
	}
	for _, s := range []string{"192.0.3.1", "192.0.1.255", "193.0.2.1", "::ffff:198.51.100.1", "::c000:201"} {
		if got := l.Check(addr(s)); got != Allow {
			t.Errorf("%s is another prefix, got %v, want allow", s, got)
		}
	}
	if got := l.Stats().Tracked; got != 6 {
		t.Errorf("Tracked = %d, want 6", got)
	}

	l16, _ := newLimiter(Config{Rate: 1, IPv4Prefix: 16, Slip: -1})
	l16.Check(addr("10.1.2.3"))
	if got := l16.Check(addr("10.1.200.3")); got != Drop {
		t.Errorf("/16: 10.1.200.3 should share 10.1.2.3's bucket, got %v", got)
	}
	if got := l16.Check(addr("10.2.2.3")); got != Allow {
		t.Errorf("/16: 10.2.2.3 is another prefix, got %v", got)
	}

	l32, _ := newLimiter(Config{Rate: 1, IPv4Prefix: 99, Slip: -1}) // means /32
	l32.Check(addr("10.1.2.3"))
	if got := l32.Check(addr("10.1.2.4")); got != Allow {
		t.Errorf("/32: 10.1.2.4 is another prefix, got %v", got)
	}
}

func TestIPv6PrefixMasking(t *testing.T) {
	tests := []struct {
		bits        int
		first       string
		same, other []string
	}{
		{
			bits:  0, // default /56
			first: "2001:db8:0:ff00::1",
			same:  []string{"2001:db8:0:ffff:ffff::1", "2001:db8:0:ff00::", "2001:db8:0:ff12::1%eth0"},
			other: []string{"2001:db8:0:fe00::1", "2001:db8:0:100::1", "2001:db8:1:ff00::1", "::1"},
		},
		{
			bits:  64,
			first: "2001:db8:0:1::1",
			same:  []string{"2001:db8:0:1:ffff:ffff:ffff:ffff"},
			other: []string{"2001:db8:0:2::1", "2001:db8:0:0:ffff::1"},
		},
		{
			bits:  120,
			first: "2001:db8::1:1",
			same:  []string{"2001:db8::1:ff"},
			other: []string{"2001:db8::1:100", "2001:db8::2:1"},
		},
		{
			bits:  200, // means /128
			first: "2001:db8::1",
			other: []string{"2001:db8::2", "2001:db8::"},
		},
	}
	for _, tt := range tests {
		l, _ := newLimiter(Config{Rate: 1, IPv6Prefix: tt.bits, Slip: -1})
		if !drained(l, addr(tt.first), 1) {
			t.Fatalf("/%d: %s not limited after its burst", tt.bits, tt.first)
		}
		for _, s := range tt.same {
			if got := l.Check(addr(s)); got != Drop {
				t.Errorf("/%d: %s should share %s's bucket, got %v", tt.bits, s, tt.first, got)
			}
		}
		for _, s := range tt.other {
			if got := l.Check(addr(s)); got != Allow {
				t.Errorf("/%d: %s is another prefix than %s, got %v", tt.bits, s, tt.first, got)
			}
		}
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{Allow: "allow", Slip: "slip", Drop: "drop", Action(7): "Action(7)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	l, c := newLimiter(Config{Rate: 100})
	addrs := []netip.Addr{addr("192.0.2.1"), addr("2001:db8::1"), addr("::ffff:10.0.0.1"), addr("fe80::1%eth0")}
	for _, a := range addrs {
		l.Check(a)
	}
	n := testing.AllocsPerRun(1000, func() {
		for _, a := range addrs {
			l.Check(a)
		}
		c.Advance(time.Millisecond)
	})
	if n != 0 {
		t.Errorf("Check of known prefixes allocates %v times per run, want 0", n)
	}
}

func TestReconfigure(t *testing.T) {
	c := &fakeClock{}
	l := New(Config{Rate: 0, Now: c.Now})
	a := addr("192.0.2.1")
	if got := results(l, a, 10); got != strings.Repeat("A", 10) {
		t.Fatalf("off: %s", got)
	}
	l.Reconfigure(Config{Rate: 1, Burst: 2, Slip: NoSlip, Now: c.Now})
	if !l.Enabled() {
		t.Fatal("Enabled() false after Reconfigure with a rate")
	}
	if got := results(l, a, 4); got != "AADD" {
		t.Fatalf("rate 1 burst 2: %s, want AADD", got)
	}
	if s := l.Stats(); s.Allowed != 2 || s.Dropped != 2 {
		t.Errorf("Stats() = %+v, want 2 allowed, 2 dropped", s)
	}
	l.Reconfigure(Config{Rate: 0, Now: c.Now})
	if l.Enabled() || results(l, a, 10) != strings.Repeat("A", 10) {
		t.Error("Reconfigure to rate 0 still limits")
	}
}
