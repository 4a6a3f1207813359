package dnsmsg

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestCacheTTLNegativeCap checks -max-negative-ttl: negative answers
// (NXDOMAIN, NODATA) are cached no longer than it, whatever their SOA
// says and whatever -min-ttl and -max-ttl allow; positive ones ignore it.
func TestCacheTTLNegativeCap(t *testing.T) {
	day := "example.com. 86400 IN SOA ns.example.com. h.example.com. 1 7200 900 1209600 86400"
	short := "example.com. 300 IN SOA ns.example.com. h.example.com. 1 7200 900 1209600 300"
	nx := func(soa string) *dns.Msg {
		return answer(t, "x.example.com.", dns.TypeA, dns.RcodeNameError, nil, []string{soa})
	}
	nodata := func(soa string) *dns.Msg {
		return answer(t, "www.example.com.", dns.TypeMX, dns.RcodeSuccess, nil, []string{soa})
	}
	positive := answer(t, "a.example.com.", dns.TypeA, dns.RcodeSuccess, []string{"a.example.com. 86400 IN A 192.0.2.1"}, nil)
	defaults := Policy{MaxTTL: 86400 * time.Second, MaxNegativeTTL: DefaultMaxNegativeTTL}
	for _, tt := range []struct {
		name string
		m    *dns.Msg
		p    Policy
		want uint32
	}{
		{"NXDOMAIN of a day capped at an hour", nx(day), defaults, 3600},
		{"NODATA of a day capped at an hour", nodata(day), defaults, 3600},
		{"short NXDOMAIN kept", nx(short), defaults, 300},
		{"positive answer not capped", positive, defaults, 86400},
		{"cap of 10 minutes", nx(day), Policy{MaxTTL: 86400 * time.Second, MaxNegativeTTL: 10 * time.Minute}, 600},
		{"cap wins over min-ttl", nx(short), Policy{MinTTL: 2 * time.Hour, MaxTTL: 86400 * time.Second, MaxNegativeTTL: time.Hour}, 3600},
		{"max-ttl below the cap", nx(day), Policy{MaxTTL: 20 * time.Minute, MaxNegativeTTL: time.Hour}, 1200},
		{"no cap: max-ttl alone", nx(day), Policy{MaxTTL: 86400 * time.Second}, 86400},
	} {
		got, ok := tt.p.CacheTTL(tt.m)
		if got != tt.want || !ok {
			t.Errorf("%s: CacheTTL = %d, %v; want %d, true", tt.name, got, ok, tt.want)
		}
	}
}
