package api

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

// TestOpenAPIDocumentsEveryRoute compares the routes New registers, read
// from this package's source, with the document's operations: a route
// added, removed or given another method without the document following
// fails here. A route template matches a documented path as gorilla/mux
// matches it, so a template with a pattern (the status page's) is
// documented by the paths it serves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	registered := registeredRoutes(t)
	documented := operations(loadOpenAPI(t))
	for _, r := range registered {
		method, template, _ := strings.Cut(r, " ")
		if !slices.ContainsFunc(documented, func(d string) bool { return serves(t, method, template, d) }) {
			t.Errorf("%s: registered, not in openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.ContainsFunc(registered, func(r string) bool {
			method, template, _ := strings.Cut(r, " ")
			return serves(t, method, template, d)
		}) {
			t.Errorf("%s: in openapi.yaml, not registered", d)
		}
	}
}

// serves reports whether a route of method and mux template serves the
// documented operation op ("METHOD /path", its {parameters} filled in).
func serves(t *testing.T, method, template, op string) bool {
	t.Helper()
	opMethod, path, _ := strings.Cut(op, " ")
	if opMethod != method {
		return false
	}
	route := mux.NewRouter().UseEncodedPath().SkipClean(true).Path(template)
	if err := route.GetError(); err != nil {
		t.Fatalf("route %s: %v", template, err)
	}
	path = regexp.MustCompile(`\{[^{}/]+\}`).ReplaceAllString(path, "x")
	var match mux.RouteMatch
	return route.Match(httptest.NewRequest(method, path, nil), &match)
}

// registeredRoutes returns, as "METHOD /path", every route the package's
// non-test files register: each call X.Handle or X.HandleFunc(path, h)
// with the methods of the .Methods(...) chained on it. A registration it
// cannot read (a path or method that is not a literal, no .Methods) fails
// the test rather than go unchecked.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		limited := map[*ast.CallExpr]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Methods" {
				return true
			}
			reg, ok := sel.X.(*ast.CallExpr)
			if !ok || !isRegistration(reg) {
				return true
			}
			limited[reg] = true
			path, err := literal(reg.Args[0])
			if err != nil {
				t.Fatalf("%s: route path: %v", fset.Position(reg.Pos()), err)
			}
			for _, arg := range call.Args {
				method, err := methodOf(arg)
				if err != nil {
					t.Fatalf("%s: route method: %v", fset.Position(arg.Pos()), err)
				}
				out = append(out, method+" "+path)
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && isRegistration(call) && !limited[call] {
				t.Errorf("%s: a route without .Methods(...) answers every method", fset.Position(call.Pos()))
			}
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("no route registration found")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// isRegistration reports whether call is X.Handle(path, h) or
// X.HandleFunc(path, f).
func isRegistration(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && (sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc") && len(call.Args) == 2
}

// literal returns the value of a string literal.
func literal(e ast.Expr) (string, error) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", fmt.Errorf("%T is not a string literal", e)
	}
	return strconv.Unquote(lit.Value)
}

// methodOf reads an argument of Methods: http.MethodX or a string literal.
func methodOf(e ast.Expr) (string, error) {
	if sel, ok := e.(*ast.SelectorExpr); ok {
		if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "http" && strings.HasPrefix(sel.Sel.Name, "Method") {
			return strings.ToUpper(strings.TrimPrefix(sel.Sel.Name, "Method")), nil
		}
		return "", fmt.Errorf("%s.%s is not an http.MethodX", sel.X, sel.Sel.Name)
	}
	s, err := literal(e)
	return strings.ToUpper(s), err
}
