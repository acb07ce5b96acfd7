package searchsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/searchsink/searchtest"
	"github.com/kubechat/kubechat/internal/config"
)

// Credentials of the tests; none may show in an error or a log.
const (
	user     = "kubechat"
	password = "s3cret-Pa55word-for-bulk"
	apiKey   = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
)

var factories = map[searchtest.Product]chat.Factory{
	searchtest.Elasticsearch: NewElasticsearch,
	searchtest.OpenSearch:    NewOpenSearch,
}

// setup starts a fake of product and a platform on it; auth is "basic" or "apiKey".
func setup(t *testing.T, product searchtest.Product, auth, extra string) (*searchtest.Server, chat.Platform) {
	t.Helper()
	t.Setenv("SEARCH_PASSWORD", password)
	t.Setenv("SEARCH_API_KEY", apiKey)
	creds := searchtest.Auth{Username: user, Password: password}
	settings := "username: " + user + "\npassword: ${SEARCH_PASSWORD}\n"
	if auth == "apiKey" {
		creds = searchtest.Auth{APIKey: apiKey}
		settings = "apiKey: ${SEARCH_API_KEY}\n"
	}
	srv := searchtest.New(product, creds)
	t.Cleanup(srv.Close)
	raw, err := config.RawFromYAML("addresses: [" + srv.URL() + "]\nindices:\n  alerts: kubechat-{2006.01.02}\n" + settings + extra)
	require.NoError(t, err)
	p, err := factories[product](string(product), raw, chat.Deps{Cluster: "prod"})
	require.NoError(t, err)
	return srv, p
}

// fake adapts the REST fake to the conformance suite: a document is a
// message, and one that replaces another is an edit of it.
type fake struct{ srv *searchtest.Server }

func (f fake) Messages(string) []chattest.Posted {
	var out []chattest.Posted
	at := map[string]int{}
	for _, d := range f.srv.Documents() {
		text := documentText(d.Source)
		if old, ok := d.Source["replaces"].(string); ok {
			if i, ok := at[old]; ok {
				out[i].Text, out[i].Edits = text, out[i].Edits+1
				continue
			}
		}
		at[d.ID] = len(out)
		out = append(out, chattest.Posted{ID: d.ID, Text: text})
	}
	return out
}

// documentText is what a reader of the index sees of a document.
func documentText(src map[string]any) string {
	var b strings.Builder
	for _, k := range []string{"title", "text", "context"} {
		if v, ok := src[k].(string); ok {
			b.WriteString(v + "\n")
		}
	}
	if fields, ok := src["fields"].(map[string]any); ok {
		for k, v := range fields {
			fmt.Fprintf(&b, "%s: %v\n", k, v)
		}
	}
	return b.String()
}

func (f fake) Files(string) []chattest.Uploaded { return nil }
func (f fake) Mention(string, string, string) error {
	return errors.New("an index sends nothing to the agent")
}

func (f fake) Click(string, string, string, string, string) error {
	return errors.New("an index sends nothing to the agent")
}
func (f fake) FailNext(n, status int, retryAfter time.Duration) {
	f.srv.FailNext(n, status, retryAfter)
}
func (f fake) Drop()            {}
func (f fake) Connections() int { return 0 }

func TestConformance(t *testing.T) {
	for product := range factories {
		t.Run(string(product), func(t *testing.T) {
			chattest.RunConformance(t, func(t *testing.T) chattest.Setup {
				srv, p := setup(t, product, "basic", "")
				return chattest.Setup{
					Platform: p,
					Fake:     fake{srv},
					Channel:  chat.Channel{Name: "alert-index", ID: "alerts"},
					Secrets:  []string{password},
					Sink:     true,
				}
			})
		})
	}
}

// queue runs a delivery queue over p, as the alerting pipeline does, with
// metrics and a log kept for the test.
func queue(t *testing.T, p chat.Platform, deadline time.Duration) (*chat.Queue, *prometheus.Registry, *bytes.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	q := chat.NewQueue(p, p.Name(), chat.Channel{Name: "alert-index", ID: "alerts"}, chat.QueueOptions{
		PerSecond: 1000, Metrics: chat.NewDeliveryMetrics(reg), Log: slog.New(slog.NewTextHandler(logs, nil)),
		Backoff: chat.Backoff{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Deadline: deadline},
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return q, reg, &logs.buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// results collects each job's outcome.
type results struct {
	mu  sync.Mutex
	got map[string]error
}

func (r *results) enqueue(q *chat.Queue, keys ...string) {
	for _, key := range keys {
		q.Enqueue(chat.Job{
			Build: func() (chat.Message, bool) {
				return chat.Message{Title: "alert " + key, Key: key, Level: chat.LevelError, Sections: []chat.Section{{Text: "Back-off restarting"}}}, true
			},
			Done: func(_ context.Context, _ chat.MessageRef, err error) {
				r.mu.Lock()
				defer r.mu.Unlock()
				if r.got == nil {
					r.got = map[string]error{}
				}
				r.got[key] = err
			},
		})
	}
}

func (r *results) wait(t *testing.T, n int) map[string]error {
	t.Helper()
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got) == n
	}, time.Minute, time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

func keys(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("k%03d", i))
	}
	return out
}

// TestBulkBatchesAreBoundedAndAuthenticated: 25 alerts queued at once go
// in three requests of at most 10, each with the credentials, into the
// day's index, once each.
func TestBulkBatchesAreBoundedAndAuthenticated(t *testing.T) {
	for product := range factories {
		for _, auth := range []string{"basic", "apiKey"} {
			t.Run(string(product)+"/"+auth, func(t *testing.T) {
				srv, p := setup(t, product, auth, "batch: {size: 10, interval: 1m}\n")
				q, _, _ := queue(t, p, time.Hour)
				r := &results{}
				// Queued before the sender looks: the batches fill at once.
				r.enqueue(q, keys(20)...)
				got := r.wait(t, 20)
				for _, err := range got {
					require.NoError(t, err)
				}
				r.enqueue(q, keys(30)[20:]...) // 10 more fill the next batch
				r.wait(t, 30)
				require.Equal(t, []int{10, 10, 10}, srv.Requests())
				want := searchtest.BasicAuthHeader(user, password)
				if auth == "apiKey" {
					want = "ApiKey " + apiKey
				}
				wantScheme, wantCreds, _ := strings.Cut(want, " ")
				for _, h := range srv.Headers() {
					// The scheme is case-insensitive: go-elasticsearch sends "APIKey".
					scheme, creds, _ := strings.Cut(h.Get("Authorization"), " ")
					require.True(t, strings.EqualFold(wantScheme, scheme), "scheme %q", scheme)
					require.Equal(t, wantCreds, creds)
				}
				docs := srv.Documents()
				require.Len(t, docs, 30)
				for i, d := range docs {
					require.Equal(t, fmt.Sprintf("k%03d", i), d.ID, "in order, each once")
					require.Equal(t, "kubechat-"+time.Now().UTC().Format("2006.01.02"), d.Index)
					require.Equal(t, "alert "+d.ID, d.Source["title"])
					require.Equal(t, "prod", d.Source["cluster"])
					require.Equal(t, "alert-index", d.Source["channel"])
				}
			})
		}
	}
}

// TestBulkRetriesWhatWasNotTaken: a 429 for the whole request (with its
// Retry-After), a 503, and per-document 429s are retried; a document the
// cluster refuses (a mapping error) is dead-lettered and counted; nothing
// is indexed twice.
func TestBulkRetriesWhatWasNotTaken(t *testing.T) {
	for product := range factories {
		t.Run(string(product), func(t *testing.T) {
			srv, p := setup(t, product, "basic", "batch: {size: 5, interval: 1m}\n")
			var mu sync.Mutex
			tries := map[string]int{}
			srv.FailItems(func(_, id string, _ map[string]any) int {
				mu.Lock()
				defer mu.Unlock()
				tries[id]++
				switch {
				case id == "k001" && tries[id] <= 2:
					return http.StatusTooManyRequests
				case id == "k003":
					return http.StatusBadRequest
				}
				return 0
			})
			srv.FailNext(1, http.StatusTooManyRequests, time.Second)
			q, reg, logs := queue(t, p, time.Hour)
			r := &results{}
			r.enqueue(q, keys(5)...)
			got := r.wait(t, 5)
			require.ErrorContains(t, got["k003"], "mapper_parsing_exception")
			require.True(t, chat.IsPermanent(got["k003"]))
			for _, k := range []string{"k000", "k001", "k002", "k004"} {
				require.NoError(t, got[k], k)
			}
			// The whole-request 429 is not counted (only 200 answers are);
			// then all 5, then k001 alone (its second 429), then k001 alone
			// again, taken; k003 was dead-lettered, never retried.
			require.Equal(t, []int{5, 1, 1}, srv.Requests(), "a retry carries only what was not taken")
			require.Len(t, srv.Documents(), 4)
			name := p.Name()
			require.Equal(t, 4.0, notifications(t, reg, name, "delivered"))
			require.Equal(t, 1.0, notifications(t, reg, name, "dead_letter"))
			require.Contains(t, logs.String(), "message dead-lettered")
			require.NotContains(t, logs.String(), password)
		})
	}
}

// notifications is kubechat_notifications_total for platform and result.
func notifications(t *testing.T, reg *prometheus.Registry, platform, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "kubechat_notifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["platform"] == platform && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestOutageLosesNothing: while the cluster is down the queue keeps its
// documents; once it is back they are all indexed, once, in order.
func TestOutageLosesNothing(t *testing.T) {
	for product := range factories {
		t.Run(string(product), func(t *testing.T) {
			srv, p := setup(t, product, "basic", "batch: {size: 100, interval: 10ms}\n")
			srv.SetDown(true)
			q, _, _ := queue(t, p, time.Hour)
			r := &results{}
			r.enqueue(q, keys(3)...)
			require.Eventually(t, func() bool { return srv.Calls() >= 5 }, time.Minute, time.Millisecond)
			r.enqueue(q, keys(6)[3:]...)
			require.Empty(t, srv.Documents())
			srv.SetDown(false)
			for _, err := range r.wait(t, 6) {
				require.NoError(t, err)
			}
			docs := srv.Documents()
			require.Len(t, docs, 6)
			for i, d := range docs {
				require.Equal(t, fmt.Sprintf("k%03d", i), d.ID)
			}
		})
	}
}

// TestWrongCredentialsArePermanentAndMasked: a 401 dead-letters at once
// and its error holds no credential.
func TestWrongCredentialsArePermanentAndMasked(t *testing.T) {
	for product := range factories {
		t.Run(string(product), func(t *testing.T) {
			t.Setenv("SEARCH_PASSWORD", password)
			srv := searchtest.New(product, searchtest.Auth{Username: user, Password: "another"})
			t.Cleanup(srv.Close)
			raw, err := config.RawFromYAML("addresses: [" + srv.URL() + "]\nindices:\n  alerts: kubechat\nusername: " + user + "\npassword: ${SEARCH_PASSWORD}\n")
			require.NoError(t, err)
			p, err := factories[product]("search", raw, chat.Deps{})
			require.NoError(t, err)
			_, err = p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "x"})
			require.Error(t, err)
			require.True(t, chat.IsPermanent(err), "%v", err)
			require.Contains(t, err.Error(), "401")
			require.NotContains(t, err.Error(), password)
		})
	}
}

// TestNotElasticsearchIsPermanent: a server that fails go-elasticsearch's
// product check (no X-Elastic-Product header) dead-letters at once, with
// an error that says so, instead of being retried until the deadline.
func TestNotElasticsearchIsPermanent(t *testing.T) {
	srv := searchtest.New(searchtest.OpenSearch, searchtest.Auth{})
	t.Cleanup(srv.Close)
	raw, err := config.RawFromYAML("addresses: [" + srv.URL() + "]\nindices:\n  alerts: kubechat\n")
	require.NoError(t, err)
	p, err := NewElasticsearch("search", raw, chat.Deps{})
	require.NoError(t, err)
	_, err = p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "x", Key: "k"})
	require.Error(t, err)
	require.True(t, chat.IsPermanent(err), "%v", err)
	require.ErrorContains(t, err, "is not Elasticsearch")
	require.ErrorContains(t, err, "use the opensearch platform")
}

// TestAlertDocuments: a failing alert and its resolution are two
// documents naming the same alert, the second the first's replacement.
func TestAlertDocuments(t *testing.T) {
	srv, p := setup(t, searchtest.Elasticsearch, "basic", "")
	ch := chat.Channel{Name: "alert-index", ID: "alerts"}
	queued := time.Date(2026, 12, 6, 23, 59, 0, 0, time.UTC)
	ref, err := p.Post(t.Context(), ch, chat.Message{Title: "CrashLoopBackOff: shop/web", Key: "m1", Alert: "alert.1", Queued: queued,
		Sections: []chat.Section{{Fields: []chat.Field{{Name: "Namespace", Value: "shop"}}}}})
	require.NoError(t, err)
	_, err = p.Post(t.Context(), ch, chat.Message{Title: "Resolved: shop/web", Key: "m2", Alert: "alert.1", Resolved: true, Replace: &ref, Queued: queued.Add(2 * time.Minute)})
	require.NoError(t, err)
	docs := srv.Documents()
	require.Len(t, docs, 2)
	require.Equal(t, "kubechat-2026.12.06", docs[0].Index, "the day it was queued")
	require.Equal(t, "kubechat-2026.12.07", docs[1].Index)
	require.Equal(t, "firing", docs[0].Source["status"])
	require.Equal(t, "resolved", docs[1].Source["status"])
	require.Equal(t, "alert.1", docs[1].Source["alert"])
	require.Equal(t, "m1", docs[1].Source["replaces"])
	require.Equal(t, "shop", docs[0].Source["fields"].(map[string]any)["Namespace"])
	require.Equal(t, "2026-12-06T23:59:00Z", docs[0].Source["@timestamp"])
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	t.Setenv("PW", password)
	for yaml, want := range map[string]string{
		"indices: {a: x}\n":                                                      "settings.addresses: name at least one URL",
		"addresses: [https://es:9200]\n":                                         "settings.indices: name at least one channel id",
		"addresses: [ftp://es]\nindices: {a: x}\n":                               `settings.addresses[0]: "ftp://es" is not an http(s) URL`,
		"addresses: [https://u:p@es]\nindices: {a: x}\n":                         "settings.addresses[0]: credentials go in username/password or apiKey",
		"addresses: [https://es]\nindices: {a: Kubechat}\n":                      "settings.indices.a: \"Kubechat\": index names are lower case",
		"addresses: [https://es]\nindices: {a: 'k-{2006}-{01}'}\n":               "settings.indices.a: \"k-{2006}-{01}\": write at most one time layout",
		"addresses: [https://es]\nindices: {a: _k}\n":                            "index names cannot start with -, _ or +",
		"addresses: [https://es]\nindices: {a: k}\nusername: u\n":                "settings.username: needs settings.password",
		"addresses: [https://es]\nindices: {a: k}\nbatch: {size: 20000}\n":       "settings.batch.size: 20000 is not between 1 and 10000",
		"addresses: [https://es]\nindices: {a: k}\npassword: " + password + "\n": "inline secret values are not allowed",
		"addresses: [https://es]\nindices: {a: k}\nx: 1\n":                       `unknown field "x"`,
	} {
		for product, factory := range factories {
			raw, err := config.RawFromYAML(yaml)
			if err == nil {
				_, err = factory("search", raw, chat.Deps{})
			}
			require.ErrorContains(t, err, want, "%s: %s", product, yaml)
			require.NotContains(t, err.Error(), password)
		}
	}
}

func TestIndexName(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600*10))
	require.Equal(t, "kubechat-2026.03.03", IndexName("kubechat-{2006.01.02}", at), "the day in UTC")
	require.Equal(t, "alerts-2026-03", IndexName("alerts-{2006-01}", at))
	require.Equal(t, "alerts", IndexName("alerts", at))
}
