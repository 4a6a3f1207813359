package dnstest

import (
	"context"
	"fmt"

	"github.com/miekg/dns"
)

// MsgResolver is a test resolver written on dns.Msg, in the packed form
// the lookup chain asks (lookup.Resolver): Resolve unpacks the query,
// calls the function and packs its answer.
type MsgResolver func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)

// Resolve answers the packed query q through f.
func (f MsgResolver) Resolve(ctx context.Context, q []byte) ([]byte, error) {
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil {
		return nil, fmt.Errorf("dnstest: unparsable query: %w", err)
	}
	a, err := f(ctx, m)
	if err != nil {
		return nil, err
	}
	return a.Pack()
}

// WireResolver is a resolver in the packed form (lookup.Resolver).
type WireResolver interface {
	Resolve(ctx context.Context, q []byte) ([]byte, error)
}

// Exchange asks r the query q and unpacks its answer.
func Exchange(ctx context.Context, r WireResolver, q *dns.Msg) (*dns.Msg, error) {
	b, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("dnstest: pack query: %w", err)
	}
	a, err := r.Resolve(ctx, b)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(a); err != nil {
		return nil, fmt.Errorf("dnstest: unparsable answer: %w", err)
	}
	return m, nil
}
