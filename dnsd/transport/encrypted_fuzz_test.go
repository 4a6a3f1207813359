package transport

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzDoHRequest decodes arbitrary DoH requests: GET's query string and
// POST's body and content type. Each either yields a message of a DNS
// header at least and at most 65,535 bytes, or is refused with one of
// RFC 8484's statuses and a reason; nothing panics.
func FuzzDoHRequest(f *testing.F) {
	q := []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}
	enc := base64.RawURLEncoding.EncodeToString(q)
	f.Add("GET", "dns="+enc, "", int64(-1), []byte(nil))
	f.Add("GET", "dns="+enc+"==", "", int64(-1), []byte(nil))
	f.Add("GET", "dns="+enc+"&dns="+enc, "", int64(-1), []byte(nil))
	f.Add("GET", "dns=%zz", "", int64(-1), []byte(nil))
	f.Add("GET", "ct=application/dns-message&dns=AAAB", "", int64(-1), []byte(nil))
	f.Add("POST", "", "application/dns-message", int64(len(q)), q)
	f.Add("POST", "", "application/dns-message; charset=x", int64(-1), q)
	f.Add("POST", "", "application/json", int64(len(q)), q)
	f.Add("POST", "", "application/dns-message", int64(70000), q)
	f.Add("POST", "", "application/dns-message", int64(-1), q[:5])
	f.Add("PUT", "", "application/dns-message", int64(len(q)), q)
	f.Fuzz(func(t *testing.T, method, rawQuery, ctype string, length int64, body []byte) {
		msg, derr := dohQuery(method, rawQuery, ctype, length, bytes.NewReader(body))
		if derr != nil {
			if msg != nil {
				t.Fatalf("a message and an error: %v", derr)
			}
			switch derr.status {
			case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			default:
				t.Fatalf("status %d: %v", derr.status, derr)
			}
			if derr.msg == "" {
				t.Fatal("an error without a reason")
			}
			return
		}
		if len(msg) < headerLen || len(msg) > maxDoHMessage {
			t.Fatalf("a message of %d bytes accepted", len(msg))
		}
		switch method {
		case http.MethodPost:
			if !bytes.Equal(msg, body) {
				t.Fatal("POST: the message is not the body")
			}
		case http.MethodGet:
			if !strings.Contains(rawQuery, "dns=") {
				t.Fatalf("GET %q: a message without a dns parameter", rawQuery)
			}
		default:
			t.Fatalf("method %q accepted", method)
		}
	})
}

// FuzzDoQStream reads arbitrary bytes as one DoQ stream. The reader
// either returns the one message the stream frames (a 2-byte length that
// covers the rest exactly, a DNS header at least, message ID 0), or a
// protocol error saying what is wrong; nothing panics.
func FuzzDoQStream(f *testing.F) {
	q := []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}
	framed := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
	framed = append(framed, q...)
	f.Add(framed)
	f.Add(append(append([]byte(nil), framed...), framed...)) // two queries on a stream
	f.Add(framed[:10])                                       // ended early
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Add([]byte{0, 5, 1, 2, 3, 4, 5})
	withID := append([]byte(nil), framed...)
	withID[2] = 0x12 // message ID 0x1200
	f.Add(withID)
	f.Fuzz(func(t *testing.T, stream []byte) {
		msg, err := readDoQQuery(bytes.NewReader(stream))
		if err != nil {
			var pe *doqProtocolErr
			if !errors.As(err, &pe) {
				t.Fatalf("a reader of bytes gave a non-protocol error: %v", err)
			}
			if msg != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		if len(stream) < 2 || int(binary.BigEndian.Uint16(stream)) != len(stream)-2 || !bytes.Equal(msg, stream[2:]) {
			t.Fatalf("accepted %x from a stream that does not frame exactly one message", msg)
		}
		if len(msg) < headerLen || msg[0] != 0 || msg[1] != 0 {
			t.Fatalf("accepted %x: short, or message ID not 0", msg)
		}
	})
}

// The DoQ reader's errors say what is wrong.
func TestDoQStreamErrors(t *testing.T) {
	q := []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}
	framed := append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)
	withID := append([]byte(nil), framed...)
	withID[3] = 7
	for _, tc := range []struct {
		stream []byte
		want   string
	}{
		{nil, "stream ended after 0 bytes"},
		{framed[:1], "stream ended after 1 bytes"},
		{[]byte{0, 3, 1, 2, 3}, "length 3 is shorter than a DNS header"},
		{framed[:9], "stream ended after 7 of the 17 bytes"},
		{append(append([]byte(nil), framed...), 0), "data after the 17-byte query"},
		{withID, "message ID 7, want 0"},
	} {
		_, err := readDoQQuery(bytes.NewReader(tc.stream))
		var pe *doqProtocolErr
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%x: %v, want a protocol error saying %q", tc.stream, err, tc.want)
		}
	}
	if msg, err := readDoQQuery(bytes.NewReader(framed)); err != nil || !bytes.Equal(msg, q) {
		t.Errorf("a good stream: %x, %v", msg, err)
	}
}

// replyMaxAge: the smallest answer TTL, else the SOA's negative TTL
// (the smaller of its TTL and MINIMUM), else 0.
func TestReplyMaxAge(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	soa := "example.test. %d IN SOA ns1.example.test. h.example.test. 1 7200 900 1209600 %d"
	for _, tc := range []struct {
		name   string
		answer []dns.RR
		ns     []dns.RR
		want   uint32
	}{
		{"answers", []dns.RR{rr("a.test. 300 IN A 192.0.2.1"), rr("a.test. 40 IN A 192.0.2.2"), rr("a.test. 90 IN A 192.0.2.3")}, nil, 40},
		{"answers and authority", []dns.RR{rr("a.test. 300 IN A 192.0.2.1")}, []dns.RR{rr(fmt.Sprintf(soa, 5, 5))}, 300},
		{"negative, SOA TTL smaller", nil, []dns.RR{rr(fmt.Sprintf(soa, 30, 60))}, 30},
		{"negative, MINIMUM smaller", nil, []dns.RR{rr(fmt.Sprintf(soa, 3600, 60))}, 60},
		{"nothing", nil, nil, 0},
	} {
		m := new(dns.Msg)
		m.SetQuestion("a.test.", dns.TypeA)
		m.Response, m.Answer, m.Ns = true, tc.answer, tc.ns
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if got := replyMaxAge(b); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := replyMaxAge([]byte{1, 2, 3}); got != 0 {
		t.Errorf("garbage: %d, want 0", got)
	}
}
