// Package redact keeps secret values out of anything the agent shows. It
// collects the values of Kubernetes Secrets as they pass through a client's
// transport (Transport), or replaces them before the client sees them
// (MaskingTransport), and replaces every recorded value with "***" in
// output, in each encoding output can hold it in.
//
// The encodings of a value v that Redact finds: v itself; its base64 (std,
// URL, with and without padding); hex (lower and upper case); JSON string
// escaping, once and twice (a value inside kubectl's last-applied
// annotation inside JSON output), with and without HTML escaping; URL
// query and path escaping; each line of a multi-line value; and a value
// with spaces folded across lines, as YAML folds long strings.
//
// Short strings (under MinAnywhereLength bytes: "1", "true", a four-letter
// password) are replaced only where they stand as a whole token, bounded by
// the start or end of the text or a character that cannot be part of a
// word or an encoding (a space, a quote, a comma, a newline). Inside a
// longer word a short value says nothing about the secret, and replacing
// it there would mangle unrelated output; standing alone, as in
// "password: abc", it is the value, and it is masked.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Mask replaces every secret value.
const Mask = "***"

// MinAnywhereLength is the shortest recorded string replaced wherever it
// occurs; shorter ones are replaced only as whole tokens.
const MinAnywhereLength = 8

// Set is a concurrency-safe set of secret values.
type Set struct {
	mu     sync.Mutex
	values map[string]struct{}
	// folded matches values with spaces when a YAML printer folded them
	// across lines; keyed by the value.
	folded map[string]*regexp.Regexp
	sorted []string // values longest first; nil when stale
}

// NewSet returns an empty set.
func NewSet() *Set {
	return &Set{values: map[string]struct{}{}, folded: map[string]*regexp.Regexp{}}
}

// Add records a secret value, with every encoding of it that output can hold.
func (s *Set) Add(value string) {
	if value == "" {
		return
	}
	forms := encodings(value)
	// Multi-line values (certificates, env files) also show up line by
	// line, each line indented or quoted on its own.
	if strings.Contains(value, "\n") {
		for _, line := range strings.Split(value, "\n") {
			// A line of punctuation ("}", "---") is no part of a secret
			// worth hiding, and masking it would mangle every output.
			if line = strings.TrimSpace(line); len(line) >= 4 && strings.ContainsFunc(line, func(r rune) bool {
				return unicode.IsLetter(r) || unicode.IsDigit(r)
			}) {
				forms = append(forms, encodings(line)...)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range forms {
		s.addLocked(f)
	}
	if words := strings.Fields(value); len(words) > 1 && !strings.Contains(value, "\n") {
		if _, ok := s.folded[value]; !ok {
			quoted := make([]string, len(words))
			for i, w := range words {
				quoted[i] = regexp.QuoteMeta(w)
			}
			// A folded space is a line break plus indentation; a double-quoted
			// YAML scalar may end the line with a backslash instead.
			s.folded[value] = regexp.MustCompile(strings.Join(quoted, `(?:[ \t]*\\?\r?\n[ \t]*|[ \t]+)`))
		}
	}
}

// AddBase64 records a value given in base64, as in a Secret's data.
func (s *Set) AddBase64(encoded string) {
	if encoded == "" {
		return
	}
	s.mu.Lock()
	s.addLocked(encoded)
	s.mu.Unlock()
	if raw, err := base64.StdEncoding.DecodeString(encoded); err == nil {
		s.Add(string(raw))
	}
}

// addPlaceholder records a string that stands in for a secret value, so
// that output shows Mask where it shows the placeholder.
func (s *Set) addPlaceholder(p string) {
	s.mu.Lock()
	s.addLocked(p)
	s.mu.Unlock()
}

func (s *Set) addLocked(v string) {
	if v == "" {
		return
	}
	if _, ok := s.values[v]; !ok {
		s.values[v] = struct{}{}
		s.sorted = nil
	}
}

// encodings are the forms of v that output may hold.
func encodings(v string) []string {
	b := []byte(v)
	forms := []string{
		v,
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(v),
		url.PathEscape(v),
	}
	once := jsonEscape(v, true)
	forms = append(forms, once, jsonEscape(v, false), jsonEscape(once, true), jsonEscape(jsonEscape(v, false), false))
	return forms
}

// jsonEscape is v as it appears inside a JSON string, without the quotes.
func jsonEscape(v string, html bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(v)
	out := strings.TrimSuffix(buf.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(out, `"`), `"`)
}

// Len is the number of recorded strings.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.values)
}

func (s *Set) snapshot() ([]string, []*regexp.Regexp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sorted == nil {
		s.sorted = make([]string, 0, len(s.values))
		for v := range s.values {
			s.sorted = append(s.sorted, v)
		}
		slices.SortFunc(s.sorted, func(a, b string) int {
			if len(a) != len(b) {
				return len(b) - len(a)
			}
			return strings.Compare(a, b)
		})
	}
	folded := make([]*regexp.Regexp, 0, len(s.folded))
	for _, re := range s.folded {
		folded = append(folded, re)
	}
	return s.sorted, folded
}

// Redact replaces every recorded value in text with Mask, longest first.
func (s *Set) Redact(text string) string {
	vals, folded := s.snapshot()
	for _, v := range vals {
		if len(v) >= MinAnywhereLength {
			text = strings.ReplaceAll(text, v, Mask)
		} else {
			text = replaceTokens(text, v)
		}
	}
	for _, re := range folded {
		text = re.ReplaceAllLiteralString(text, Mask)
	}
	return text
}

// replaceTokens replaces v in text where it stands as a whole token.
func replaceTokens(text, v string) string {
	var out strings.Builder
	done := 0 // text[:done] is in out
	for i := 0; ; {
		j := strings.Index(text[i:], v)
		if j < 0 {
			break
		}
		j += i
		end := j + len(v)
		before, _ := utf8.DecodeLastRuneInString(text[:j])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if (j == 0 || !wordRune(before)) && (end == len(text) || !wordRune(after)) {
			out.WriteString(text[done:j])
			out.WriteString(Mask)
			done, i = end, end
		} else {
			i = j + 1
		}
	}
	out.WriteString(text[done:])
	return out.String()
}

// wordRune is a rune that can continue a word, a number or an encoding.
func wordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-+/=.:@%\\", r)
}

// RedactCut is Redact for text that was cut short: a value the cut split
// leaves its beginning at the end of text, which Redact cannot recognise,
// so a tail that begins any recorded value is removed as well.
func (s *Set) RedactCut(text string) string {
	text = s.Redact(text)
	vals, _ := s.snapshot()
	cut := 0
	for _, v := range vals {
		for k := min(len(v)-1, len(text)); k > cut; k-- {
			if strings.HasSuffix(text, v[:k]) {
				cut = k
				break
			}
		}
	}
	return text[:len(text)-cut]
}

// Transport wraps rt so that every Secret in a JSON response body (a Secret,
// a list, a Table with objects, a watch event) has its values added to set.
// The body itself is passed on unchanged: use it for clients that need the
// values (Helm reads its releases from Secrets; Flux substitutes them).
func Transport(set *Set, rt http.RoundTripper) http.RoundTripper {
	return roundTripper{set: set, next: rt}
}

// MaskingTransport wraps rt so that the client never sees a Secret's
// values: in every JSON response, each value under a Secret's data is
// replaced by the base64 of as many '*' as the value has bytes (so lengths,
// as kubectl describe shows them, stay true), stringData values by as many
// '*', and kubectl's last-applied annotation of a Secret is masked the same
// way inside its JSON. Watch streams are rewritten event by event. The real
// values and the placeholders are added to set, so that Redact masks both.
// A response to a Secrets path that is not JSON is refused: it could not
// be masked.
func MaskingTransport(set *Set, rt http.RoundTripper) http.RoundTripper {
	return roundTripper{set: set, next: rt, mask: true}
}

type roundTripper struct {
	set  *Set
	next http.RoundTripper
	mask bool
}

// maxScan bounds the bytes of one response inspected for secrets.
const maxScan = 64 << 20

// ErrUnmaskable is returned for a response about Secrets that cannot be
// masked (not JSON, or too large).
var ErrUnmaskable = errors.New("kubechat cannot mask this response about Secrets")

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	secretsPath := slices.Contains(strings.Split(req.URL.Path, "/"), "secrets")
	ct := resp.Header.Get("Content-Type")
	if !strings.Contains(ct, "json") {
		if t.mask && secretsPath && resp.StatusCode < 300 && resp.StatusCode != http.StatusNoContent {
			resp.Body.Close()
			return nil, errors.Join(ErrUnmaskable, errors.New("the response is "+ct+", not JSON"))
		}
		return resp, nil
	}
	if strings.Contains(ct, "stream=watch") || req.URL.Query().Get("watch") == "true" || req.URL.Query().Get("watch") == "1" {
		resp.Body = &watchBody{rc: resp.Body, dec: newDecoder(resp.Body), t: t, secretsPath: secretsPath}
		resp.ContentLength = -1
		resp.Header.Del("Content-Length")
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScan+1))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if len(body) > maxScan {
		if t.mask && secretsPath {
			resp.Body.Close()
			return nil, errors.Join(ErrUnmaskable, errors.New("the response is over 64 MiB"))
		}
		// Too large to inspect; what was read goes first, the rest follows.
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	if secretsPath || bytes.Contains(body, []byte(`"Secret`)) {
		body, err = t.rewrite(body, secretsPath)
		if err != nil {
			return nil, err
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", itoa(len(body)))
	return resp, nil
}

// rewrite records (and, when masking, replaces) the Secret values in one
// JSON document, returning the document the client gets.
func (t roundTripper) rewrite(body []byte, secretsPath bool) ([]byte, error) {
	var v any
	if err := newDecoder(bytes.NewReader(body)).Decode(&v); err != nil {
		if t.mask && secretsPath {
			return nil, errors.Join(ErrUnmaskable, err)
		}
		return body, nil
	}
	if !t.set.walk(v, secretsPath, false, t.mask) || !t.mask {
		return body, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, errors.Join(ErrUnmaskable, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// watchBody rewrites a watch stream one event at a time.
type watchBody struct {
	rc          io.ReadCloser
	dec         *json.Decoder
	t           roundTripper
	secretsPath bool
	buf         []byte
	err         error
}

func (w *watchBody) Read(p []byte) (int, error) {
	for len(w.buf) == 0 {
		if w.err != nil {
			return 0, w.err
		}
		var raw json.RawMessage
		if err := w.dec.Decode(&raw); err != nil {
			w.err = err
			if !errors.Is(err, io.EOF) && w.t.mask {
				w.err = errors.Join(ErrUnmaskable, err)
			}
			continue
		}
		out, err := w.t.rewrite(raw, w.secretsPath)
		if err != nil {
			w.err = err
			continue
		}
		w.buf = append(out, '\n')
	}
	n := copy(p, w.buf)
	w.buf = w.buf[n:]
	return n, nil
}

func (w *watchBody) Close() error { return w.rc.Close() }

type readCloser struct {
	io.Reader
	io.Closer
}

func newDecoder(r io.Reader) *json.Decoder {
	dec := json.NewDecoder(r)
	dec.UseNumber() // re-encoding must not turn 12345678901 into 1.2345678901e+10
	return dec
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// lastApplied is kubectl's annotation holding the object as last applied,
// Secret values included.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// walk visits a decoded JSON or YAML value and records the values of every
// object that is a Secret: by kind, as an item of a SecretList, or any
// object in a response to a Secrets path (Table rows and metadata-only
// objects carry no kind of their own). With mask, it also replaces them in
// place. It reports whether it changed anything.
func (s *Set) walk(v any, secretsPath, isSecret, mask bool) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		kind, _ := x["kind"].(string)
		_, hasMeta := x["metadata"].(map[string]any)
		if kind == "Secret" || (secretsPath && hasMeta) {
			isSecret = true
		}
		if isSecret {
			changed = s.secret(x, mask)
		}
		itemsAreSecrets := kind == "SecretList"
		for k, child := range x {
			switch {
			case isSecret && (k == "data" || k == "stringData" || k == "metadata"):
			case k == "items" && itemsAreSecrets:
				changed = s.walk(child, secretsPath, true, mask) || changed
			default:
				changed = s.walk(child, secretsPath, false, mask) || changed
			}
		}
	case []any:
		for _, child := range x {
			changed = s.walk(child, secretsPath, isSecret, mask) || changed
		}
	}
	return changed
}

// secret records (and with mask replaces) the values of one Secret object:
// data, stringData and the last-applied annotation.
func (s *Set) secret(obj map[string]any, mask bool) bool {
	changed := false
	if data, ok := obj["data"].(map[string]any); ok {
		for k, val := range data {
			str, ok := val.(string)
			if !ok {
				continue
			}
			s.AddBase64(str)
			if mask {
				data[k] = s.placeholder(str)
				changed = true
			}
		}
	}
	if data, ok := obj["stringData"].(map[string]any); ok {
		for k, val := range data {
			str, ok := val.(string)
			if !ok {
				continue
			}
			s.Add(str)
			if mask {
				data[k] = strings.Repeat("*", len(str))
				changed = true
			}
		}
	}
	meta, _ := obj["metadata"].(map[string]any)
	ann, _ := meta["annotations"].(map[string]any)
	if applied, ok := ann[lastApplied].(string); ok {
		var inner map[string]any
		if err := newDecoder(strings.NewReader(applied)).Decode(&inner); err != nil {
			// What cannot be read as an object cannot be masked value by value.
			s.Add(applied)
			if mask {
				ann[lastApplied] = Mask
				changed = true
			}
			return changed
		}
		if s.secret(inner, mask) && mask {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if enc.Encode(inner) == nil {
				ann[lastApplied] = buf.String()
			} else {
				ann[lastApplied] = Mask
			}
			changed = true
		}
	}
	return changed
}

// placeholder is the stand-in for a base64 value: the base64 of as many
// '*' as the value decodes to, recorded so that output shows Mask for it.
func (s *Set) placeholder(encoded string) string {
	n := len(encoded)
	if raw, err := base64.StdEncoding.DecodeString(encoded); err == nil {
		n = len(raw)
	}
	p := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'*'}, n))
	s.addPlaceholder(p)
	return p
}

// AddManifest records the values of every Secret in a YAML or JSON
// manifest of one or more documents, such as a Helm release's rendered
// manifest. A document that does not parse is skipped: what cannot be read
// as a Secret reveals no value.
func (s *Set) AddManifest(manifest string) {
	if !strings.Contains(manifest, "Secret") {
		return
	}
	dec := yaml.NewDecoder(strings.NewReader(manifest))
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			// The decoder cannot resume after a syntax error; fall back to
			// parsing the documents one by one.
			for _, part := range strings.Split(manifest, "\n---") {
				var one any
				if yaml.Unmarshal([]byte(part), &one) == nil {
					s.walk(one, false, false, false)
				}
			}
			return
		}
		s.walk(doc, false, false, false)
	}
}
