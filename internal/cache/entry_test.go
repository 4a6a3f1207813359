package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestEntryRoundTrip(t *testing.T) {
	now := time.Now()
	for _, e := range []*Entry{
		testEntry(now, 300*time.Second, time.Hour, 16),
		testEntry(now, 0, time.Second, 512),
		testEntry(now, 86400*time.Second, 24*time.Hour, 4096),
		{StoredAt: time.UnixMilli(0), Msg: make([]byte, 12)}, // no offsets
	} {
		// These messages are not answers (ID and counts are not those of
		// an answer), so they are written as version 1.
		b := e.Encode()
		if len(b) != e.Size() {
			t.Errorf("len(Encode) = %d, Size = %d", len(b), e.Size())
		}
		if b[0] != entryV1 {
			t.Errorf("version byte = %d", b[0])
		}
		got, err := Decode("", b)
		if err != nil {
			t.Fatalf("Decode(Encode(e)): %v", err)
		}
		if d := sameEntry(e, got); d != "" {
			t.Errorf("round trip: %s", d)
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Error("re-encoding differs")
		}
		// AppendEncode appends.
		pre := []byte("xyz")
		if out := e.AppendEncode(pre); !bytes.Equal(out[:3], pre) || !bytes.Equal(out[3:], b) {
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
	valid := testEntry(time.UnixMilli(1_700_000_000_000), 300*time.Second, time.Hour, 64).Encode()
	seeds := map[string][]byte{
		"empty":       {},
		"header only": valid[:headerLen],
		"short":       valid[:headerLen-1],
	}
	badVersion := bytes.Clone(valid)
	badVersion[0] = 3
	seeds["version 3"] = badVersion
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
	short := (&Entry{Msg: make([]byte, 12)}).Encode()
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
	valid := testEntry(time.Now(), 300*time.Second, time.Hour, 64).Encode()
	for n := range len(valid) {
		if _, err := Decode(testKey, valid[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: Decode succeeded", n, len(valid))
		}
	}
}

func FuzzDecode(f *testing.F) {
	now := time.UnixMilli(1_700_000_000_000)
	for _, e := range []*Entry{
		testEntry(now, 300*time.Second, time.Hour, 16),
		testEntry(now, 60*time.Second, time.Minute, 200),
		{Msg: make([]byte, 12)},
	} {
		b := e.Encode()
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
		// A version 2 entry's question is its key's, so encoding it again
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

func BenchmarkEntryDecode(b *testing.B) {
	enc := testEntry(time.Now(), 300*time.Second, time.Hour, 300).Encode()
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Decode(testKey, enc); err != nil {
			b.Fatal(err)
		}
	}
}
