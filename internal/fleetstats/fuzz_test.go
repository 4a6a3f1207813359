package fleetstats

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// hashFromLines turns "field=value" lines into a hash as HGETALL gives it.
func hashFromLines(s string) map[string]string {
	h := map[string]string{}
	for line := range strings.Lines(s) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		h[k] = v
	}
	return h
}

func FuzzParseFrontend(f *testing.F) {
	f.Add("kind=dnsd\nstarted_at=1893553445000\nupdated_at=1893553447000\ninterval_ms=5000\nqueries=22\n" +
		"l1_hits=10\nredis_hits=5\nmisses=3\nstale=2\nerrors=2\nqps=11.000\np50_ms=3.125\np90_ms=375.000\np99_ms=487.500")
	f.Add("updated_at=0")
	f.Add("kind=x")
	f.Add("updated_at=1\nqps=NaN")
	f.Add("updated_at=1\np99_ms=+Inf")
	f.Add("updated_at=1\nqueries=-1")
	f.Add("updated_at=99999999999999999999")
	f.Add("updated_at=1\nqps=1e400")
	f.Add("updated_at=1\nqueries=18446744073709551615")
	f.Add("updated_at=1\nqueries=1\nl1_hits=9223372036854775807\nredis_hits=9223372036854775807")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		h := hashFromLines(s)
		fr, err := ParseFrontend("id", h, now)
		if err != nil {
			return
		}
		if _, ok := h["updated_at"]; !ok {
			t.Fatal("accepted a hash without updated_at")
		}
		if fr.AgeMs < 0 || fr.IntervalMs < 0 {
			t.Fatalf("negative age or interval: %+v", fr)
		}
		if fr.HitRatio != nil && (*fr.HitRatio < 0 || *fr.HitRatio > 1) {
			t.Fatalf("hit ratio %v", *fr.HitRatio)
		}
		if _, err := json.Marshal(Sum([]Frontend{fr, fr})); err != nil {
			t.Fatalf("fleet of a parsed frontend does not encode: %v", err)
		}
		if _, err := json.Marshal(fr); err != nil {
			t.Fatalf("parsed frontend does not encode: %v", err)
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	f.Add("# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:12\r\n\r\n# Memory\r\nused_memory:1000\r\n" +
		"maxmemory:3145728\r\nmaxmemory_policy:allkeys-lru\r\n# Stats\r\nexpired_keys:1\r\nevicted_keys:0\r\n" +
		"keyspace_hits:3\r\nkeyspace_misses:2\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n")
	f.Add("keyspace_hits:18446744073709551615\nkeyspace_misses:1\n")
	f.Add("used_memory:-1\n")
	f.Add(":\n#\n:x\nk:v:w\n")
	f.Fuzz(func(t *testing.T, s string) {
		m := ParseInfo(s)
		for k := range m {
			if k == "" || strings.ContainsAny(k, "\r\n") {
				t.Fatalf("bad field name %q", k)
			}
		}
		var sh Shard
		_ = sh.fill(m)
		if sh.HitRatio != nil && (*sh.HitRatio < 0 || *sh.HitRatio > 1) {
			t.Fatalf("hit ratio %v from %+v", *sh.HitRatio, m)
		}
		if _, err := json.Marshal(sh); err != nil {
			t.Fatalf("shard does not encode: %v", err)
		}
	})
}

func TestParseInfoValues(t *testing.T) {
	m := ParseInfo("# Memory\r\nmaxmemory_policy:allkeys-lfu\r\ndb0:keys=1,expires=0\r\nrole:master\r\n")
	if m["maxmemory_policy"] != "allkeys-lfu" || m["db0"] != "keys=1,expires=0" || m["role"] != "master" || len(m) != 3 {
		t.Errorf("ParseInfo = %v", m)
	}
	var s Shard
	if err := s.fill(map[string]string{"keyspace_hits": "x"}); err == nil {
		t.Error("a malformed counter was accepted")
	}
}
