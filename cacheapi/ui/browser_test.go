package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shardns/shardns/internal/testutil/procs"
)

// chromiumPath is Debian's chromium package.
const chromiumPath = "/usr/bin/chromium"

// browserTimeout bounds each test's whole browser session.
const browserTimeout = 60 * time.Second

// tab is one page of a headless Chromium started for one test.
type tab struct {
	ctx context.Context
	out *procs.Buffer // the browser's stdout and stderr
	// consoleDone is closed when the reader of the console has stopped.
	consoleDone chan struct{}

	mu     sync.Mutex
	errors []string // exceptions, and console and browser errors other than failed loads
	csp    []string // Content-Security-Policy violations
}

// newTab starts Chromium headless with a fresh profile in t.TempDir(),
// kept off every network but loopback, and returns a tab in it. The whole
// session is bounded by browserTimeout; cleanup closes the browser and
// waits for it to exit. Without chromium the test is skipped, or fails
// when the environment variable CI is set.
func newTab(t *testing.T) *tab {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		const msg = "chromium not found at " + chromiumPath + ": apt-get install chromium"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	profile := t.TempDir()
	tb := &tab{out: &procs.Buffer{}}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("no-proxy-server", true),
		// No name resolves except loopback's: the browser can reach
		// nothing but the test's server.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("disk-cache-dir", filepath.Join(profile, "cache")),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1100),
		chromedp.CombinedOutput(tb.out),
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	tctx, tcancel := chromedp.NewContext(actx)
	tb.ctx = tctx
	// Cleanups run last in, first out: the browser exits before its
	// profile folder is removed.
	t.Cleanup(func() {
		_ = chromedp.Cancel(tctx)
		tcancel()
		acancel()
		cancel()
		if tb.consoleDone != nil {
			<-tb.consoleDone
		}
		if t.Failed() {
			t.Logf("chromium output:\n%s", tb.out.String())
		}
	})
	// The first action starts the browser, bound to tctx.
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, tb.out.String())
	}
	messages := chromedp.Console(tctx)
	tb.consoleDone = make(chan struct{})
	go func() {
		defer close(tb.consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.record(m)
		}
	}()
	return tb
}

// record keeps the page's exceptions, errors and policy violations. Failed
// loads (a 404 from /jobs, a 503 from /stats) are the page's business.
func (tb *tab) record(m chromedp.ConsoleMessage) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch {
	case strings.Contains(m.Text, "Content Security Policy"):
		tb.csp = append(tb.csp, m.Text)
	case m.IsException():
		tb.errors = append(tb.errors, m.String())
	case m.Type == chromedp.ConsoleError && m.Source != "network":
		tb.errors = append(tb.errors, m.String())
	}
}

// problems returns the errors and CSP violations seen so far.
func (tb *tab) problems() (errs, csp []string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.errors...), append([]string(nil), tb.csp...)
}

// checkClean fails t if the page threw, logged an error or broke its CSP.
func (tb *tab) checkClean(t *testing.T) {
	t.Helper()
	errs, csp := tb.problems()
	for _, e := range errs {
		t.Errorf("page error: %s", e)
	}
	for _, e := range csp {
		t.Errorf("CSP violation: %s", e)
	}
}

// do runs actions in the tab, failing t on error.
func (tb *tab) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action in the tab and returns its value, failing t on error.
func get[T any](t *testing.T, tb *tab, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// pressUntil clicks the button with id until its aria-pressed is want. The
// page redraws its tables every second, which can move the button between
// chromedp finding it and pressing it; that click lands beside it, as a
// person's would, and like a person the test clicks again (at most three
// times). The handler sets aria-pressed at once, so one click that lands
// is seen within the wait.
func pressUntil(t *testing.T, tb *tab, id, want string) {
	t.Helper()
	script := `document.getElementById(` + strconv.Quote(id) + `).getAttribute("aria-pressed")`
	var got string
	for range 3 {
		tb.do(t, "click #"+id, chromedp.Click(chromedp.ID(id)))
		deadline := time.Now().Add(time.Second)
		for {
			if got = get(t, tb, "aria-pressed", chromedp.Evaluate[string](script)); got == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got == want {
			return
		}
	}
	t.Errorf("#%s aria-pressed %q after three clicks, want %q", id, got, want)
}

// waitFor evaluates script in the page every 100ms until cond holds on its
// result, within limit (and the tab's own bound). It returns the last
// result.
func waitFor[T any](t *testing.T, tb *tab, limit time.Duration, what string, script string, cond func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v := get(t, tb, what, chromedp.Evaluate[T](script))
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last reading: %+v", what, limit, v)
		}
		select {
		case <-tb.ctx.Done():
			t.Fatalf("%s: %v", what, tb.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
