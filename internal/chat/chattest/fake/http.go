package fake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// WriteJSON answers with the status and body encoded as JSON, with the
// Content-Type "application/json; charset=utf-8" and a final newline.
func WriteJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// TooLarge reports whether err comes from reading past the limit of an
// http.MaxBytesReader.
func TooLarge(err error) bool {
	var maxErr *http.MaxBytesError
	return errors.As(err, &maxErr)
}

// SplitPath returns the unescaped segments of an escaped URL path, split
// at every "/" before unescaping, so that a segment may hold an escaped
// "/" ("a%2Fb") as well as characters a client left unescaped.
func SplitPath(escaped string) ([]string, error) {
	segments := strings.Split(escaped, "/")
	for i, seg := range segments {
		unescaped, err := url.PathUnescape(seg)
		if err != nil {
			return nil, fmt.Errorf("unescape path segment %q: %w", seg, err)
		}
		segments[i] = unescaped
	}
	return segments, nil
}

// Monotonic hands out strictly increasing timestamps, taken from the clock
// where it can, in whatever unit the caller reads the clock in: message
// timestamps and time-based ids that must be unique and ordered even when
// the clock has not moved. The zero value is ready. A Monotonic is safe
// for concurrent use.
type Monotonic struct {
	mu   sync.Mutex
	last int64
}

// Next returns now if it is later than every value Next returned before,
// and otherwise the last of them plus one.
func (m *Monotonic) Next(now int64) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last = max(now, m.last+1)
	return m.last
}

// MediaType returns the media type of the request's Content-Type, such as
// "multipart/form-data", or "" if it has none or it cannot be parsed.
func MediaType(r *http.Request) string {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mediaType
}

// ReadParts reads a multipart/form-data request body, handing fn each part
// with its content, in order. Use TooLarge to tell a body over the limit of
// an http.MaxBytesReader from one that is malformed.
func ReadParts(r *http.Request, fn func(part *multipart.Part, content []byte)) error {
	parts, err := r.MultipartReader()
	if err != nil {
		return fmt.Errorf("read multipart body: %w", err)
	}
	for {
		part, err := parts.NextPart()
		if err == io.EOF { // the end of the parts; a body without any wraps io.EOF, an error
			return nil
		}
		if err != nil {
			return fmt.Errorf("read multipart body: %w", err)
		}
		content, err := io.ReadAll(part)
		if err != nil {
			return fmt.Errorf("read part %q: %w", part.FormName(), err)
		}
		fn(part, content)
	}
}
