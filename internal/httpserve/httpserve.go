// Package httpserve starts the daemons' side HTTP servers (metrics,
// profiler, cache API) with the same bounds and logging.
package httpserve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// start listens on addr and serves h until the returned server is closed.
// writeTimeout 0 is for handlers that write for as long as asked (a CPU
// profile); a server that stops on its own is logged.
func start(addr string, h http.Handler, log *slog.Logger, writeTimeout time.Duration) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen http %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: writeTimeout}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "addr", addr, "err", err)
		}
	}()
	log.Info("serving HTTP", "addr", ln.Addr().String())
	return srv, nil
}

// Side is one side server of a daemon: h served on Addr, or none when
// Addr is empty (Handler is then not called).
type Side struct {
	Addr         string
	Handler      func() http.Handler
	WriteTimeout time.Duration // 0 for the profiler: a CPU profile writes as long as asked
	// Flag names the flag that set Addr (e.g. "-http"), so that an
	// address that cannot be bound is reported with the flag that
	// changes it; empty: the error names the address only.
	Flag string
}

// StartAll starts the sides that have an address. If one cannot listen,
// it closes those it started and returns the error.
func StartAll(log *slog.Logger, sides ...Side) ([]*http.Server, error) {
	var srvs []*http.Server
	for _, side := range sides {
		if side.Addr == "" {
			continue
		}
		srv, err := start(side.Addr, side.Handler(), log, side.WriteTimeout)
		if err != nil {
			for _, s := range srvs {
				s.Close()
			}
			if side.Flag != "" {
				err = fmt.Errorf("%s %s: %w (set %s to a free address, or to '' to serve none)", side.Flag, side.Addr, err, side.Flag)
			}
			return nil, err
		}
		srvs = append(srvs, srv)
	}
	return srvs, nil
}
