// Package searchsink is the "elasticsearch" and "opensearch" sinks: every
// alert becomes a document in a daily index, written with the _bulk API
// (https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-bulk)
// through each product's official Go client, go-elasticsearch/v8 and
// opensearch-go/v4. A channel of these platforms is an index: its id names
// one of the settings' index patterns.
//
// Documents go in bounded batches (chat.Batcher): the channel's queue
// hands over what it holds, at most batch.size documents a request, and a
// lone alert waits at most batch.interval for company. Each document keeps
// its own outcome: the ones the cluster could not take yet (429, 5xx) are
// retried with the queue's backoff, the ones it refused (a mapping error)
// are dead-lettered and counted. The clients' own retries are off, so that
// retries, their backoff and their metrics are the delivery core's.
//
// A document's _id is its message's key, the same on every retry, written
// with the index action: a retry after a lost answer overwrites the same
// document instead of adding one. An edit (a recovery, a repeat counted) is
// a document of its own that names the one it edits (replaces) and the
// alert (alert, status), so the index keeps the alert's history.
//
// It receives nothing: Listen waits for its context.
package searchsink

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/redact"
)

// Settings configure the elasticsearch and opensearch platforms.
type Settings struct {
	// Addresses are the cluster's URLs (https://es.example.com:9200).
	Addresses []string `yaml:"addresses" jsonschema:"required"`
	// Username and Password authenticate with HTTP basic auth.
	Username string         `yaml:"username"`
	Password *config.Secret `yaml:"password"`
	// APIKey authenticates with an API key instead (the base64 "id:key"
	// Elasticsearch and OpenSearch give): "Authorization: ApiKey ...".
	APIKey *config.Secret `yaml:"apiKey"`
	// Indices maps each channel id to its index pattern: the text in braces
	// is a Go time layout, filled with the day (UTC) the alert was queued:
	// "kubechat-{2006.01.02}" writes to kubechat-2026.12.07.
	Indices map[string]string `yaml:"indices" jsonschema:"required"`
	// Batch bounds the bulk requests.
	Batch Batch `yaml:"batch"`
}

// Batch bounds the bulk requests.
type Batch struct {
	// Size is the most documents in one request (default 500, at most 10000).
	Size int `yaml:"size"`
	// Interval is the longest a document waits for others to fill its
	// batch (default 2s, at most 1m).
	Interval config.Duration `yaml:"interval"`
}

// Document is what the index holds of one message.
type Document struct {
	Timestamp time.Time         `json:"@timestamp"`
	Cluster   string            `json:"cluster,omitempty"`
	Channel   string            `json:"channel"`
	Title     string            `json:"title"`
	Level     string            `json:"level,omitempty"`
	Text      string            `json:"text,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
	Context   string            `json:"context,omitempty"`
	// Alert is the alert's identity, the same on its failing and resolved
	// documents; Status is "firing" or "resolved" for those.
	Alert  string `json:"alert,omitempty"`
	Status string `json:"status,omitempty"`
	// Replaces is the _id of the document this one edits; Thread the _id
	// of the one it replies to.
	Replaces string `json:"replaces,omitempty"`
	Thread   string `json:"thread,omitempty"`
}

// bulker sends one _bulk request; each product's client is one.
type bulker interface {
	// bulk posts body and returns the answer's status, its Retry-After
	// and, for a 2xx, the answer's items; err is a failure to get one.
	bulk(ctx context.Context, body []byte) (status int, retryAfter string, items []item, err error)
}

// item is one action's result in a _bulk answer.
type item struct {
	ID     string     `json:"_id"`
	Status int        `json:"status"`
	Error  *itemError `json:"error,omitempty"`
}

// itemError is why an action failed.
type itemError struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

type platform struct {
	product string // "elasticsearch" or "opensearch", for errors
	name    string
	cluster string
	indices map[string]string
	limits  chat.BatchLimits
	client  bulker
	secrets *redact.Set
}

// Batch limits.
const (
	defaultSize     = 500
	maxSize         = 10000
	defaultInterval = 2 * time.Second
	maxInterval     = time.Minute
)

// decode reads and checks the settings of a product's platform.
func decode(product, name string, raw config.Raw) (Settings, *redact.Set, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return s, nil, fmt.Errorf("%s %q: %w", product, name, err)
	}
	var errs []error
	if len(s.Addresses) == 0 {
		errs = append(errs, errors.New("settings.addresses: name at least one URL of the cluster"))
	}
	for i, a := range s.Addresses {
		if err := config.CheckHTTPURL(fmt.Sprintf("settings.addresses[%d]", i), a); err != nil {
			errs = append(errs, err)
		} else if strings.Contains(a, "@") {
			errs = append(errs, fmt.Errorf("settings.addresses[%d]: credentials go in username/password or apiKey, not in the URL", i))
		}
	}
	if s.Password != nil && s.Username == "" {
		errs = append(errs, errors.New("settings.password: needs settings.username"))
	}
	if s.Username != "" && s.Password == nil {
		errs = append(errs, errors.New("settings.username: needs settings.password"))
	}
	if s.APIKey != nil && s.Username != "" {
		errs = append(errs, errors.New("settings.apiKey: set either apiKey or username and password, not both"))
	}
	if len(s.Indices) == 0 {
		errs = append(errs, errors.New("settings.indices: name at least one channel id with its index pattern"))
	}
	for _, id := range slices.Sorted(maps.Keys(s.Indices)) {
		if err := checkPattern(s.Indices[id]); err != nil {
			errs = append(errs, fmt.Errorf("settings.indices.%s: %w", id, err))
		}
	}
	if s.Batch.Size < 0 || s.Batch.Size > maxSize {
		errs = append(errs, fmt.Errorf("settings.batch.size: %d is not between 1 and %d", s.Batch.Size, maxSize))
	}
	if d := time.Duration(s.Batch.Interval); d < 0 || d > maxInterval {
		errs = append(errs, fmt.Errorf("settings.batch.interval: %s is not between 0 and %s", d, maxInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return s, nil, fmt.Errorf("%s %q: %w", product, name, err)
	}
	secrets := redact.NewSet()
	if s.Password != nil {
		secrets.Add(s.Password.Reveal())
	}
	if s.APIKey != nil {
		secrets.Add(s.APIKey.Reveal())
	}
	return s, secrets, nil
}

func newPlatform(product, name string, s Settings, secrets *redact.Set, client bulker, d chat.Deps) *platform {
	l := chat.BatchLimits{Size: s.Batch.Size, Wait: time.Duration(s.Batch.Interval)}
	if l.Size == 0 {
		l.Size = defaultSize
	}
	if l.Wait == 0 {
		l.Wait = defaultInterval
	}
	return &platform{product: product, name: name, cluster: d.Cluster, indices: s.Indices, limits: l, client: client, secrets: secrets}
}

// transport is the HTTP transport of the product's client: the agent's,
// or a fresh one.
func transport(d chat.Deps) http.RoundTripper {
	if d.HTTPClient != nil && d.HTTPClient.Transport != nil {
		return d.HTTPClient.Transport
	}
	return http.DefaultTransport.(*http.Transport).Clone()
}

func (p *platform) Name() string { return p.name }

// Batch bounds the batches.
func (p *platform) Batch() chat.BatchLimits { return p.limits }

// Listen has nothing to receive: an index only takes documents.
func (p *platform) Listen(ctx context.Context, _ chat.Handler) error {
	<-ctx.Done()
	return nil
}

// Post writes one document, as a batch of one.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	refs, errs := p.PostBatch(ctx, to, []chat.Message{m})
	return refs[0], errs[0]
}

// PostBatch writes ms in one _bulk request and returns each one's outcome.
func (p *platform) PostBatch(ctx context.Context, to chat.Channel, ms []chat.Message) ([]chat.MessageRef, []error) {
	refs, errs := make([]chat.MessageRef, len(ms)), make([]error, len(ms))
	all := func(err error) ([]chat.MessageRef, []error) {
		for i := range errs {
			errs[i] = err
		}
		return refs, errs
	}
	pattern, ok := p.indices[to.ID]
	if !ok {
		return all(chat.Permanent(fmt.Errorf("%s %q: unknown channel %q: settings.indices has no index for it", p.product, p.name, to.ID)))
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for i, m := range ms {
		at := m.Queued
		if at.IsZero() {
			at = time.Now()
		}
		id := m.Key
		if id == "" {
			id = newID()
		}
		refs[i] = chat.MessageRef{Platform: p.name, Channel: to.ID, ID: id}
		switch {
		case m.Replace != nil && m.Replace.ID != "":
			// An edit is a document of its own, but the message it edits
			// keeps its identity: the next edit names the same one.
			refs[i] = *m.Replace
			refs[i].Platform, refs[i].Channel = p.name, to.ID
		case m.Thread != nil:
			refs[i].Thread = m.Thread.Root()
		}
		action := map[string]map[string]string{"index": {"_index": IndexName(pattern, at), "_id": id}}
		if err := errors.Join(enc.Encode(action), enc.Encode(p.document(to, m, at))); err != nil {
			return all(chat.Permanent(fmt.Errorf("%s %q: encode: %w", p.product, p.name, err)))
		}
	}
	status, retryAfter, items, err := p.client.bulk(ctx, body.Bytes())
	if err != nil {
		if chat.IsPermanent(err) {
			return all(chat.Permanent(p.mask(to, "bulk", err)))
		}
		return all(p.mask(to, "bulk", err))
	}
	if status/100 != 2 {
		return all(p.classify(to, status, retryAfter, fmt.Errorf("bulk: HTTP %d", status)))
	}
	if len(items) != len(ms) {
		return all(fmt.Errorf("%s %q: channel %q: bulk answered %d items for %d documents", p.product, p.name, to.ID, len(items), len(ms)))
	}
	for i, it := range items {
		if it.Status/100 == 2 {
			continue
		}
		what := fmt.Sprintf("document %s: HTTP %d", refs[i].ID, it.Status)
		if it.Error != nil {
			what += ": " + it.Error.Type + ": " + it.Error.Reason
		}
		errs[i] = p.classify(to, it.Status, "", errors.New(what))
	}
	return refs, errs
}

// document is what the index keeps of m.
func (p *platform) document(to chat.Channel, m chat.Message, at time.Time) Document {
	d := Document{Timestamp: at.UTC(), Cluster: p.cluster, Channel: to.Name, Title: m.Title, Level: string(m.Level), Context: m.Context, Alert: m.Alert}
	var text []string
	for _, s := range m.Sections {
		for _, f := range s.Fields {
			if d.Fields == nil {
				d.Fields = map[string]string{}
			}
			d.Fields[f.Name] = f.Value
		}
		if s.Text != "" {
			text = append(text, s.Text)
		}
		if s.Code != "" {
			text = append(text, s.Code)
		}
	}
	d.Text = strings.Join(text, "\n")
	switch {
	case m.Alert != "" && m.Resolved:
		d.Status = "resolved"
	case m.Alert != "":
		d.Status = "firing"
	}
	if m.Replace != nil {
		d.Replaces = m.Replace.ID
	}
	if m.Thread != nil {
		d.Thread = m.Thread.Root()
	}
	return d
}

// classify marks an error by its HTTP status: 429 (with its Retry-After),
// 408 and 5xx are retryable, other 4xx permanent.
func (p *platform) classify(to chat.Channel, status int, retryAfter string, err error) error {
	err = p.mask(to, "", err)
	switch {
	case status == http.StatusTooManyRequests:
		if secs, perr := strconv.Atoi(retryAfter); perr == nil && secs > 0 {
			return chat.RetryAfter(time.Duration(secs)*time.Second, err)
		}
		return err
	case status == http.StatusRequestTimeout, status >= 500:
		return err
	}
	return chat.Permanent(err)
}

// mask names the platform and channel in err and masks the credentials.
func (p *platform) mask(to chat.Channel, op string, err error) error {
	if op != "" {
		op += ": "
	}
	return fmt.Errorf("%s %q: channel %q: %s%s", p.product, p.name, to.ID, op, p.secrets.Redact(err.Error()))
}

// IndexName fills pattern's time layout (the text in braces) with at's
// day in UTC.
func IndexName(pattern string, at time.Time) string {
	open := strings.IndexByte(pattern, '{')
	if open < 0 {
		return pattern
	}
	end := strings.IndexByte(pattern[open:], '}') + open
	return pattern[:open] + at.UTC().Format(pattern[open+1:end]) + pattern[end+1:]
}

// checkPattern refuses an index pattern whose names the cluster would refuse.
func checkPattern(pattern string) error {
	if strings.Count(pattern, "{") > 1 || strings.Count(pattern, "{") != strings.Count(pattern, "}") ||
		(strings.Contains(pattern, "{") && strings.Index(pattern, "}") < strings.Index(pattern, "{")) {
		return fmt.Errorf("%q: write at most one time layout, in braces (kubechat-{2006.01.02})", pattern)
	}
	name := IndexName(pattern, time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("%q: not an index name", pattern)
	case strings.ToLower(name) != name:
		return fmt.Errorf("%q: index names are lower case", pattern)
	case strings.ContainsAny(name, `\/*?"<>| ,#:`):
		return fmt.Errorf(`%q: index names cannot hold \ / * ? " < > | , # : or a space`, pattern)
	case strings.IndexAny(name[:1], "-_+") == 0:
		return fmt.Errorf("%q: index names cannot start with -, _ or +", pattern)
	case len(name) > 255:
		return fmt.Errorf("%q: index names are at most 255 bytes", pattern)
	}
	return nil
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
