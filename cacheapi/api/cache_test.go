package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

func TestLookupSourceShardAndTTL(t *testing.T) {
	shards := redistest.StartN(t, 3)
	fleet := newFleet(t, shards, 2)
	a, b := fleet[0].srv, fleet[1].srv
	key := dnsmsg.Key("www.example.test.", dns.TypeA, dns.ClassINET, false, false)

	_, _, body := get(t, a, http.MethodGet, "/lookup?name=www.example.test")
	got := decodeAnswer(t, body)
	if got.Source != "resolver" || got.TTL != 300 || got.Shard != "" || got.Comment == "" {
		t.Errorf("first lookup: source %q TTL %d shard %q comment %q", got.Source, got.TTL, got.Shard, got.Comment)
	}
	// Another frontend has no L1 copy: the answer comes from the shard.
	_, _, body = get(t, b, http.MethodGet, "/lookup?name=www.example.test")
	got = decodeAnswer(t, body)
	want := holderOf(t, shards, key)
	if got.Source != "redis" || got.Shard != want || want == "" || !strings.Contains(got.Comment, want) {
		t.Errorf("second frontend: source %q shard %q comment %q, want redis from %s", got.Source, got.Shard, got.Comment, want)
	}
	if got.TTL == 0 || got.TTL > 300 || len(got.Answer) != 1 || got.Answer[0].TTL > got.TTL {
		t.Errorf("second frontend: TTL %d, answer %+v", got.TTL, got.Answer)
	}
	_, _, body = get(t, b, http.MethodGet, "/lookup?name=www.example.test")
	if got = decodeAnswer(t, body); got.Source != "l1" || got.Shard != "" {
		t.Errorf("third lookup: source %q shard %q, want l1", got.Source, got.Shard)
	}
	// Answered by shardns itself.
	_, _, body = get(t, b, http.MethodGet, "/lookup?name=www.example.test&type=ANY")
	if got = decodeAnswer(t, body); got.Source != "local" || len(got.Answer) != 1 || got.Answer[0].Type != dns.TypeHINFO {
		t.Errorf("ANY: %+v", got)
	}
	_, _, body = get(t, b, http.MethodGet, "/lookup?name=example.test&type=AXFR")
	if got = decodeAnswer(t, body); got.Source != "local" || got.Status != dns.RcodeRefused {
		t.Errorf("AXFR: %+v", got)
	}
}

// lookupAll looks names up with the given types through srv.
func lookupAll(t *testing.T, srv *member, names []string, types ...string) {
	t.Helper()
	for _, n := range names {
		for _, typ := range types {
			if code, _, body := get(t, srv.srv, http.MethodGet, "/lookup?name="+n+"&"+typ); code != http.StatusOK {
				t.Fatalf("lookup %s %s: %d %s", n, typ, code, body)
			}
		}
	}
}

func TestCacheGet(t *testing.T) {
	shards := redistest.StartN(t, 3)
	m := newFleet(t, shards, 1)[0]
	key := dnsmsg.Key("www.example.test.", dns.TypeA, dns.ClassINET, false, false)

	resp, body := do(t, m.srv, http.MethodGet, "/cache/www.example.test", testAuth, nil)
	mustJSONError(t, "before any lookup", resp, body, http.StatusNotFound)

	lookupAll(t, m, []string{"www.example.test"}, "type=A")
	before := time.Now().Add(-time.Second)
	resp, body = do(t, m.srv, http.MethodGet, "/cache/WWW.example.test.?type=a", testAuth, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /cache: %d %s", resp.StatusCode, body)
	}
	var e cacheEntry
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	stored, err := time.Parse(time.RFC3339, e.StoredAt)
	if err != nil || stored.Before(before.Truncate(time.Second)) || stored.After(time.Now()) {
		t.Errorf("stored_at %q (%v)", e.StoredAt, err)
	}
	until, err := time.Parse(time.RFC3339, e.StaleUntil)
	if err != nil || until.Sub(stored) < time.Hour {
		t.Errorf("stale_until %q, want an hour past the TTL", e.StaleUntil)
	}
	size := int(shards[0].Client().StrLen(t.Context(), key).Val() + shards[1].Client().StrLen(t.Context(), key).Val() +
		shards[2].Client().StrLen(t.Context(), key).Val())
	if e.Key != key || e.Tier != "redis" || e.Shard != holderOf(t, shards, key) || e.TTLOriginal != 300 ||
		e.TTLRemaining == 0 || e.TTLRemaining > 300 || e.Stale || e.SizeBytes != size || e.Status != dns.RcodeSuccess {
		t.Errorf("entry %+v; want key %s on %s, TTL 300, %d bytes", e, key, holderOf(t, shards, key), size)
	}
	if len(e.Answer) != 1 || e.Answer[0].Data != "192.0.2.1" || e.Answer[0].TTL > e.TTLRemaining {
		t.Errorf("records %+v", e.Answer)
	}

	// A stale entry, written as the chain writes them, but stored long ago.
	old := time.Now().Add(-400 * time.Second)
	q := new(dns.Msg)
	q.SetQuestion("old.example.test.", dns.TypeA)
	ans := new(dns.Msg)
	ans.SetReply(q)
	ans.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "old.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: []byte{192, 0, 2, 9}}}
	st, err := dnsmsg.Prepare(ans, 300, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	oldKey := dnsmsg.Key("old.example.test.", dns.TypeA, dns.ClassINET, false, false)
	if err := m.fe.Redis.Set(t.Context(), oldKey, &cache.Entry{StoredAt: old, TTL: 300, StaleUntil: old.Add(time.Hour), Offsets: st.Offsets, Msg: st.Msg}); err != nil {
		t.Fatal(err)
	}
	_, body = do(t, m.srv, http.MethodGet, "/cache/old.example.test", testAuth, nil)
	e = cacheEntry{}
	if err := json.Unmarshal(body, &e); err != nil || !e.Stale || e.TTLRemaining != 0 || len(e.Answer) != 1 || e.Answer[0].TTL != 0 {
		t.Errorf("stale entry: %s", body)
	}

	for _, path := range []string{"/cache/a..b", "/cache/www.example.test?type=BOGUS", "/cache/" + strings.Repeat("a", 70)} {
		resp, body := do(t, m.srv, http.MethodGet, path, testAuth, nil)
		mustJSONError(t, path, resp, body, http.StatusBadRequest)
	}
	resp, body = do(t, m.srv, http.MethodGet, "/cache/www.example.test?type=AAAA", testAuth, nil)
	mustJSONError(t, "type not cached", resp, body, http.StatusNotFound)
	// The root, and a name with a slash (RFC 2317), percent-encoded.
	for _, path := range []string{"/cache/%2E?type=NS", "/cache/0%2F25.2.0.192.in-addr.arpa?type=PTR", "/cache/."} {
		resp, body := do(t, m.srv, http.MethodGet, path, testAuth, nil)
		mustJSONError(t, path, resp, body, http.StatusNotFound)
	}
}

func TestCacheL1Only(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	lookupAll(t, m, []string{"www.example.test", "txt.example.test"}, "type=A", "type=AAAA")
	_, body := do(t, m.srv, http.MethodGet, "/cache/www.example.test?type=AAAA", testAuth, nil)
	var e cacheEntry
	if err := json.Unmarshal(body, &e); err != nil || e.Tier != "l1" || e.Shard != "" || len(e.Answer) != 1 || e.Answer[0].Data != "2001:db8::1" {
		t.Errorf("L1 entry: %s", body)
	}
	resp, body := do(t, m.srv, http.MethodDelete, "/cache/www.example.test", testAuth, nil)
	var f flushed
	if err := json.Unmarshal(body, &f); err != nil || resp.StatusCode != http.StatusOK || f.Deleted != 2 || f.Name != "www.example.test." {
		t.Errorf("DELETE without Redis: %d %s, want 2 L1 entries", resp.StatusCode, body)
	}
	if m.fe.L1.Len() != 2 {
		t.Errorf("L1 holds %d entries, want txt.example.test's 2", m.fe.L1.Len())
	}
}

// redisKeys returns every key of the shards, sorted.
func redisKeys(t *testing.T, shards []*redistest.Server) []string {
	t.Helper()
	var out []string
	for _, s := range shards {
		keys, err := s.Client().Keys(t.Context(), "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, keys...)
	}
	slices.Sort(out)
	return out
}

func TestCacheDeleteNameReachesOtherL1(t *testing.T) {
	shards := redistest.StartN(t, 3)
	fleet := newFleet(t, shards, 2)
	a, b := fleet[0], fleet[1]
	waitUntil(t, 10*time.Second, "both frontends subscribed on every shard", func() bool {
		for _, s := range shards {
			n, err := s.Client().PubSubNumSub(t.Context(), cache.InvalidateChannel).Result()
			if err != nil || n[cache.InvalidateChannel] != 2 {
				return false
			}
		}
		return true
	})
	// b holds both names in its L1: the control name first, so that it
	// would leave L1 by age no later than the flushed one.
	lookupAll(t, b, []string{"txt.example.test"}, "type=TXT")
	lookupAll(t, b, []string{"www.example.test"}, "type=A", "type=AAAA", "type=A&do=1")
	keyA := dnsmsg.Key("www.example.test.", dns.TypeA, dns.ClassINET, false, false)
	control := dnsmsg.Key("txt.example.test.", dns.TypeTXT, dns.ClassINET, false, false)
	for _, k := range []string{keyA, control} {
		if _, err := b.fe.L1.Inspect(k); err != nil {
			t.Fatalf("%s not in b's L1: %v", k, err)
		}
	}
	if n := len(redisKeys(t, shards)); n != 4 {
		t.Fatalf("shards hold %d keys, want 4", n)
	}

	resp, body := do(t, a.srv, http.MethodDelete, "/cache/WWW.example.test", testAuth, nil)
	var f flushed
	if err := json.Unmarshal(body, &f); err != nil || resp.StatusCode != http.StatusOK || f.Deleted != 3 ||
		f.Name != "www.example.test." || f.Suffix || len(f.Shards) != 1 {
		t.Fatalf("DELETE: %d %s, want 3 keys deleted from one shard", resp.StatusCode, body)
	}
	if got := redisKeys(t, shards); !slices.Equal(got, []string{control}) {
		t.Errorf("shards hold %q, want only %s", got, control)
	}
	waitUntil(t, 3*time.Second, "b's L1 drops the flushed name", func() bool {
		_, err := b.fe.L1.Inspect(keyA)
		return err == cache.ErrMiss
	})
	if _, err := b.fe.L1.Inspect(control); err != nil {
		t.Errorf("the control name left b's L1 too (%v): the flush was not what removed it", err)
	}
	if b.fe.L1.Len() != 1 {
		t.Errorf("b's L1 holds %d entries, want the control only", b.fe.L1.Len())
	}
	// b answers from the resolver again.
	_, _, body = get(t, b.srv, http.MethodGet, "/lookup?name=www.example.test")
	if got := decodeAnswer(t, body); got.Source != "resolver" {
		t.Errorf("after the flush b answers from %q", got.Source)
	}
}

func TestCacheDeleteSuffixAcrossShards(t *testing.T) {
	shards := redistest.StartN(t, 4)
	m := newFleet(t, shards, 1)[0]
	ctx := context.Background()
	now := time.Now()
	q := new(dns.Msg)
	q.SetQuestion("x.", dns.TypeA)
	st, err := dnsmsg.Prepare(q, 300, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	entry := &cache.Entry{StoredAt: now, TTL: 300, StaleUntil: now.Add(time.Hour), Offsets: st.Offsets, Msg: st.Msg}
	var under, outside []string
	for i := range 60 {
		under = append(under, fmt.Sprintf("h%d.example.test.", i), fmt.Sprintf("a.b%d.example.test.", i))
		outside = append(outside, fmt.Sprintf("h%d.example.net.", i), fmt.Sprintf("h%dexample.test.", i), fmt.Sprintf("example.test.h%d.", i))
	}
	under = append(under, "example.test.", "*.example.test.")
	outside = append(outside, `a\.example.test.`, "test.")
	var gone, keep []string
	put := func(names []string, into *[]string) {
		for _, n := range names {
			for _, k := range []string{
				dnsmsg.Key(n, dns.TypeA, dns.ClassINET, false, false),
				dnsmsg.Key(n, dns.TypeMX, dns.ClassINET, true, true),
			} {
				if err := m.fe.Redis.Set(ctx, k, entry); err != nil {
					t.Fatal(err)
				}
				*into = append(*into, k)
			}
		}
	}
	put(under, &gone)
	put(outside, &keep)
	for _, s := range shards {
		held := 0
		for _, k := range gone {
			held += int(s.Client().Exists(ctx, k).Val())
		}
		if held == 0 || int(s.Client().DBSize(ctx).Val()) == held {
			t.Fatalf("shard %s holds %d flushed keys of %d: want both kinds on every shard", s.Addr, held, s.Client().DBSize(ctx).Val())
		}
	}

	resp, body := do(t, m.srv, http.MethodDelete, "/cache/Example.Test?suffix=1", testAuth, nil)
	var f flushed
	if err := json.Unmarshal(body, &f); err != nil || resp.StatusCode != http.StatusOK || f.Deleted != len(gone) || !f.Suffix || len(f.Shards) != 4 {
		t.Fatalf("DELETE ?suffix=1: %d %s; want %d keys from 4 shards", resp.StatusCode, body, len(gone))
	}
	if got := redisKeys(t, shards); !slices.Equal(got, slices.Sorted(slices.Values(keep))) {
		t.Errorf("after the suffix flush the shards hold %d keys, want exactly the %d outside it", len(got), len(keep))
	}
}

func TestCacheDeleteBadRequests(t *testing.T) {
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	for _, path := range []string{"/cache/a..b", "/cache/www.example.test?type=A", "/cache/example.test?suffix=maybe"} {
		resp, body := do(t, m.srv, http.MethodDelete, path, testAuth, nil)
		mustJSONError(t, path, resp, body, http.StatusBadRequest)
	}
	resp, body := do(t, m.srv, http.MethodPut, "/cache/www.example.test", nil, nil)
	mustJSONError(t, "PUT", resp, body, http.StatusMethodNotAllowed)
	// Without a Cache there are no /cache routes.
	plain := serve(t, New(Config{Chain: m.fe.Chain}))
	code, _, _ := get(t, plain, http.MethodGet, "/cache/www.example.test")
	if code != http.StatusNotFound {
		t.Errorf("/cache without a Cache: %d", code)
	}
}
