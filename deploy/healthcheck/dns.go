package main

import (
	"context"
	"fmt"

	"github.com/miekg/dns"
)

// probeDNS sends ". IN ANY" over UDP and then over TCP and wants a reply to
// each: any RCODE will do, since the question is whether the listeners
// answer. dnsd answers ANY itself (RFC 8482), so the probe never reaches a
// cache shard or a resolver.
func probeDNS(ctx context.Context, addr string) error {
	for _, network := range []string{"udp", "tcp"} {
		q := new(dns.Msg)
		q.SetQuestion(".", dns.TypeANY)
		c := &dns.Client{Net: network}
		r, _, err := c.ExchangeContext(ctx, q, addr)
		if err != nil {
			return fmt.Errorf("dns: %s over %s: %w", addr, network, err)
		}
		if !r.Response || r.Id != q.Id {
			return fmt.Errorf("dns: %s over %s: not a reply to the probe", addr, network)
		}
	}
	return nil
}
