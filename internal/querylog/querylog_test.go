package querylog

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exchange is a query for name and type t and a reply with rcode.
func exchange(t testing.TB, name string, qt uint16, rcode int) (q, r []byte) {
	t.Helper()
	qm := new(dns.Msg)
	qm.SetQuestion(name, qt)
	rm := new(dns.Msg)
	rm.SetRcode(qm, rcode)
	if rcode == dns.RcodeBadCookie { // an extended RCODE travels in OPT
		rm.SetEdns0(1232, false)
		rm.Rcode = rcode
	}
	var err error
	if q, err = qm.Pack(); err != nil {
		t.Fatal(err)
	}
	if r, err = rm.Pack(); err != nil {
		t.Fatal(err)
	}
	return q, r
}

// lines reads path's JSON lines.
func lines(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Entry
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.log")
	l, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("192.0.2.7:53211")
	t0 := time.Date(2026, 12, 7, 2, 30, 0, 123456000, time.UTC)
	q, r := exchange(t, "WwW.Example.COM.", dns.TypeAAAA, dns.RcodeSuccess)
	l.Log("udp", client, t0, t0.Add(41*time.Microsecond), "l1", q, r)
	q2, r2 := exchange(t, "x.test.", dns.TypeMX, dns.RcodeBadCookie)
	l.Log("tcp", client, t0, t0.Add(2*time.Millisecond), "badcookie", q2, r2)
	// A FORMERR to garbage: no question in either message.
	l.Log("udp", client, t0, t0, "formerr", []byte{1, 2, 3}, []byte{1, 2, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	q[12] = 'X' // Log copies
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, path)
	want := []Entry{
		{Time: t0, Client: "192.0.2.7:53211", Proto: "udp", QName: "WwW.Example.COM.", QType: "AAAA", Rcode: "NOERROR", Source: "l1", DurationUS: 41, Size: len(r)},
		{Time: t0, Client: "192.0.2.7:53211", Proto: "tcp", QName: "x.test.", QType: "MX", Rcode: "BADCOOKIE", Source: "badcookie", DurationUS: 2000, Size: len(r2)},
		{Time: t0, Client: "192.0.2.7:53211", Proto: "udp", Rcode: "FORMERR", Source: "formerr", Size: 12},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) {
			t.Errorf("line %d: time %v, want %v", i, got[i].Time, want[i].Time)
		}
		got[i].Time = want[i].Time
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// One query in N is logged.
func TestSample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.log")
	l, err := Open(Config{Path: path, Sample: 4})
	if err != nil {
		t.Fatal(err)
	}
	q, r := exchange(t, "a.test.", dns.TypeA, dns.RcodeSuccess)
	for range 100 {
		if l.Sampled() {
			l.Log("udp", netip.MustParseAddrPort("127.0.0.1:1"), time.Now(), time.Now(), "l1", q, r)
		}
	}
	l.Close()
	if n := len(lines(t, path)); n != 25 {
		t.Errorf("%d lines of 100 queries sampled 1 in 4, want 25", n)
	}
}

// logrotate's way: the file is renamed, Reopen, and new lines go to a new
// file at the path while the old lines stay in the renamed one.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.log")
	l, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	q, r := exchange(t, "old.test.", dns.TypeA, dns.RcodeSuccess)
	logged := func(name string) {
		q, r := exchange(t, name, dns.TypeA, dns.RcodeSuccess)
		l.Log("udp", netip.MustParseAddrPort("127.0.0.1:1"), time.Now(), time.Now(), "l1", q, r)
	}
	l.Log("udp", netip.MustParseAddrPort("127.0.0.1:1"), time.Now(), time.Now(), "l1", q, r)
	waitLines(t, path, 1)
	rotated := filepath.Join(dir, "q.log.1")
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	logged("between.test.") // written to the renamed file, still open
	waitLines(t, rotated, 2)
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	logged("new.test.")
	waitLines(t, path, 1)
	if got := lines(t, rotated); len(got) != 2 || got[0].QName != "old.test." || got[1].QName != "between.test." {
		t.Errorf("rotated file: %+v", got)
	}
	if got := lines(t, path); len(got) != 1 || got[0].QName != "new.test." {
		t.Errorf("new file: %+v", got)
	}

	// A path that cannot be opened keeps the current file.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil { // a folder in its place
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil || !strings.HasPrefix(err.Error(), "query log: ") {
		t.Fatalf("Reopen onto a folder: %v", err)
	}
	logged("kept.test.")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, rotated); len(got) != 2 {
		t.Errorf("the rotated file got %d lines after Reopen, want its 2", len(got))
	}
	if err := l.Reopen(); err == nil {
		t.Error("Reopen after Close succeeded")
	}
}

// waitLines waits until path holds n lines.
func waitLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "\n") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q, want %d lines", path, b, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A full queue drops, and counts, rather than wait.
func TestDropsWhenFull(t *testing.T) {
	l, err := Open(Config{Path: filepath.Join(t.TempDir(), "q.log"), Queue: 1})
	if err != nil {
		t.Fatal(err)
	}
	q, r := exchange(t, "a.test.", dns.TypeA, dns.RcodeSuccess)
	l.mu.Lock() // the writer stalls on its first line, as on a slow disk
	for range 50 {
		l.Log("udp", netip.MustParseAddrPort("127.0.0.1:1"), time.Now(), time.Now(), "l1", q, r)
	}
	l.mu.Unlock()
	if d := l.Dropped(); d < 48 {
		t.Errorf("Dropped() = %d, want at least 48 of 50 with a queue of 1", d)
	}
	l.Close()
}

func TestOpenErrors(t *testing.T) {
	for _, c := range []Config{{}, {Path: "x", Sample: -1}, {Path: filepath.Join(t.TempDir(), "no", "dir", "q.log")}} {
		l, err := Open(c)
		if err == nil {
			l.Close()
			t.Errorf("Open(%+v) succeeded", c)
		} else if !strings.HasPrefix(err.Error(), "query log: ") {
			t.Errorf("Open(%+v): %v", c, err)
		}
	}
}

// Whatever bytes a client sends and whatever dnsd answers, a line is one
// JSON object that reads back.
func FuzzEntry(f *testing.F) {
	q, r := exchange(f, "www.example.com.", dns.TypeA, dns.RcodeSuccess)
	f.Add(q, r)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 1, 2}, []byte{0, 1, 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0})
	q2, r2 := exchange(f, "x.", dns.TypeTXT, dns.RcodeBadCookie)
	f.Add(q2, r2[:len(r2)-3])
	f.Fuzz(func(t *testing.T, q, r []byte) {
		it := item{at: time.Unix(1, 0), end: time.Unix(2, 0), client: netip.MustParseAddrPort("[::1]:53"), proto: "udp", source: "l1", query: q, reply: r}
		line := AppendLine(nil, entryOf(&it))
		if len(line) == 0 || line[len(line)-1] != '\n' || strings.Count(string(line), "\n") != 1 {
			t.Fatalf("not one line: %q", line)
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if e.Size != len(r) || e.DurationUS != 1_000_000 {
			t.Fatalf("%+v", e)
		}
	})
}
