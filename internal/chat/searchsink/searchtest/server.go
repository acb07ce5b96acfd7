// Package searchtest is a fake Elasticsearch or OpenSearch REST API on
// loopback for tests. The real clients run against it unchanged:
// go-elasticsearch/v8 with Addresses: []string{srv.URL()} (every answer
// carries "X-Elastic-Product: Elasticsearch", which that client checks),
// and opensearch-go/v4 the same way.
//
// It serves GET / (the cluster's info) and POST /_bulk as the products
// document it: an NDJSON body of action lines ("index" or "create", with
// _index and _id) each followed by its document, answered with 200
// {"took","errors","items":[{"index":{"_index","_id","_version","result",
// "status",...}}]}, one item per action in order, and an item's failure as
// {"status":N,"error":{"type","reason"}}. It keeps the documents by index
// and _id: indexing an _id again replaces the document (result "updated").
// It checks the credentials it was given (basic auth or an API key) and
// answers others with 401 security_exception.
//
// Faults: failures of the next requests (FailNext: a 429 is
// es_rejected_execution_exception with Retry-After when the test asks for
// one), an outage (SetDown: 503 to every request), and failures of single
// documents inside a 200 answer (FailItems).
package searchtest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

// Product is which REST API the server imitates.
type Product string

// Products.
const (
	Elasticsearch Product = "elasticsearch"
	OpenSearch    Product = "opensearch"
)

// Auth is the credentials the server accepts; the zero value accepts any
// request.
type Auth struct {
	Username, Password string
	// APIKey is the value after "ApiKey " (any case) in the Authorization header.
	APIKey string
}

// Document is one stored document.
type Document struct {
	Index   string
	ID      string
	Version int
	Source  map[string]any
}

// Server is the fake REST API.
type Server struct {
	*fake.Server[struct{}, *fake.Conn]
	product Product
	auth    Auth

	mu       sync.Mutex
	docs     map[string]*Document // by index "\x00" id
	order    []string
	requests []int         // documents per _bulk request that was answered 200
	headers  []http.Header // of every _bulk request
	failItem func(index, id string, source map[string]any) int
}

// New serves product's API, accepting auth.
func New(product Product, auth Auth) *Server {
	s := &Server{Server: fake.NewServer[struct{}, *fake.Conn](0), product: product, auth: auth, docs: map[string]*Document{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.info)
	mux.HandleFunc("POST /_bulk", s.bulk)
	mux.HandleFunc("PUT /_bulk", s.bulk)
	s.Start(mux)
	return s
}

// FailItems makes every document for which fail returns a status other
// than 0 fail with it inside the _bulk answer, until FailItems(nil).
func (s *Server) FailItems(fail func(index, id string, source map[string]any) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failItem = fail
}

// Documents returns every stored document, in the order first indexed.
func (s *Server) Documents() []Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Document, 0, len(s.order))
	for _, k := range s.order {
		d := *s.docs[k]
		d.Source = maps.Clone(d.Source)
		out = append(out, d)
	}
	return out
}

// Requests returns how many documents each _bulk request answered with
// 200 carried, in order.
func (s *Server) Requests() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Headers returns the headers of every _bulk request, failed ones included.
func (s *Server) Headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.headers)
}

func (s *Server) write(w http.ResponseWriter, status int, body any) {
	if s.product == Elasticsearch {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
	}
	fake.WriteJSON(w, status, body)
}

// failure answers status with the products' error body.
func (s *Server) failure(w http.ResponseWriter, status int, typ, reason string) {
	cause := map[string]any{"type": typ, "reason": reason}
	s.write(w, status, map[string]any{"error": map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason}, "status": status})
}

func (s *Server) authorized(r *http.Request) bool {
	switch {
	case s.auth.APIKey != "":
		// The scheme is case-insensitive (RFC 9110): go-elasticsearch
		// sends "APIKey", the products' docs write "ApiKey".
		scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		return ok && strings.EqualFold(scheme, "ApiKey") && key == s.auth.APIKey
	case s.auth.Username != "":
		user, pass, ok := r.BasicAuth()
		return ok && user == s.auth.Username && pass == s.auth.Password
	}
	return true
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.failure(w, http.StatusUnauthorized, "security_exception", "unable to authenticate user")
		return
	}
	version := map[string]any{"number": "8.19.7", "build_flavor": "default", "lucene_version": "9.12.2"}
	if s.product == OpenSearch {
		version = map[string]any{"number": "2.19.1", "distribution": "opensearch", "lucene_version": "9.12.1"}
	}
	s.write(w, http.StatusOK, map[string]any{"name": "node-1", "cluster_name": "kubechat-test", "version": version, "tagline": "You Know, for Search"})
}

// errorTypes name an item's failure by its status, as the products do.
var errorTypes = map[int]string{
	http.StatusBadRequest:          "mapper_parsing_exception",
	http.StatusConflict:            "version_conflict_engine_exception",
	http.StatusTooManyRequests:     "es_rejected_execution_exception",
	http.StatusServiceUnavailable:  "unavailable_shards_exception",
	http.StatusInternalServerError: "exception",
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	if f, ok := s.Store.Next(); ok {
		if f.Status == http.StatusTooManyRequests && f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Seconds()+0.999)))
		}
		typ := errorTypes[f.Status]
		if typ == "" {
			typ = "illegal_argument_exception"
		}
		s.failure(w, f.Status, typ, "injected failure")
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
		s.failure(w, http.StatusUnauthorized, "security_exception", "unable to authenticate user")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 100<<20))
	if err != nil {
		s.failure(w, http.StatusRequestEntityTooLarge, "content_too_long_exception", "request body too large")
		return
	}
	items, err := s.apply(body)
	if err != nil {
		s.failure(w, http.StatusBadRequest, "illegal_argument_exception", err.Error())
		return
	}
	failed := slices.ContainsFunc(items, func(it map[string]any) bool {
		return it["index"].(map[string]any)["error"] != nil
	})
	s.write(w, http.StatusOK, map[string]any{"took": 1, "errors": failed, "items": items})
}

// apply stores the documents of an NDJSON body and returns the items of
// the answer.
func (s *Server) apply(body []byte) ([]map[string]any, error) {
	type action struct {
		Index string `json:"_index"`
		ID    string `json:"_id"`
	}
	var items []map[string]any
	lines := bufio.NewScanner(bytes.NewReader(body))
	lines.Buffer(make([]byte, 1<<20), 10<<20)
	s.mu.Lock()
	defer s.mu.Unlock()
	var staged []Document
	for lines.Scan() {
		if len(bytes.TrimSpace(lines.Bytes())) == 0 {
			continue
		}
		var a map[string]action
		if err := json.Unmarshal(lines.Bytes(), &a); err != nil || len(a) != 1 {
			return nil, fmt.Errorf("malformed action/metadata line [%d], expected a simple value for field [_index] but found a START_OBJECT", len(staged)*2+1)
		}
		op := slices.Collect(maps.Keys(a))[0]
		if op != "index" && op != "create" {
			return nil, fmt.Errorf("action [%s] is not supported by this fake", op)
		}
		if !lines.Scan() {
			return nil, errors.New("the bulk request must be terminated by a newline [\\n]")
		}
		var src map[string]any
		if err := json.Unmarshal(lines.Bytes(), &src); err != nil {
			return nil, fmt.Errorf("failed to parse the document of [%s]: %v", a[op].ID, err)
		}
		staged = append(staged, Document{Index: a[op].Index, ID: a[op].ID, Source: src})
	}
	if !bytes.HasSuffix(body, []byte("\n")) {
		return nil, errors.New("the bulk request must be terminated by a newline [\\n]")
	}
	if len(staged) == 0 {
		return nil, errors.New("validation failed: 1: no requests added")
	}
	for _, d := range staged {
		res := map[string]any{"_index": d.Index, "_id": d.ID}
		status := 0
		if s.failItem != nil {
			status = s.failItem(d.Index, d.ID, d.Source)
		}
		switch {
		case d.Index == "" || strings.ToLower(d.Index) != d.Index:
			status = http.StatusBadRequest
			res["error"] = map[string]any{"type": "invalid_index_name_exception", "reason": "Invalid index name [" + d.Index + "], must be lowercase"}
		case status != 0:
			typ := errorTypes[status]
			if typ == "" {
				typ = "exception"
			}
			res["error"] = map[string]any{"type": typ, "reason": "injected failure of document [" + d.ID + "]"}
		default:
			key := d.Index + "\x00" + d.ID
			old, exists := s.docs[key]
			d.Version = 1
			res["result"], status = "created", http.StatusCreated
			if exists {
				d.Version = old.Version + 1
				res["result"], status = "updated", http.StatusOK
			} else {
				s.order = append(s.order, key)
			}
			stored := d
			s.docs[key] = &stored
			res["_version"] = d.Version
			res["_shards"] = map[string]int{"total": 2, "successful": 1, "failed": 0}
		}
		res["status"] = status
		items = append(items, map[string]any{"index": res})
	}
	s.requests = append(s.requests, len(staged))
	return items, nil
}

// BasicAuthHeader is the Authorization header of basic auth with user and password.
func BasicAuthHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
