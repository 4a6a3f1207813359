// Package ui serves cacheapi's status page: one HTML page, its script and
// its style sheet, embedded in the binary as written (no build step). The
// page reads GET /stats every second and shows each cache shard's hit
// ratio, keys and memory, each frontend's and the fleet's queries per
// second, hit ratio and latency, with a sparkline of the fleet's queries
// per second over the last minute. It reads GET /jobs too and shows the
// work queue's job progress, or says that no queue is configured when the
// server answers 404.
//
// Paths (GET and HEAD; other methods get 405):
//
//	/               index.html
//	/ui/app.js      the script
//	/ui/style.css   the style sheet
//
// Every response carries a strict Content-Security-Policy: script, style
// and fetches from the page's own origin only, no inline script or style,
// no framing.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

//go:embed index.html app.js style.css
var files embed.FS

// contentSecurityPolicy allows only the page's own script, style sheet and
// fetches (/stats, /jobs); the sparkline is a canvas drawn by the script,
// so no images are needed.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file as served.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// handler serves the embedded files by path.
type handler struct {
	assets map[string]asset
}

// Handler returns the handler of the status page and its assets. It
// answers the paths listed in the package comment, whatever it is mounted
// under, and 404 with a JSON error for any other path.
//
// The asset URLs carry no version, so every response says Cache-Control:
// no-cache with a strong ETag: a browser revalidates each load and gets 304
// until the binary changes, and never runs an old script against a new page.
func Handler() http.Handler {
	routes := []struct{ path, file, ctype string }{
		{"/", "index.html", "text/html; charset=utf-8"},
		{"/ui/app.js", "app.js", "text/javascript; charset=utf-8"},
		{"/ui/style.css", "style.css", "text/css; charset=utf-8"},
	}
	h := &handler{assets: make(map[string]asset, len(routes))}
	for _, r := range routes {
		b, err := files.ReadFile(r.file)
		if err != nil {
			// The files are embedded at build time: this cannot happen in a
			// binary that compiled.
			panic("ui: embedded " + r.file + ": " + err.Error())
		}
		sum := sha256.Sum256(b)
		h.assets[r.path] = asset{body: b, ctype: r.ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	a, ok := h.assets[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no such page")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	// ServeContent answers If-None-Match with 304, HEAD without a body,
	// and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// writeError answers {"error": msg} with code, as the rest of the API does.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
