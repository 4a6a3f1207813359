package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// servfailEntry is a SERVFAIL answer to testKey's question: no records,
// so no offsets.
func servfailEntry() *Entry {
	msg := []byte{0, 0, 0x81, 0x82, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
	return &Entry{StoredAt: time.UnixMilli(0), TTL: 5, StaleUntil: time.UnixMilli(5000), Msg: msg}
}

func TestEntryRoundTrip(t *testing.T) {
	now := time.Now()
	for _, e := range []*Entry{
		keyed(testKey, testEntry(now, 300*time.Second, time.Hour, 16)),
		keyed(testKey, testEntry(now, 0, time.Second, 512)),
		keyed(testKey, testEntry(now, 86400*time.Second, 24*time.Hour, 4096)),
		servfailEntry(),
	} {
		// Written as version 1, as an older process or an entry version
		// 3 cannot hold is.
		b := e.appendV1(nil)
		if len(b) != e.Size() {
			t.Errorf("len(appendV1) = %d, Size = %d", len(b), e.Size())
		}
		if b[0] != entryV1 {
			t.Errorf("version byte = %d", b[0])
		}
		got, err := Decode(testKey, b)
		if err != nil {
			t.Fatalf("Decode(Encode(e)): %v", err)
		}
		if d := sameEntry(e, got); d != "" {
			t.Errorf("round trip: %s", d)
		}
		if !bytes.Equal(got.appendV1(nil), b) {
			t.Error("re-encoding differs")
		}
		// AppendEncode appends.
		pre := []byte("xyz")
		if out := e.AppendEncode(pre); !bytes.Equal(out[:3], pre) || !bytes.Equal(out[3:], e.Encode()) {
			t.Error("AppendEncode does not append the encoding")
		}
	}
}

func TestEntryTimes(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e := testEntry(now, 60*time.Second, 120*time.Second, 32)
	if !e.Expires().Equal(now.Add(60 * time.Second)) {
		t.Errorf("Expires = %v", e.Expires())
	}
	if e.Age(now.Add(-time.Second)) != 0 {
		t.Error("Age before StoredAt is not 0")
	}
	if e.Age(now.Add(5*time.Second)) != 5*time.Second {
		t.Error("Age wrong")
	}
	for _, c := range []struct {
		at            time.Duration
		fresh, usable bool
	}{
		{0, true, true},
		{59 * time.Second, true, true},
		{60 * time.Second, false, true},
		{119 * time.Second, false, true},
		{120 * time.Second, false, false},
	} {
		at := now.Add(c.at)
		if e.Fresh(at) != c.fresh || e.Usable(at) != c.usable {
			t.Errorf("at +%v: Fresh %v Usable %v, want %v %v", c.at, e.Fresh(at), e.Usable(at), c.fresh, c.usable)
		}
	}
}

// corruptSeeds are encodings Decode must refuse.
func corruptSeeds() map[string][]byte {
	valid := keyed(testKey, testEntry(time.UnixMilli(1_700_000_000_000), 300*time.Second, time.Hour, 64)).appendV1(nil)
	seeds := map[string][]byte{
		"empty":       {},
		"header only": valid[:headerLen],
		"short":       valid[:headerLen-1],
	}
	badVersion := bytes.Clone(valid)
	badVersion[0] = 9
	seeds["version 9"] = badVersion
	v2 := bytes.Clone(valid)
	v2[0] = entryV2
	seeds["version 2"] = v2
	v3 := bytes.Clone(valid)
	v3[0] = entryVersion
	seeds["version 1 bytes read as version 3"] = v3
	zeroVersion := bytes.Clone(valid)
	zeroVersion[0] = 0
	seeds["version 0"] = zeroVersion

	tooMany := bytes.Clone(valid)
	binary.BigEndian.PutUint16(tooMany[22:], 0xffff)
	seeds["offset count too large"] = tooMany

	low := bytes.Clone(valid)
	binary.BigEndian.PutUint16(low[headerLen:], 11)
	seeds["offset inside header"] = low

	n := int(binary.BigEndian.Uint16(valid[22:]))
	msgLen := len(valid) - headerLen - 2*n
	past := bytes.Clone(valid)
	binary.BigEndian.PutUint16(past[headerLen:], uint16(msgLen-3)) // offset+4 > len
	seeds["offset past end"] = past
	huge := bytes.Clone(valid)
	binary.BigEndian.PutUint16(huge[headerLen+2*(n-1):], 0xffff)
	seeds["last offset huge"] = huge

	// Message shorter than a DNS header.
	short := (&Entry{Msg: make([]byte, 12)}).appendV1(nil)
	seeds["11-byte message"] = short[:len(short)-1]
	return seeds
}

// expectCorrupt fails for every seed that Decode takes for an entry, or
// refuses with an error other than ErrCorrupt.
func expectCorrupt(t *testing.T, seeds map[string][]byte) {
	t.Helper()
	for name, b := range seeds {
		e, err := Decode(testKey, b)
		if err == nil {
			t.Errorf("%s: Decode succeeded: %+v", name, e)
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	expectCorrupt(t, corruptSeeds())
	// The last TTL field of this entry ends at the last byte, so every
	// truncation must fail.
	valid := keyed(testKey, testEntry(time.Now(), 300*time.Second, time.Hour, 64)).appendV1(nil)
	for n := range len(valid) {
		if _, err := Decode(testKey, valid[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: Decode succeeded", n, len(valid))
		}
	}
}

func FuzzDecode(f *testing.F) {
	now := time.UnixMilli(1_700_000_000_000)
	for _, e := range []*Entry{
		keyed(testKey, testEntry(now, 300*time.Second, time.Hour, 16)),
		keyed(testKey, testEntry(now, 60*time.Second, time.Minute, 200)),
		servfailEntry(),
	} {
		b := e.appendV1(nil)
		f.Add(testKey, b)
		f.Add(testKey, b[:len(b)/2])
		f.Add(testKey, b[:headerLen])
	}
	for _, b := range corruptSeeds() {
		f.Add(testKey, b)
	}
	for _, b := range corruptV2Seeds() {
		f.Add(testKey, b)
	}
	for _, c := range realAnswers(f) {
		b := c.entry.Encode()
		f.Add(c.key, b)
		f.Add(c.key, b[:len(b)/2])
		f.Add(testKey, b)
		f.Add(c.key+":do", b)
	}
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		e, err := Decode(key, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		if len(e.Msg) < 12 {
			t.Fatalf("message of %d bytes accepted", len(e.Msg))
		}
		// What Decode takes is an answer to key's question that parses.
		m := new(dns.Msg)
		if err := m.Unpack(e.Msg); err != nil {
			t.Fatalf("accepted message does not parse: %v", err)
		}
		var kq [260]byte
		n, err := keyQuestion(key, kq[:])
		if err != nil {
			t.Fatalf("accepted under %q, not a cache key", key)
		}
		var mq [260]byte
		if len(m.Question) != 1 {
			t.Fatalf("accepted with %d questions", len(m.Question))
		}
		q := m.Question[0]
		mn, err := dns.PackDomainName(dnsmsg.LowerName(q.Name), mq[:], 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint16(mq[mn:], q.Qtype)
		binary.BigEndian.PutUint16(mq[mn+2:], q.Qclass)
		if !m.Response || !bytes.Equal(lowerASCII(mq[:mn+4]), lowerASCII(kq[:n])) {
			t.Fatalf("accepted under %q: %v", key, m)
		}
		if len(e.Offsets) != len(m.Answer)+len(m.Ns)+len(m.Extra) {
			t.Fatalf("%d offsets for %d records", len(e.Offsets), len(m.Answer)+len(m.Ns)+len(m.Extra))
		}
		patched := bytes.Clone(e.Msg)
		for _, o := range e.Offsets {
			if o < 12 || int(o)+4 > len(e.Msg) {
				t.Fatalf("offset %d outside a %d-byte message", o, len(e.Msg))
			}
			binary.BigEndian.PutUint32(patched[o:], 1) // patching must not panic
		}
		if b[0] == entryV1 {
			// Re-encoding gives the input back, apart from the reserved flags.
			re := e.appendV1(nil)
			re[1] = b[1]
			if !bytes.Equal(re, b) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, b)
			}
		}
		if b[0] != entryVersion {
			return
		}
		// A version 3 entry's question is its key's, so encoding it again
		// and decoding it under the same key gives the same entry.
		again, err := Decode(key, e.Encode())
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if d := sameEntry(e, again); d != "" {
			t.Fatalf("re-encoded entry differs: %s", d)
		}
	})
}

// lowerASCII lowercases the ASCII letters of b in place.
func lowerASCII(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func BenchmarkEntryDecode(b *testing.B) {
	enc := keyed(testKey, testEntry(time.Now(), 300*time.Second, time.Hour, 300)).appendV1(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Decode(testKey, enc); err != nil {
			b.Fatal(err)
		}
	}
}
