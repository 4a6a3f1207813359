package lifecycle

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// An HTTP server's part lets a request in flight finish, then stops
// taking connections; a request still running at the deadline is cut.
func TestHTTPServerDrains(t *testing.T) {
	for _, tc := range []struct {
		name    string
		finish  bool // the handler returns before the deadline
		wantErr bool // the client sees its request fail
	}{
		{"in flight finishes", true, false},
		{"cut at the deadline", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			entered, release := make(chan struct{}), make(chan struct{})
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				select {
				case <-release:
				case <-r.Context().Done():
				}
				io.WriteString(w, "done")
			})}
			g := New(t.Context(), nil)
			g.Add("http", HTTPServer(srv, ln))
			url := "http://" + ln.Addr().String() + "/"
			got := make(chan error, 1)
			go func() {
				resp, err := http.Get(url)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && string(b) != "done" {
						err = io.ErrUnexpectedEOF
					}
				}
				got <- err
			}()
			<-entered
			stopped := make(chan error, 1)
			ctx, cancel := t.Context(), func() {}
			if !tc.finish {
				ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
			}
			defer cancel()
			go func() { stopped <- g.Stop(ctx) }()
			if tc.finish {
				time.Sleep(50 * time.Millisecond) // Shutdown has begun
				close(release)
			}
			if err := <-stopped; err != nil {
				t.Errorf("Stop: %v", err)
			}
			if err := <-got; (err != nil) != tc.wantErr {
				t.Errorf("request in flight: %v, want error %v", err, tc.wantErr)
			}
			if _, err := http.Get(url); err == nil {
				t.Error("a request after the stop was served")
			}
			http.DefaultClient.CloseIdleConnections()
		})
	}
}
