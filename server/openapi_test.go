package server_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// The OpenAPI checker: every request a test in this package sends goes through it. It
// finds the operation in api/openapi.yaml (an undocumented method or path fails the
// test), checks that the status code is documented for it, validates every JSON
// response body against the documented schema, and the request body too when the
// request succeeded (a refused request is meant to break the schema). TestMain then
// fails unless every documented operation was seen succeeding at least once.

type operation struct {
	method, path string
	re           *regexp.Regexp
	request      *jsonschema.Schema            // nil: no JSON body
	responses    map[string]*jsonschema.Schema // by status; nil schema: not JSON
	mediaTypes   map[string]string             // by status
}

type apiSpec struct {
	ops []*operation
	mu  sync.Mutex
	ok  map[string]bool // "METHOD path" seen with a 2xx answer
}

var (
	specOnce sync.Once
	spec     *apiSpec
	specErr  error
)

func loadSpec() (*apiSpec, error) {
	specOnce.Do(func() { spec, specErr = parseSpec("../api/openapi.yaml") })
	return spec, specErr
}

func parseSpec(path string) (*apiSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		return nil, err
	}
	// YAML → JSON → the validator's own decoding (json.Number for numbers).
	j, err := json.Marshal(y)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const base = "file:///openapi.json"
	if err := c.AddResource(base, doc); err != nil {
		return nil, err
	}
	ptr := func(parts ...string) string {
		for i, p := range parts {
			parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1")
		}
		return base + "#/" + strings.Join(parts, "/")
	}
	root := doc.(map[string]any)
	comps, _ := root["components"].(map[string]any)
	resolve := func(v any) map[string]any {
		m, _ := v.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/components/responses/")
			m, _ = comps["responses"].(map[string]any)[name].(map[string]any)
		}
		return m
	}
	s := &apiSpec{ok: map[string]bool{}}
	paths := root["paths"].(map[string]any)
	for p, item := range paths {
		re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^/]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$")
		for method, opv := range item.(map[string]any) {
			op := opv.(map[string]any)
			o := &operation{method: strings.ToUpper(method), path: p, re: re, responses: map[string]*jsonschema.Schema{}, mediaTypes: map[string]string{}}
			if rb, ok := op["requestBody"].(map[string]any); ok {
				if _, ok := rb["content"].(map[string]any)["application/json"]; ok {
					if o.request, err = c.Compile(ptr("paths", p, method, "requestBody", "content", "application/json", "schema")); err != nil {
						return nil, fmt.Errorf("%s %s request: %w", method, p, err)
					}
				}
			}
			for status, rv := range op["responses"].(map[string]any) {
				r := resolve(rv)
				content, _ := r["content"].(map[string]any)
				for mt := range content {
					o.mediaTypes[status] = mt
				}
				if _, ok := content["application/json"]; !ok {
					o.responses[status] = nil
					continue
				}
				loc := ptr("paths", p, method, "responses", status, "content", "application/json", "schema")
				if ref, ok := rv.(map[string]any)["$ref"].(string); ok {
					loc = ptr("components", "responses", strings.TrimPrefix(ref, "#/components/responses/"), "content", "application/json", "schema")
				}
				if o.responses[status], err = c.Compile(loc); err != nil {
					return nil, fmt.Errorf("%s %s %s: %w", method, p, status, err)
				}
			}
			s.ops = append(s.ops, o)
		}
	}
	return s, nil
}

func (s *apiSpec) find(method, path string) *operation {
	for _, o := range s.ops {
		if o.method == method && o.re.MatchString(path) {
			return o
		}
	}
	return nil
}

// pathKnown reports whether some operation has this path (a wrong method then answers 405).
func (s *apiSpec) pathKnown(path string) bool {
	for _, o := range s.ops {
		if o.re.MatchString(path) {
			return true
		}
	}
	return false
}

func validate(sch *jsonschema.Schema, body []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(v)
}

// teeWriter passes a response through (streams included) and keeps a bounded copy.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	if w.body.Len() < 4<<20 {
		w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checked wraps h with the checker.
func checked(t testing.TB, h http.Handler) http.Handler {
	s, err := loadSpec()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		tw := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(tw, r)
		path := r.URL.EscapedPath()
		op := s.find(r.Method, path)
		if op == nil {
			if tw.status != 404 && tw.status != 405 && tw.status != 307 && tw.status != 301 {
				t.Errorf("%s %s answered %d but is not in api/openapi.yaml", r.Method, path, tw.status)
			}
			if tw.status == 405 && !s.pathKnown(path) {
				t.Errorf("%s %s answered 405 for a path the spec does not have", r.Method, path)
			}
			return
		}
		status := fmt.Sprint(tw.status)
		sch, documented := op.responses[status]
		if !documented {
			t.Errorf("%s %s: status %s is not documented (%s)", r.Method, op.path, status, tw.body.Bytes())
			return
		}
		mt, _, _ := mime.ParseMediaType(tw.Header().Get("Content-Type"))
		if want := op.mediaTypes[status]; want != "" && mt != want {
			t.Errorf("%s %s %s: Content-Type %q, documented %q", r.Method, op.path, status, mt, want)
		}
		if sch != nil {
			if err := validate(sch, tw.body.Bytes()); err != nil {
				t.Errorf("%s %s %s: the response does not match the spec: %v\n%s", r.Method, op.path, status, err, tw.body.Bytes())
			}
		}
		if tw.status/100 == 2 {
			if op.request != nil {
				if err := validate(op.request, reqBody); err != nil {
					t.Errorf("%s %s: an accepted request does not match the spec: %v\n%s", r.Method, op.path, err, reqBody)
				}
			}
			s.mu.Lock()
			s.ok[op.method+" "+op.path] = true
			s.mu.Unlock()
		}
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		s, err := loadSpec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "api/openapi.yaml:", err)
			os.Exit(1)
		}
		var missing []string
		for _, o := range s.ops {
			if !s.ok[o.method+" "+o.path] {
				missing = append(missing, o.method+" "+o.path)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test saw these documented operations succeed: %s\n", strings.Join(missing, ", "))
			code = 1
		}
	}
	os.Exit(code)
}
