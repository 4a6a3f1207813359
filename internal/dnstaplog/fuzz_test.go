package dnstaplog_test

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/internal/testutil/dnstaptest"
)

// Whatever bytes a client sends and is sent, dnstap carries them as they
// were: the library reads back the same query and response messages.
func FuzzClientBytes(f *testing.F) {
	q, r := pair(f, "www.example.com.", 7)
	f.Add(q, r)
	f.Add([]byte{}, []byte{0, 1, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0, 0xfe}, []byte{})
	f.Fuzz(func(t *testing.T, query, resp []byte) {
		path := filepath.Join(t.TempDir(), "f.tap")
		l, err := dnstaplog.Open(dnstaplog.Config{Target: path, Identity: "fuzz"})
		if err != nil {
			t.Fatal(err)
		}
		l.Client(dnstaplog.UDP, netip.MustParseAddrPort("127.0.0.1:53"), time.Unix(1, 0), time.Unix(2, 0), query, resp)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		fs := dnstaptest.ReadFile(t, path)
		if len(fs) != 2 {
			t.Fatalf("%d frames, want 2", len(fs))
		}
		if got := fs[0].Message.GetQueryMessage(); !bytes.Equal(got, query) {
			t.Errorf("query %x, want %x", got, query)
		}
		if got := fs[1].Message.GetResponseMessage(); !bytes.Equal(got, resp) {
			t.Errorf("response %x, want %x", got, resp)
		}
	})
}
