package fakenet

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Security is the DNSSEC outcome a validating resolver must reach for a
// question.
type Security int

// The outcomes of a question.
const (
	// Secure: the answer validates from the trust anchor; AD=1 when the
	// query set DO.
	Secure Security = iota + 1
	// Insecure: a proven unsigned delegation lies on the way; AD=0.
	Insecure
	// Bogus: validation fails; SERVFAIL with an Extended DNS Error, and
	// the data itself with CD=1.
	Bogus
	// Unresolved: no server gives an answer (every one is lame); SERVFAIL
	// whatever DNSSEC says.
	Unresolved
)

// String names s as the table and the failures print it.
func (s Security) String() string {
	switch s {
	case Secure:
		return "secure"
	case Insecure:
		return "insecure"
	case Bogus:
		return "bogus"
	case Unresolved:
		return "unresolved"
	}
	return fmt.Sprintf("Security(%d)", int(s))
}

// Question is one row of the table a resolver is checked against: a
// question and what a validating, iterating resolver answers to it.
type Question struct {
	Name     string // the row's name, usable as a subtest's name
	Scenario string // what the row exercises
	QName    string
	QType    uint16
	Rcode    int
	// Answer is the answer section without RRSIGs, as AnswerSet writes it
	// ("owner TYPE rdata", sorted); empty for NXDOMAIN, NODATA and
	// SERVFAIL.
	Answer   []string
	Security Security
	// EDE is the Extended DNS Error (RFC 8914) a bogus answer's SERVFAIL
	// carries.
	EDE uint16
	// CDAnswer is a bogus row's answer to a query with CD=1: the data
	// without validation.
	CDAnswer []string
}

// Questions is the table of every scenario of the fake Internet. The
// answers do not depend on the addresses a Start picks.
func Questions() []Question {
	secureWWW := []string{"www.secure.fake. A 192.0.2.1", "www.secure.fake. A 192.0.2.2"}
	return []Question{
		{Name: "root-nxdomain", Scenario: "a name under no TLD: NXDOMAIN proven by the root's NSEC",
			QName: "nonexistent.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Security: Secure},
		{Name: "tld-rsa-nsec3", Scenario: "data in a TLD signed with RSASHA256 (8) and NSEC3",
			QName: "www.world.", QType: dns.TypeA, Answer: []string{"www.world. A 192.0.2.80"}, Security: Secure},
		{Name: "secure-a", Scenario: "a secure zone (ECDSAP256SHA256, 13): an RRset of two",
			QName: "www.secure.fake.", QType: dns.TypeA, Answer: secureWWW, Security: Secure},
		{Name: "secure-mx", Scenario: "a secure zone: MX",
			QName: "mail.secure.fake.", QType: dns.TypeMX, Answer: []string{"mail.secure.fake. MX 10 www.secure.fake."}, Security: Secure},
		{Name: "secure-nxdomain", Scenario: "a secure zone: NXDOMAIN proven by NSEC",
			QName: "nope.secure.fake.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Security: Secure},
		{Name: "secure-nodata", Scenario: "a secure zone: NODATA proven by NSEC",
			QName: "www.secure.fake.", QType: dns.TypeAAAA, Security: Secure},
		{Name: "ed25519", Scenario: "a zone signed with ED25519 (15), DS digests SHA-256 and SHA-384",
			QName: "www.ed.fake.", QType: dns.TypeA, Answer: []string{"www.ed.fake. A 192.0.2.15"}, Security: Secure},
		{Name: "insecure", Scenario: "an insecure delegation: no DS, proven by the parent's NSEC",
			QName: "www.insecure.fake.", QType: dns.TypeA, Answer: []string{"www.insecure.fake. A 192.0.2.11"}, Security: Insecure},
		{Name: "insecure-nxdomain", Scenario: "NXDOMAIN in an insecure zone",
			QName: "nope.insecure.fake.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Security: Insecure},
		{Name: "insecure-under-nsec3", Scenario: "an insecure delegation proven by the parent's NSEC3 (RSASHA256)",
			QName: "www.hosting.world.", QType: dns.TypeA, Answer: []string{"www.hosting.world. A 192.0.2.150"}, Security: Insecure},
		{Name: "bogus", Scenario: "a bogus zone: the record changed after signing, its RRSIG does not verify",
			QName: "www.bogus.fake.", QType: dns.TypeA, Rcode: dns.RcodeServerFailure, Security: Bogus,
			EDE: dns.ExtendedErrorCodeDNSBogus, CDAnswer: []string{"www.bogus.fake. A 192.0.2.99"}},
		{Name: "bogus-zone-intact-record", Scenario: "the bogus zone's records left as signed still validate",
			QName: "ok.bogus.fake.", QType: dns.TypeA, Answer: []string{"ok.bogus.fake. A 192.0.2.120"}, Security: Secure},
		{Name: "expired", Scenario: "every signature of the zone expired a week ago",
			QName: "www.expired.fake.", QType: dns.TypeA, Rcode: dns.RcodeServerFailure, Security: Bogus,
			EDE: dns.ExtendedErrorCodeSignatureExpired, CDAnswer: []string{"www.expired.fake. A 192.0.2.13"}},
		{Name: "dnskey-missing", Scenario: "the parent's DS names a key the zone does not publish",
			QName: "www.nokey.fake.", QType: dns.TypeA, Rcode: dns.RcodeServerFailure, Security: Bogus,
			EDE: dns.ExtendedErrorCodeDNSKEYMissing, CDAnswer: []string{"www.nokey.fake. A 192.0.2.121"}},
		{Name: "rrsigs-missing", Scenario: "a signed zone serves a record without its RRSIG",
			QName: "www.nosig.fake.", QType: dns.TypeA, Rcode: dns.RcodeServerFailure, Security: Bogus,
			EDE: dns.ExtendedErrorCodeRRSIGsMissing, CDAnswer: []string{"www.nosig.fake. A 192.0.2.122"}},
		{Name: "nsec3-a", Scenario: "a zone signed with NSEC3",
			QName: "www.nsec3.fake.", QType: dns.TypeA, Answer: []string{"www.nsec3.fake. A 192.0.2.14"}, Security: Secure},
		{Name: "nsec3-nxdomain", Scenario: "NXDOMAIN proven by NSEC3 (closest encloser, next closer, wildcard)",
			QName: "nope.nsec3.fake.", QType: dns.TypeA, Rcode: dns.RcodeNameError, Security: Secure},
		{Name: "nsec3-nodata", Scenario: "NODATA proven by NSEC3",
			QName: "www.nsec3.fake.", QType: dns.TypeAAAA, Security: Secure},
		{Name: "nsec3-wildcard", Scenario: "a wildcard answer under NSEC3: the next closer name proven absent",
			QName: "a.wild.nsec3.fake.", QType: dns.TypeA, Answer: []string{"a.wild.nsec3.fake. A 192.0.2.140"}, Security: Secure},
		{Name: "wildcard", Scenario: "a wildcard answer: RRSIG labels below the owner's, the name proven absent by NSEC",
			QName: "anything.wild.fake.", QType: dns.TypeA, Answer: []string{"anything.wild.fake. A 192.0.2.30"}, Security: Secure},
		{Name: "wildcard-nodata", Scenario: "a wildcard that matches but has no record of the type",
			QName: "anything.wild.fake.", QType: dns.TypeAAAA, Security: Secure},
		{Name: "wildcard-exact", Scenario: "a name that exists beside a wildcard",
			QName: "exact.wild.fake.", QType: dns.TypeA, Answer: []string{"exact.wild.fake. A 192.0.2.31"}, Security: Secure},
		{Name: "cname-cross-zone", Scenario: "a CNAME into another secure zone, chased across the delegation",
			QName: "www.cname.fake.", QType: dns.TypeA,
			Answer: append([]string{"www.cname.fake. CNAME www.secure.fake."}, secureWWW...), Security: Secure},
		{Name: "cname-to-insecure", Scenario: "a secure CNAME into an insecure zone: the whole answer insecure",
			QName: "insecure.cname.fake.", QType: dns.TypeA,
			Answer: []string{"insecure.cname.fake. CNAME www.insecure.fake.", "www.insecure.fake. A 192.0.2.11"}, Security: Insecure},
		{Name: "cname-to-bogus", Scenario: "a secure CNAME into the bogus record",
			QName: "bogus.cname.fake.", QType: dns.TypeA, Rcode: dns.RcodeServerFailure, Security: Bogus,
			EDE:      dns.ExtendedErrorCodeDNSBogus,
			CDAnswer: []string{"bogus.cname.fake. CNAME www.bogus.fake.", "www.bogus.fake. A 192.0.2.99"}},
		{Name: "dname", Scenario: "a DNAME into another secure zone: the DNAME, the CNAME synthesised from it, the target",
			QName: "www.old.cname.fake.", QType: dns.TypeA,
			Answer:   append([]string{"old.cname.fake. DNAME secure.fake.", "www.old.cname.fake. CNAME www.secure.fake."}, secureWWW...),
			Security: Secure},
		{Name: "cname-loop", Scenario: "two CNAMEs pointing at each other",
			QName: "loop1.cname.fake.", QType: dns.TypeA, Rcode: dns.RcodeServerFailure, Security: Unresolved},
		{Name: "glueless", Scenario: "a glueless delegation: the NS name lives in another TLD and is resolved first",
			QName: "www.glueless.fake.", QType: dns.TypeA, Answer: []string{"www.glueless.fake. A 192.0.2.16"}, Security: Secure},
		{Name: "lame-one-of-two", Scenario: "one of two servers is lame (REFUSED): the other answers",
			QName: "www.lame.fake.", QType: dns.TypeA, Answer: []string{"www.lame.fake. A 192.0.2.17"}, Security: Insecure},
		{Name: "lame-all", Scenario: "the only server is lame (REFUSED): no answer",
			QName: "www.refused.fake.", QType: dns.TypeA, Rcode: dns.RcodeServerFailure, Security: Unresolved},
		{Name: "timeout-one-of-two", Scenario: "one of two servers never answers: the resolver times out on it and asks the other",
			QName: "www.timeout.fake.", QType: dns.TypeA, Answer: []string{"www.timeout.fake. A 192.0.2.19"}, Security: Insecure},
		{Name: "no-edns", Scenario: "the server answers FORMERR to queries with EDNS: the resolver retries without",
			QName: "www.edns.fake.", QType: dns.TypeA, Answer: []string{"www.edns.fake. A 192.0.2.20"}, Security: Insecure},
		{Name: "tcp-only", Scenario: "the server truncates every UDP answer: the resolver retries over TCP",
			QName: "www.tcp.fake.", QType: dns.TypeA, Answer: []string{"www.tcp.fake. A 192.0.2.18"}, Security: Secure},
	}
}

// Query is the question as a stub resolver asks it: RD=1, EDNS0 with DO,
// and CD when cd is set.
func (q Question) Query(cd bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(q.QName, q.QType)
	m.RecursionDesired = true
	m.CheckingDisabled = cd
	m.SetEdns0(1232, true)
	return m
}

// Ask sends q's query (Query(cd)) to the resolver at addr over UDP, and
// over TCP when the UDP answer is truncated.
func (q Question) Ask(ctx context.Context, addr string, cd bool) (*dns.Msg, error) {
	m := q.Query(cd)
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, addr)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("fakenet: ask %s %s of %s: %w", q.QName, dns.TypeToString[q.QType], addr, err)
	}
	return r, nil
}

// Check compares r, the answer to Query(false), with the row: rcode,
// answer section (RRSIGs aside), AD (1 for Secure, 0 otherwise) and, for
// Bogus rows, the Extended DNS Error.
func (q Question) Check(r *dns.Msg) error {
	var errs []string
	if r.Rcode != q.Rcode {
		errs = append(errs, fmt.Sprintf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[q.Rcode]))
	}
	if got := AnswerSet(r); !slices.Equal(got, sorted(q.Answer)) {
		errs = append(errs, fmt.Sprintf("answer %q, want %q", got, sorted(q.Answer)))
	}
	if want := q.Security == Secure; r.AuthenticatedData != want {
		errs = append(errs, fmt.Sprintf("AD=%v, want %v (%s)", r.AuthenticatedData, want, q.Security))
	}
	if q.Security == Bogus && q.EDE != 0 {
		if codes := EDECodes(r); !slices.Contains(codes, q.EDE) {
			errs = append(errs, fmt.Sprintf("EDE %v, want %d (%s)", codes, q.EDE, dns.ExtendedErrorCodeToString[q.EDE]))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("fakenet: %s (%s %s): %s", q.Name, q.QName, dns.TypeToString[q.QType], strings.Join(errs, "; "))
	}
	return nil
}

// CheckCD compares r, the answer to Query(true) of a Bogus row, with
// CDAnswer: NOERROR, the unvalidated data, AD=0.
func (q Question) CheckCD(r *dns.Msg) error {
	var errs []string
	if r.Rcode != dns.RcodeSuccess {
		errs = append(errs, fmt.Sprintf("rcode %s, want NOERROR", dns.RcodeToString[r.Rcode]))
	}
	if got := AnswerSet(r); !slices.Equal(got, sorted(q.CDAnswer)) {
		errs = append(errs, fmt.Sprintf("answer %q, want %q", got, sorted(q.CDAnswer)))
	}
	if r.AuthenticatedData {
		errs = append(errs, "AD=1 on a CD answer of bogus data")
	}
	if len(errs) > 0 {
		return fmt.Errorf("fakenet: %s (%s %s) with CD: %s", q.Name, q.QName, dns.TypeToString[q.QType], strings.Join(errs, "; "))
	}
	return nil
}

// AnswerSet writes r's answer section as "owner TYPE rdata" lines, owner
// names lower-cased, without TTLs and RRSIGs, sorted: the form in which
// two resolvers' answers compare.
func AnswerSet(r *dns.Msg) []string {
	out := []string{}
	for _, rr := range r.Answer {
		h := rr.Header()
		if h.Rrtype == dns.TypeRRSIG {
			continue
		}
		rdata := strings.TrimPrefix(rr.String(), h.String())
		out = append(out, strings.ToLower(h.Name)+" "+dns.TypeToString[h.Rrtype]+" "+rdata)
	}
	slices.Sort(out)
	return out
}

// EDECodes lists the Extended DNS Error codes r carries.
func EDECodes(r *dns.Msg) []uint16 {
	var codes []uint16
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				codes = append(codes, e.InfoCode)
			}
		}
	}
	return codes
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}

// hostPort is addr:53.
func hostPort(addr string) string { return net.JoinHostPort(addr, "53") }
