package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// openAPIQueue is a work queue on its own real redis-server, as cacheapi
// runs with -queue-redis.
func openAPIQueue(t *testing.T) (*queue.Queue, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	q, err := queue.New(queue.Config{Client: rs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return q, rs
}

// withContentType is h with a Content-Type added.
func withContentType(h http.Header, ctype string) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	out.Set("Content-Type", ctype)
	return out
}

// openAPIJobs covers /jobs and /jobs/{id} over the real queue q: a job
// in every body format, jobs run to their end by the queue's own calls
// (one completed, one canceled), listing, bad bodies, parameters and
// credentials, a body over the limit. It returns the IDs of two jobs for
// the checks with the queue's Redis down.
func openAPIJobs(t *testing.T, c *conformance, srv *httptest.Server, auth http.Header, q *queue.Queue) (string, string) {
	t.Helper()
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	jsonAuth := withContentType(auth, "application/json")
	csvAuth := withContentType(auth, "text/csv")

	submit := func(target string, h http.Header, body string, total int64, source string) queue.Job {
		t.Helper()
		resp, got := c.send(t, srv, post, target, h, []byte(body))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: status %d, want 202: %s", target, resp.StatusCode, got)
		}
		j := decodeJob(t, got)
		if j.Total != total || j.Source != source || j.State != queue.JobRunning || j.Pending != total {
			t.Errorf("POST %s: job %+v, want %d pending of %d from %q", target, j, total, total, source)
		}
		if loc := resp.Header.Get("Location"); loc != "/jobs/"+j.ID {
			t.Errorf("POST %s: Location %q, want /jobs/%s", target, loc, j.ID)
		}
		return j
	}
	// The queue orders jobs by their creation time in milliseconds: jobs
	// made within one millisecond may list in either order, so these are
	// made a few milliseconds apart.
	done := submit("/jobs", jsonAuth, `{"names":["www.example.test","txt.example.test"],"type":"TXT"}`, 2, "json")
	time.Sleep(3 * time.Millisecond)
	canceled := submit("/jobs", jsonAuth, `{"items":[{"name":"www.example.test","type":"AAAA"},{"name":"example.test"}],"type":"NS"}`, 2, "json")
	time.Sleep(3 * time.Millisecond)
	last := submit("/jobs?type=AAAA", csvAuth, "1,www.example.test\n2,mail.example.test\n", 2, "csv")

	// Cancel one job while it runs, then let a worker's calls end the
	// first two jobs: done, and canceled unrun.
	if j := decodeJob(t, c.expect(t, srv, 200, del, "/jobs/"+canceled.ID, auth, nil)); j.State != queue.JobCanceled {
		t.Errorf("DELETE a running job: state %q, want canceled", j.State)
	}
	for i := range 4 {
		task, err := q.Claim(t.Context(), "openapi-test", time.Second)
		state := queue.StateDone
		switch {
		case i >= 2 && errors.Is(err, queue.ErrCanceled):
			state = queue.StateCanceled
		case err != nil || task == nil:
			t.Fatalf("claim %d: %v, %v", i, task, err)
		}
		if ok, err := q.Finish(t.Context(), task.ID, state, ""); !ok || err != nil {
			t.Fatalf("finish %s as %s: %v %v", task.ID, state, ok, err)
		}
	}
	for _, w := range []struct {
		id, state      string
		done, canceled int64
	}{{done.ID, queue.JobFinished, 2, 0}, {canceled.ID, queue.JobCanceled, 0, 2}} {
		j := decodeJob(t, c.expect(t, srv, 200, get, "/jobs/"+w.id, nil, nil))
		if j.State != w.state || j.Done != w.done || j.Canceled != w.canceled || j.Pending != 0 || j.Finished.IsZero() {
			t.Errorf("GET /jobs/%s: %+v, want %s with %d done, %d canceled, a finish time", w.id, j, w.state, w.done, w.canceled)
		}
	}
	// Cancelling an ended job leaves it as it is.
	if j := decodeJob(t, c.expect(t, srv, 200, del, "/jobs/"+done.ID, auth, nil)); j.State != queue.JobFinished {
		t.Errorf("DELETE a finished job: state %q, want finished", j.State)
	}

	want := queueCounts{Pending: 2, Completed: 4}
	openAPIJobList(t, c, srv, "/jobs", 3, last.ID, want)
	openAPIJobList(t, c, srv, "/jobs?limit=2", 2, last.ID, want)

	openAPIJobErrors(t, c, srv, auth)
	// None of the refused requests queued anything.
	openAPIJobList(t, c, srv, "/jobs?limit=1000", 3, last.ID, want)
	return done.ID, canceled.ID
}

// openAPIJobList checks GET target lists n jobs, newest first, and the
// queue's lengths.
func openAPIJobList(t *testing.T, c *conformance, srv *httptest.Server, target string, n int, newest string, want queueCounts) {
	t.Helper()
	var list jobList
	if err := json.Unmarshal(c.expect(t, srv, 200, http.MethodGet, target, nil, nil), &list); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	if len(list.Jobs) != n || (n > 0 && list.Jobs[0].ID != newest) || list.Queue != want {
		t.Errorf("GET %s: %d jobs, the newest %v, queue %+v; want %d, %s, %+v", target, len(list.Jobs), list.Jobs, list.Queue, n, newest, want)
	}
}

// openAPIJobErrors covers the refused /jobs requests: bad bodies and
// parameters, credentials, media types, a body over the limit, unknown
// jobs.
func openAPIJobErrors(t *testing.T, c *conformance, srv *httptest.Server, auth http.Header) {
	t.Helper()
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	jsonAuth := withContentType(auth, "application/json")
	csvAuth := withContentType(auth, "text/csv")
	for _, r := range []struct {
		header http.Header
		body   string
	}{
		{jsonAuth, `{"names":["www.example.test"],"extra":1}`},
		{jsonAuth, `{"names":[]}`},
		{jsonAuth, `{"names":["a..b"]}`},
		{jsonAuth, `{"items":[{"name":"www.example.test","type":"BOGUS"}]}`},
		{csvAuth, ""},
		{csvAuth, "good.example\nbad..name\n"},
		{csvAuth, "a,\"b\n"},
	} {
		c.expect(t, srv, 400, post, "/jobs", r.header, []byte(r.body))
	}
	for _, target := range []string{"/jobs?limit=0", "/jobs?limit=1001", "/jobs?limit=x"} {
		c.expect(t, srv, 400, get, target, nil, nil)
	}

	wrong := http.Header{"Authorization": {"Bearer wrong"}}
	crossSite := withContentType(auth, "text/csv")
	crossSite.Set("Origin", "https://evil.example")
	c.expect(t, srv, 401, post, "/jobs", http.Header{"Content-Type": {"text/csv"}}, []byte("www.example.test\n"))
	c.expect(t, srv, 401, post, "/jobs", withContentType(wrong, "text/csv"), []byte("www.example.test\n"))
	c.expect(t, srv, 403, post, "/jobs", crossSite, []byte("www.example.test\n"))
	c.expect(t, srv, 401, del, "/jobs/0123456789ab", nil, nil)
	c.expect(t, srv, 401, del, "/jobs/0123456789ab", wrong, nil)
	crossSite.Del("Content-Type")
	c.expect(t, srv, 403, del, "/jobs/0123456789ab", crossSite, nil)

	c.expect(t, srv, 415, post, "/jobs", withContentType(auth, "application/xml"), []byte("<names/>"))
	c.expect(t, srv, 415, post, "/jobs", auth, []byte("www.example.test\n"))
	c.expect(t, srv, 415, post, "/jobs", withContentType(auth, "text/plain"), []byte("www.example.test\n"))
	c.expect(t, srv, 415, post, "/jobs", withContentType(auth, "multipart/form-data; boundary=x"), []byte("--x\r\n\r\nwww.example.test\r\n--x--\r\n"))
	c.expect(t, srv, 415, post, "/jobs", withContentType(auth, "application/x-www-form-urlencoded"), []byte("names=www.example.test"))

	// Over 64 MiB of names of 200 bytes: 413.
	line := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example.test\n"
	c.expect(t, srv, 413, post, "/jobs", csvAuth, []byte(strings.Repeat(line, maxJobBody/len(line)+1)))

	c.expect(t, srv, 404, get, "/jobs/0123456789ab", nil, nil)
	c.expect(t, srv, 404, del, "/jobs/0123456789ab", auth, nil)
}

// openAPINoQueue covers /jobs on a server without a work queue: 404 to
// every documented method, 405 to the others.
func openAPINoQueue(t *testing.T, c *conformance, auth http.Header) {
	t.Helper()
	m := newMember(t, testFlags(nil), zoneResolver(t, nil), nil)
	for _, r := range []struct {
		method, target string
		header         http.Header
		body           string
	}{
		{http.MethodGet, "/jobs", nil, ""},
		{http.MethodPost, "/jobs", withContentType(auth, "application/json"), `{"names":["www.example.test"]}`},
		{http.MethodGet, "/jobs/0123456789ab", nil, ""},
		{http.MethodDelete, "/jobs/0123456789ab", auth, ""},
	} {
		var body []byte
		if r.body != "" {
			body = []byte(r.body)
		}
		if got := c.expect(t, m.srv, 404, r.method, r.target, r.header, body); !bytes.Contains(got, []byte("-queue-redis")) {
			t.Errorf("%s %s without a queue: %s, want the error to name -queue-redis", r.method, r.target, got)
		}
	}
	c.expect(t, m.srv, 405, http.MethodPut, "/jobs", nil, nil)
	c.expect(t, m.srv, 405, http.MethodPost, "/jobs/0123456789ab", nil, nil)
}
