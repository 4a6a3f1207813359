package frontend

import (
	"context"
	"flag"
	"log/slog"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/dnstest"
)

// nxResolver answers NXDOMAIN with a SOA whose TTL and MINIMUM are a day.
type nxResolver struct{}

func (nxResolver) answer(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeNameError)
	m.RecursionAvailable = true
	soa, err := dns.NewRR("example.test. 86400 IN SOA ns.example.test. h.example.test. 1 7200 900 1209600 86400")
	if err != nil {
		return nil, err
	}
	m.Ns = []dns.RR{soa}
	return m, nil
}

// TestMaxNegativeTTLFlag: -max-negative-ttl (default an hour) caps the
// TTL dnsd and cacheapi store negative answers with.
func TestMaxNegativeTTLFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want uint32
	}{
		{nil, 3600},
		{[]string{"-max-negative-ttl", "10m"}, 600},
		{[]string{"-max-negative-ttl", "0"}, 86400}, // -max-ttl alone
		{[]string{"-max-negative-ttl", "0", "-max-ttl", "2h"}, 7200},
	} {
		var f Flags
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		f.Register(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		fe, err := Build(f, dnstest.MsgResolver(nxResolver{}.answer), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		m.SetQuestion("nx.example.test.", dns.TypeA)
		q, rej := dnsmsg.ParseQuery(m)
		if rej != nil {
			t.Fatal(rej)
		}
		res, err := fe.Chain.Lookup(t.Context(), &q)
		if err != nil {
			t.Fatal(err)
		}
		if res.Entry.TTL != c.want {
			t.Errorf("%v: NXDOMAIN stored with TTL %d, want %d", c.args, res.Entry.TTL, c.want)
		}
		if err := fe.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var f Flags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f.Register(fs)
	if f.MaxNegTTL != time.Hour {
		t.Errorf("-max-negative-ttl defaults to %v, want 1h", f.MaxNegTTL)
	}
	f.MaxNegTTL = -time.Second
	if _, err := Build(f, dnstest.MsgResolver(nxResolver{}.answer), nil, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("a negative -max-negative-ttl was taken")
	}
}
