package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// loadOpenAPI loads the embedded document and validates it as OpenAPI.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Fatalf("openapi.yaml is OpenAPI %q, want 3.0.3", doc.OpenAPI)
	}
	return doc
}

// strictObjects makes every object schema of doc's components with listed
// properties refuse properties it does not list, so that a field the
// server sends and the document lacks fails the test. The document itself
// leaves them open, so that clients tolerate new fields.
func strictObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			walk(p)
		}
		walk(s.Items)
		walk(s.AdditionalProperties.Schema)
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, x := range group {
				walk(x)
			}
		}
	}
	for _, ref := range doc.Components.Schemas {
		walk(ref)
	}
}

// bearerFormat checks the form of the credentials a security scheme asks
// for; whether the token is right is the server's to say.
func bearerFormat(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return in.NewError(fmt.Errorf("scheme %s %s not handled by the test", s.Type, s.Scheme))
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(in.RequestValidationInput.Request.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return in.NewError(nil)
	}
	return nil
}

// conformance sends requests to real servers and checks each request and
// answer against the document, recording which statuses of which
// operations it has seen.
type conformance struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options
	seen   map[string]bool // "GET /cache/{name} 404", or "unrouted 405"
}

func newConformance(t testing.TB) *conformance {
	t.Helper()
	doc := loadOpenAPI(t)
	strictObjects(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// The dns-json answer of /dns-query is JSON under its own media type;
	// the status page's files are text.
	openapi3filter.RegisterBodyDecoder(mimeDNSJSON, openapi3filter.JSONBodyDecoder)
	for _, mt := range []string{"text/html", "text/javascript", "text/css"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
	}
	return &conformance{
		doc:    doc,
		router: router,
		opts:   &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: bearerFormat},
		seen:   map[string]bool{},
	}
}

// send sends one request to srv and checks it, and the answer, against
// the document: a request the document refuses must get a 4xx; every
// status must be documented for its operation and every answer must match
// it; a path or method the document lacks must get a JSON 404 or 405.
func (c *conformance) send(t *testing.T, srv *httptest.Server, method, target string, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	// A did-not-hang bound, a second longer per MiB of body: a body of
	// tens of MiB is read and decoded twice (by the checks here and by
	// the server), slowly under the race detector.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second+time.Duration(len(body)>>20)*time.Second)
	defer cancel()
	newReq := func() *http.Request {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+target, rd)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			if k == "Host" {
				req.Host = v[0] // Go sends req.Host, not a Host in the map
				continue
			}
			req.Header[k] = slices.Clone(v)
		}
		return req
	}
	what := fmt.Sprintf("%s %.80s", method, target)

	vreq := newReq()
	route, params, routeErr := c.router.FindRoute(vreq)
	var in *openapi3filter.RequestValidationInput
	var reqErr error
	if routeErr == nil {
		in = &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: c.opts}
		reqErr = openapi3filter.ValidateRequest(ctx, in)
	}

	resp, err := srv.Client().Do(newReq())
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}

	if routeErr != nil {
		c.checkUnrouted(t, what, routeErr, resp, got)
		return resp, got
	}
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		t.Errorf("%s: the document refuses the request (%v), the server answered %d", what, reqErr, resp.StatusCode)
	}
	status := strconv.Itoa(resp.StatusCode)
	if route.Operation.Responses.Value(status) == nil {
		t.Errorf("%s: status %s is not documented for %s %s: %.200s", what, status, route.Method, route.Path, got)
	}
	c.seen[route.Method+" "+route.Path+" "+status] = true
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: c.opts}
	out.SetBodyBytes(got)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s: the %d answer does not match the document: %v\nbody: %.300q", what, resp.StatusCode, err, got)
	}
	return resp, got
}

// checkUnrouted checks the answer to a request for a path or method the
// document lacks: 404 or 405 with the JSON error body.
func (c *conformance) checkUnrouted(t *testing.T, what string, routeErr error, resp *http.Response, body []byte) {
	t.Helper()
	want := http.StatusNotFound
	if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
		want = http.StatusMethodNotAllowed
	} else if !errors.Is(routeErr, routers.ErrPathNotFound) {
		t.Fatalf("%s: finding the route: %v", what, routeErr)
	}
	if resp.StatusCode != want {
		t.Errorf("%s: not in the document (%v), the server answered %d, want %d", what, routeErr, resp.StatusCode, want)
		return
	}
	c.seen["unrouted "+strconv.Itoa(want)] = true
	if resp.Request.Method == http.MethodHead {
		return // no body
	}
	var v any
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(body, &v) != nil {
		t.Errorf("%s: %d answer %q %q, want the JSON error body", what, want, resp.Header.Get("Content-Type"), body)
		return
	}
	if err := c.doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		t.Errorf("%s: %d answer does not match the Error schema: %v", what, want, err)
	}
}

// expect is send, and the status must be want.
func (c *conformance) expect(t *testing.T, srv *httptest.Server, want int, method, target string, header http.Header, body []byte) []byte {
	t.Helper()
	resp, got := c.send(t, srv, method, target, header, body)
	if resp.StatusCode != want {
		t.Errorf("%s %.80s: status %d, want %d: %.200s", method, target, resp.StatusCode, want, got)
	}
	return got
}

// operations lists the document's operations as "METHOD /path".
func operations(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// checkCoverage fails for every documented status of every operation that
// no request got, save those in unreachable (with why), and for entries
// of unreachable the document does not have.
func (c *conformance) checkCoverage(t *testing.T, unreachable map[string]string) {
	t.Helper()
	documented := map[string]bool{}
	for _, op := range operations(c.doc) {
		method, path, _ := strings.Cut(op, " ")
		for status := range c.doc.Paths.Value(path).GetOperation(method).Responses.Map() {
			key := op + " " + status
			documented[key] = true
			if !c.seen[key] && unreachable[key] == "" {
				t.Errorf("%s: documented, never answered by the test's requests", key)
			}
		}
	}
	for key := range unreachable {
		if !documented[key] {
			t.Errorf("%s: listed as unreachable but not documented", key)
		}
	}
	for _, key := range []string{"unrouted 404", "unrouted 405"} {
		if !c.seen[key] {
			t.Errorf("no request for a path or method outside the document got %s", key)
		}
	}
}
