package cachelab

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// checkItem checks that it is what the query path would store under its
// key: a packed answer to the key's question with the right TTL offsets.
func checkItem(t *testing.T, it item) *dns.Msg {
	t.Helper()
	name, ok := cache.KeyName(it.Key)
	if !ok {
		t.Fatalf("key %q is not in the cache's key schema", it.Key)
	}
	m := new(dns.Msg)
	if err := m.Unpack(it.Msg); err != nil {
		t.Fatalf("%s: stored message does not unpack: %v", it.Key, err)
	}
	if len(m.Question) != 1 || m.Question[0].Name != name {
		t.Fatalf("%s: question %v", it.Key, m.Question)
	}
	q := m.Question[0]
	if want := dnsmsg.Key(q.Name, q.Qtype, q.Qclass, false, false); want != it.Key {
		t.Fatalf("key %q, question gives %q", it.Key, want)
	}
	offs, err := dnsmsg.TTLOffsets(it.Msg)
	if err != nil || !slices.Equal(offs, it.Offsets) {
		t.Fatalf("%s: offsets %v, message has %v (%v)", it.Key, it.Offsets, offs, err)
	}
	if it.TTL == 0 || it.TTL > 86400 {
		t.Fatalf("%s: TTL %d", it.Key, it.TTL)
	}
	return m
}

func TestUniverseIsTheCachesKeySpace(t *testing.T) {
	const n = 5000
	items, err := buildUniverse(n, nil, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != n {
		t.Fatalf("%d keys, want %d", len(items), n)
	}
	seen := map[string]bool{}
	kinds := map[kind]int{}
	for _, it := range items {
		if seen[it.Key] {
			t.Fatalf("key %s twice", it.Key)
		}
		seen[it.Key] = true
		kinds[it.Kind]++
		m := checkItem(t, it)
		switch it.Kind {
		case kindNXDOMAIN:
			if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
				t.Fatalf("%s: NXDOMAIN item is %v", it.Key, m)
			}
		case kindA, kindAAAA, kindCNAME, kindMX, kindTXT:
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
				t.Fatalf("%s: %s item has no answer", it.Key, it.Kind)
			}
		}
	}
	for k := kindA; k <= kindNODATA; k++ {
		if kinds[k] == 0 {
			t.Errorf("no %s answer in the key space", k)
		}
	}
	if share := float64(kinds[kindNXDOMAIN]) / n; math.Abs(share-nxShare) > 0.02 {
		t.Errorf("NXDOMAIN share %.3f, want about %.2f", share, nxShare)
	}
	again, err := buildUniverse(n, nil, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if items[i].Key != again[i].Key || string(items[i].Msg) != string(again[i].Msg) {
			t.Fatal("same seed, another key space")
		}
	}
}

func TestUniverseUsesGivenNames(t *testing.T) {
	names := []string{"www.Example.com", "mail.example.com.", "bad..name", "", "cdn.example.org."}
	items, err := buildUniverse(40, names, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"www.example.com.": true, "mail.example.com.": true, "cdn.example.org.": true}
	used := map[string]bool{}
	for _, it := range items {
		checkItem(t, it)
		name, _ := cache.KeyName(it.Key)
		if want[name] {
			used[name] = true
			continue
		}
		if it.Kind != kindNXDOMAIN || !(strings.HasSuffix(name, ".example.com.") || strings.HasSuffix(name, ".example.org.")) {
			t.Errorf("key %s (%s) is neither a given name nor NXDOMAIN under their zones", it.Key, it.Kind)
		}
	}
	if len(used) != len(want) {
		t.Errorf("given names used: %v, want %v", used, want)
	}
}

func TestByteSpecsBuild(t *testing.T) {
	for i, bs := range byteSpecs {
		it, err := buildItem(bs.spec, rand.New(rand.NewPCG(uint64(i), 1)))
		if err != nil {
			t.Fatalf("%s: %v", bs.label, err)
		}
		m := checkItem(t, it)
		if bs.spec.BigTXT && len(it.Msg) < 500 {
			t.Errorf("%s: only %d bytes", bs.label, len(it.Msg))
		}
		if bs.spec.Kind == kindNODATA && (m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1) {
			t.Errorf("%s: %v", bs.label, m)
		}
	}
}
