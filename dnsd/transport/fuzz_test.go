package transport_test

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/shardns/shardns/dnsd/transport"
)

// completeFrames counts the messages the server must hand to its handler
// from a TCP stream: every whole length-prefixed message up to the first
// length below a DNS header, or the end.
func completeFrames(stream []byte) int {
	n := 0
	for len(stream) >= 2 {
		l := int(binary.BigEndian.Uint16(stream))
		if l < 12 || len(stream)-2 < l {
			break
		}
		n++
		stream = stream[2+l:]
	}
	return n
}

// FuzzTCPStream sends arbitrary bytes on a TCP connection, then half-closes
// it. The server must hand exactly the whole messages before the first bad
// length to the handler, answer them, close the connection, and keep
// serving.
func FuzzTCPStream(f *testing.F) {
	q := query(f, "seed", 0x0102)
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(framed(q))
	f.Add(framed(q, q, q))
	f.Add(framed(q, make([]byte, 11), q))
	f.Add(append(framed(q), 0, 0))
	f.Add(framed(make([]byte, 12)))
	f.Add(framed(q)[:len(q)])
	f.Add([]byte{0xff, 0xff, 1, 2, 3})
	f.Add(append(framed(q), framed(q)[:5]...))

	h := newHandler()
	e := start(f, h, transport.Config{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		want := completeFrames(stream)
		before := h.calls.Load()
		c := dialTCP(t, e.tcp)
		_ = c.SetWriteDeadline(time.Now().Add(hangBound))
		_, werr := c.Write(stream) // the server may close first
		if werr == nil {
			_ = c.CloseWrite()
		}
		got := 0
		for {
			b, err := readFrame(c, hangBound)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("connection still open %v after the stream ended", hangBound)
				}
				break
			}
			replyID(t, b)
			got++
		}
		// The connection closes only after every call for it returned.
		if calls := h.calls.Load() - before; calls != int64(want) {
			t.Errorf("handler called %d times, want %d", calls, want)
		}
		if got > want || (werr == nil && got != want) {
			t.Errorf("%d replies, want %d", got, want)
		}
	})
}
