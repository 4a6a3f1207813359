package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDocument is the OpenAPI 3 description of every route, served at
// GET /openapi.yaml. openapi_test.go drives every route of a real server
// and checks each request and answer against it.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// mimeYAML is the media type of the OpenAPI document (RFC 9512).
const mimeYAML = "application/yaml"

// serveOpenAPI answers GET /openapi.yaml with the document.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", mimeYAML)
	h.Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDocument)
}
