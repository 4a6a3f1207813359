package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// HTTPServer is the part of an HTTP server: its loop serves ln (none when
// ln is nil, for a server something else serves), and its drain is a
// graceful Shutdown that closes the connections still open when ctx ends.
func HTTPServer(srv *http.Server, ln net.Listener) Part {
	p := Part{Drain: func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil && ctx.Err() != nil {
			srv.Close()
		}
		return err
	}}
	if ln != nil {
		p.Run = func(context.Context) error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}
	}
	return p
}
