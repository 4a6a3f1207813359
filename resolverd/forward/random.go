package forward

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"sync"
)

// random draws query IDs and 0x20 case bits from a ChaCha8 stream seeded
// by the operating system's CSPRNG: unpredictable to anyone who sees
// earlier queries, and cheaper per query than a system call.
type random struct {
	mu sync.Mutex
	c  *rand.ChaCha8
}

func newRandom() *random {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read does not fail: on error the program crashes
	return &random{c: rand.NewChaCha8(seed)}
}

// id returns a message ID.
func (r *random) id() uint16 {
	r.mu.Lock()
	v := r.c.Uint64()
	r.mu.Unlock()
	return uint16(v)
}

// randomCase returns name with each ASCII letter in random case (0x20,
// draft-vixie-dnsext-dns0x20): each letter adds a bit a forger must guess.
func (r *random) randomCase(name string) string {
	b := []byte(name)
	var bits uint64
	left := 0
	r.mu.Lock()
	for i, c := range b {
		if l := c | 0x20; l < 'a' || l > 'z' {
			continue
		}
		if left == 0 {
			bits, left = r.c.Uint64(), 64
		}
		if bits&1 == 1 {
			b[i] = c &^ 0x20 // upper
		} else {
			b[i] = c | 0x20 // lower
		}
		bits >>= 1
		left--
	}
	r.mu.Unlock()
	return string(b)
}

// clientCookie returns a fresh 8-byte client cookie (RFC 7873 §4.1) in hex,
// straight from the operating system's CSPRNG.
func clientCookie() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
