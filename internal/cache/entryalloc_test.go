package cache

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// A decoded entry's message, offsets and Entry share one allocation for
// the usual sizes (newEntryMsg): whatever the size and the number of
// records, on either side of every bucket, the entry decodes to exactly
// what was encoded, and its message and offsets end where they do (no
// room past them for an append to write into its neighbour).
func TestDecodeSizesAndCounts(t *testing.T) {
	const key = "dns:{www.example.com.}:TXT:IN"
	now := time.UnixMilli(1_700_000_000_000)
	for records := 0; records <= inlineOffsets+2; records++ {
		for size := 30; size <= 300; size++ {
			m := new(dns.Msg)
			m.SetQuestion("www.example.com.", dns.TypeTXT)
			m.Response, m.RecursionAvailable = true, true
			for i := range records {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: []string{fmt.Sprint(i)}})
			}
			packed, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if pad := size - len(packed) - 1; pad >= 0 && records > 0 {
				last := m.Answer[records-1].(*dns.TXT)
				last.Txt = append(last.Txt, strings.Repeat("x", min(pad, 255)))
			}
			st, err := dnsmsg.Prepare(m, 60, 0, true)
			if err != nil {
				t.Fatal(err)
			}
			want := &Entry{StoredAt: now, TTL: 60, StaleUntil: now.Add(time.Hour), Offsets: st.Offsets, Msg: st.Msg}
			b := want.Encode()
			if b[0] != entryVersion {
				t.Fatalf("%d records, %d bytes: written as version %d", records, len(st.Msg), b[0])
			}
			got, err := Decode(key, b)
			if err != nil {
				t.Fatalf("%d records, %d bytes: %v", records, len(st.Msg), err)
			}
			if d := sameEntry(got, want); d != "" || !bytes.Equal(got.Msg, want.Msg) {
				t.Fatalf("%d records, %d bytes: %s", records, len(st.Msg), d)
			}
			if cap(got.Msg) != len(got.Msg) || cap(got.Offsets) != len(got.Offsets) || (records == 0) != (got.Offsets == nil) {
				t.Fatalf("%d records, %d bytes: message %d/%d, offsets %d/%d (nil %v)", records, len(st.Msg),
					len(got.Msg), cap(got.Msg), len(got.Offsets), cap(got.Offsets), got.Offsets == nil)
			}
		}
	}
}

// A version 3 answer of the usual size, whose name holds no escape and
// whose records checkRData checks in place, decodes in one allocation.
func TestDecodeOneAllocation(t *testing.T) {
	inPlace := map[uint16]bool{dns.TypeA: true, dns.TypeAAAA: true, dns.TypeCNAME: true, dns.TypeNS: true, dns.TypePTR: true,
		dns.TypeSOA: true, dns.TypeMX: true, dns.TypeTXT: true, dns.TypeSRV: true, dns.TypeNAPTR: true, dns.TypeRRSIG: true,
		dns.TypeDS: true, dns.TypeDNSKEY: true, dns.TypeCAA: true, dns.TypeTLSA: true, dns.TypeSSHFP: true}
	tested := 0
	for _, c := range realAnswers(t) {
		if len(c.entry.Offsets) > inlineOffsets || len(c.entry.Msg) > 256 || strings.Contains(c.key, `\`) {
			continue
		}
		m := new(dns.Msg)
		if err := m.Unpack(c.entry.Msg); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		common := true
		for _, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
			common = common && inPlace[rr.Header().Rrtype]
		}
		if !common {
			continue
		}
		tested++
		b := c.entry.Encode()
		if b[0] != entryVersion {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = Decode(c.key, b) }); n != 1 {
			t.Errorf("%s: %v allocations per Decode, want 1", c.name, n)
		}
	}
	if tested < 3 {
		t.Errorf("%d answers tested, want the usual ones", tested)
	}
}
