// Package warmcli is `cacheapi warm FILE`: it submits a CSV of domain names
// (one per row, optional type column) to a cacheapi's POST /jobs, then shows
// the job's progress until it ends.
package warmcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/shardns/shardns/cacheapi/token"
	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/internal/queue"
)

// Options are the warm command's flags.
type Options struct {
	API       string
	Token     string
	TokenFile string
	Type      string
	Every     time.Duration
}

// requestTimeout bounds each HTTP call; the upload gets uploadTimeout.
const (
	requestTimeout = 10 * time.Second
	uploadTimeout  = 2 * time.Minute
	barWidth       = 30
)

// Main runs `cacheapi warm [flags] FILE` and returns the exit code: 0 when
// every task completed, 1 when some went dead, the job was canceled or a
// call failed, 2 for bad usage.
func Main(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cacheapi warm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.API, "api", "http://127.0.0.1:8080", "the cacheapi to submit to")
	fs.StringVar(&o.Token, "token", "", "bearer token, as cacheapi's -token; empty: the token of -token-file")
	fs.StringVar(&o.TokenFile, "token-file", token.DefaultFile(), "file holding the token, as cacheapi's -token-file (cacheapi writes its token there at start)")
	fs.StringVar(&o.Type, "type", "A", "type of rows that name none")
	fs.DurationVar(&o.Every, "every", 500*time.Millisecond, "how often progress is read")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cacheapi warm [flags] FILE|-\n\nSubmits a CSV of domain names (one per row; optional type column; optional\nheader; \"rank,domain\" lists work too) as a job and shows its progress.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := config.ParseCommand(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 || o.Every <= 0 {
		fs.Usage()
		return 2
	}
	if o.Token == "" && o.TokenFile != "" {
		tok, err := token.Read(o.TokenFile)
		switch {
		case err == nil:
			o.Token = tok
		case !errors.Is(err, iofs.ErrNotExist):
			fmt.Fprintln(stderr, "cacheapi warm: -token-file:", err)
			return 1
		}
	}
	var body io.Reader = stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "cacheapi warm:", err)
			return 1
		}
		defer f.Close()
		body = f
	}
	c := &client{o: o, http: &http.Client{}}
	job, err := c.submit(ctx, body)
	if err != nil {
		fmt.Fprintln(stderr, "cacheapi warm:", err)
		return 1
	}
	fmt.Fprintf(stdout, "job %s: %d names\n", job.ID, job.Total)
	job, err = c.watch(ctx, job, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "\ncacheapi warm:", err)
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "the job goes on: curl %s/jobs/%s\n", strings.TrimRight(o.API, "/"), job.ID)
		}
		return 1
	}
	fmt.Fprintf(stdout, "\njob %s %s: %d done, %d dead, %d canceled, %d failed runs, in %s\n",
		job.ID, job.State, job.Done, job.Dead, job.Canceled, job.Failed, job.Finished.Sub(job.Created).Round(time.Millisecond))
	if job.State != queue.JobFinished || job.Dead > 0 {
		return 1
	}
	return 0
}

type client struct {
	o    Options
	http *http.Client
}

func (c *client) do(ctx context.Context, method, path, ctype string, body io.Reader, timeout time.Duration, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base, err := url.Parse(c.o.API)
	if err != nil || base.Host == "" {
		return fmt.Errorf("bad -api %q: want http://host:port", c.o.API)
	}
	ref, err := url.Parse(path)
	if err != nil {
		return err
	}
	u := base.JoinPath(ref.Path)
	u.RawQuery = ref.RawQuery
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (give the server's token: -token, SHARDNS_TOKEN, or -token-file naming the server's token file)"
		}
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s%s", method, path, resp.Status, e.Error, hint)
		}
		return fmt.Errorf("%s %s: %s%s", method, path, resp.Status, hint)
	}
	return json.Unmarshal(b, out)
}

func (c *client) submit(ctx context.Context, body io.Reader) (*queue.Job, error) {
	var job queue.Job
	path := "/jobs?type=" + url.QueryEscape(c.o.Type)
	if err := c.do(ctx, http.MethodPost, path, "text/csv", body, uploadTimeout, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// watch reads the job every c.o.Every and redraws its progress bar until
// the job ends or ctx does.
func (c *client) watch(ctx context.Context, job *queue.Job, out io.Writer) (*queue.Job, error) {
	t := time.NewTicker(c.o.Every)
	defer t.Stop()
	for {
		fmt.Fprint(out, "\r"+Bar(job, barWidth))
		if job.State != queue.JobRunning {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-t.C:
		}
		var next queue.Job
		if err := c.do(ctx, http.MethodGet, "/jobs/"+job.ID, "", nil, requestTimeout, &next); err != nil {
			return job, err
		}
		job = &next
	}
}

// Bar draws a job's progress in one line of fixed width.
func Bar(j *queue.Job, width int) string {
	ended := j.Done + j.Dead + j.Canceled
	frac := 0.0
	if j.Total > 0 {
		frac = float64(ended) / float64(j.Total)
	}
	full := int(frac * float64(width))
	var b bytes.Buffer
	b.WriteByte('[')
	b.WriteString(strings.Repeat("#", full))
	b.WriteString(strings.Repeat(".", width-full))
	fmt.Fprintf(&b, "] %3.0f%% %d/%d", frac*100, ended, j.Total)
	if j.Dead > 0 {
		fmt.Fprintf(&b, " dead %d", j.Dead)
	}
	fmt.Fprintf(&b, "  %.0f/s", j.Rate)
	if j.State == queue.JobRunning && j.ETA > 0 {
		fmt.Fprintf(&b, "  ETA %s", (time.Duration(j.ETA) * time.Second).Round(time.Second))
	}
	b.WriteString("   ")
	return b.String()
}
