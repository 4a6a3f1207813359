package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// probeHTTP GETs url and wants a 2xx status.
func probeHTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects, no cookies
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("http: %s: status %s", url, resp.Status)
	}
	return nil
}
