package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// jobsServer is the API with a real queue on a real Redis, and a token.
func jobsServer(t *testing.T) (*httptest.Server, *queue.Queue) {
	t.Helper()
	rs := redistest.Start(t)
	q, err := queue.New(queue.Config{Client: rs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	return serve(t, New(Config{Chain: f.chain, Jobs: q, Token: "s3cret"})), q
}

func send(t *testing.T, srv *httptest.Server, method, path, ctype, token string, body io.Reader) (int, []byte) {
	t.Helper()
	// A did-not-hang bound: the 64 MiB upload of TestJobsErrors takes
	// 10 to 20 s under the race detector on a busy machine.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !json.Valid(b) {
		t.Errorf("%s %s: body is not JSON: %q", method, path, b)
	}
	return resp.StatusCode, b
}

func decodeJob(t *testing.T, b []byte) queue.Job {
	t.Helper()
	var j queue.Job
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("not a job: %v: %s", err, b)
	}
	return j
}

// queued lists the items waiting in the queue, oldest first.
func queued(t *testing.T, q *queue.Queue) []queue.Item {
	t.Helper()
	ids, err := q.Client().LRange(t.Context(), q.Key("pending"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []queue.Item
	for i := len(ids) - 1; i >= 0; i-- {
		task, err := q.Task(t.Context(), ids[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, queue.Item{Name: task.Name, Type: task.Type})
	}
	return out
}

func TestJobsSubmitFormats(t *testing.T) {
	for _, c := range []struct {
		desc, ctype, path, body string
		want                    []queue.Item
	}{
		{"json names", "application/json", "/jobs", `{"names":["www.example.com","Mail.Example.com."],"type":"aaaa"}`,
			[]queue.Item{{Name: "www.example.com.", Type: "AAAA"}, {Name: "Mail.Example.com.", Type: "AAAA"}}},
		{"json items", "application/json", "/jobs", `{"items":[{"name":"a.example","type":"MX"},{"name":"b.example"}]}`,
			[]queue.Item{{Name: "a.example.", Type: "MX"}, {Name: "b.example.", Type: "A"}}},
		{"csv names", "text/csv", "/jobs", "www.example.com\n\n# comment\nexample.org\n",
			[]queue.Item{{Name: "www.example.com.", Type: "A"}, {Name: "example.org.", Type: "A"}}},
		{"csv names and types", "text/csv; charset=utf-8", "/jobs?type=TXT", "a.example,MX\nb.example,\nc.example,28\n",
			[]queue.Item{{Name: "a.example.", Type: "MX"}, {Name: "b.example.", Type: "TXT"}, {Name: "c.example.", Type: "AAAA"}}},
		{"csv rank,domain", "text/csv", "/jobs", "1,google.com\n2,facebook.com\n",
			[]queue.Item{{Name: "google.com.", Type: "A"}, {Name: "facebook.com.", Type: "A"}}},
		{"csv header", "text/csv", "/jobs", "rank,type,Domain\n1,NS,example.net\n",
			[]queue.Item{{Name: "example.net.", Type: "NS"}}},
	} {
		t.Run(c.desc, func(t *testing.T) {
			srv, q := jobsServer(t)
			code, body := send(t, srv, http.MethodPost, c.path, c.ctype, "s3cret", strings.NewReader(c.body))
			if code != http.StatusAccepted {
				t.Fatalf("status %d: %s", code, body)
			}
			j := decodeJob(t, body)
			if j.Total != int64(len(c.want)) || j.State != queue.JobRunning || j.ID == "" {
				t.Fatalf("job %+v", j)
			}
			got := queued(t, q)
			if len(got) != len(c.want) {
				t.Fatalf("queued %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("item %d: %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
}

// TestJobsTakeOnlyJSONAndCSV: the body types a web page of another site
// can send without a CORS preflight (text/plain, multipart/form-data,
// application/x-www-form-urlencoded) are refused with 415 even with the
// token, and nothing is queued.
func TestJobsTakeOnlyJSONAndCSV(t *testing.T) {
	srv, q := jobsServer(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "top.csv")
	io.WriteString(fw, "1,one.example\n2,two.example\n")
	mw.Close()
	for _, c := range []struct{ ctype, body string }{
		{"text/plain", "one.example\n"},
		{"text/plain; charset=utf-8", "one.example\n"},
		{mw.FormDataContentType(), buf.String()},
		{"application/x-www-form-urlencoded", "names=one.example"},
		{"", "one.example\n"},
		{"text/csv; charset=utf-8; x=\"", "one.example\n"},
		{"application/jsonx", `{"names":["one.example"]}`},
	} {
		code, body := send(t, srv, http.MethodPost, "/jobs", c.ctype, "s3cret", strings.NewReader(c.body))
		if code != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d %s, want 415", c.ctype, code, body)
		}
	}
	if n := len(queued(t, q)); n != 0 {
		t.Errorf("refused bodies queued %d tasks", n)
	}
	for _, ctype := range []string{"application/json; charset=utf-8", "text/csv", "TEXT/CSV"} {
		body := "one.example\n"
		if strings.Contains(ctype, "json") {
			body = `{"names":["one.example"]}`
		}
		if code, b := send(t, srv, http.MethodPost, "/jobs", ctype, "s3cret", strings.NewReader(body)); code != http.StatusAccepted {
			t.Errorf("Content-Type %q: %d %s, want 202", ctype, code, b)
		}
	}
}

func TestJobsErrors(t *testing.T) {
	srv, q := jobsServer(t)
	for _, c := range []struct {
		method, path, ctype, token, body string
		code                             int
		msg                              string
	}{
		{"POST", "/jobs", "text/csv", "", "a.example\n", 401, ""},
		{"POST", "/jobs", "text/csv", "wrong", "a.example\n", 401, ""},
		{"POST", "/jobs", "text/csv", "s3cret", "", 400, "no names"},
		{"POST", "/jobs", "text/csv", "s3cret", "good.example\nbad..name\nx.example,BOGUS\n", 400, "2 bad rows: row 2"},
		{"POST", "/jobs", "text/csv", "s3cret", "a,\"b\n", 400, "bad CSV"},
		{"POST", "/jobs", "application/json", "s3cret", `{"names":["a.example"],"extra":1}`, 400, "bad JSON"},
		{"POST", "/jobs", "application/json", "s3cret", `{"names":[]}`, 400, "no names"},
		{"POST", "/jobs", "application/xml", "s3cret", `<x/>`, 415, ""},
		{"POST", "/jobs", "", "s3cret", `a.example`, 415, ""},
		{"GET", "/jobs/nosuchjob", "", "", "", 404, "no such job"},
		{"DELETE", "/jobs/nosuchjob", "", "s3cret", "", 404, "no such job"},
		{"DELETE", "/jobs/nosuchjob", "", "", "", 401, ""},
		{"PUT", "/jobs", "", "s3cret", "", 405, ""},
		{"GET", "/jobs?limit=0", "", "", "", 400, "limit"},
		{"GET", "/jobs?limit=x", "", "", "", 400, "limit"},
	} {
		code, body := send(t, srv, c.method, c.path, c.ctype, c.token, strings.NewReader(c.body))
		if code != c.code || !strings.Contains(string(body), c.msg) {
			t.Errorf("%s %s %q: %d %s, want %d with %q", c.method, c.path, c.body, code, body, c.code, c.msg)
		}
	}
	if n := len(queued(t, q)); n != 0 {
		t.Errorf("bad requests queued %d tasks", n)
	}
	// Over the body limit: 413, and nothing queued.
	line := strings.Repeat("a", 60) + ".example\n"
	big := strings.Repeat(line, maxJobBody/len(line)+1)
	if code, body := send(t, srv, "POST", "/jobs", "text/csv", "s3cret", strings.NewReader(big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge upload: %d %s", code, body)
	}
}

func TestJobsProgressListAndCancel(t *testing.T) {
	srv, q := jobsServer(t)
	_, body := send(t, srv, "POST", "/jobs", "application/json", "s3cret", strings.NewReader(`{"names":["a.example","b.example","c.example"]}`))
	job := decodeJob(t, body)
	task, _ := q.Claim(t.Context(), "w", time.Second)
	q.Finish(t.Context(), task.ID, queue.StateDone, "")

	code, body := send(t, srv, "GET", "/jobs/"+job.ID, "", "", nil)
	if j := decodeJob(t, body); code != 200 || j.Done != 1 || j.Pending != 2 || j.Total != 3 || j.State != queue.JobRunning {
		t.Fatalf("progress: %d %+v", code, j)
	}
	code, body = send(t, srv, "GET", "/jobs", "", "", nil)
	var list jobList
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list.Jobs) != 1 || list.Jobs[0].ID != job.ID ||
		list.Queue != (queueCounts{Pending: 2, Completed: 1}) {
		t.Fatalf("list: %d %s", code, body)
	}
	code, body = send(t, srv, "DELETE", "/jobs/"+job.ID, "", "s3cret", nil)
	if j := decodeJob(t, body); code != 200 || j.State != queue.JobCanceled {
		t.Fatalf("cancel: %d %s", code, body)
	}
}

func TestJobsWithoutQueue(t *testing.T) {
	f := newFixture(t, nil)
	srv := f.server(t)
	for _, m := range []string{"GET", "POST"} {
		code, body := send(t, srv, m, "/jobs", "", "", nil)
		if code != http.StatusNotFound || !strings.Contains(string(body), "-queue-redis") {
			t.Errorf("%s /jobs without a queue: %d %s", m, code, body)
		}
	}
}

func FuzzJobCSV(f *testing.F) {
	for _, s := range []string{"a.example\n", "1,a.example\n", "name,type\na.example,MX\n", "\"a\"\"b\",c\n", "#x\n\n,\n", "a.example,TYPE65280\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		items, err := parseJobCSV(strings.NewReader(s), "A")
		if err == nil && len(items) == 0 {
			t.Fatal("no error and no items")
		}
		for _, it := range items {
			if !strings.HasSuffix(it.Name, ".") || it.Type == "" {
				t.Fatalf("bad item %+v", it)
			}
		}
	})
}

func FuzzJobJSON(f *testing.F) {
	for _, s := range []string{`{"names":["a.example"]}`, `{"items":[{"name":"a","type":"MX"}]}`, `{}`, `[]`, `{"names":["a"]}{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		items, err := parseJobJSON(strings.NewReader(s))
		if err == nil && len(items) == 0 {
			t.Fatal("no error and no items")
		}
	})
}
