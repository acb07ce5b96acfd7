package alertmanager

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

const firing = `{"version":"4","groupKey":"{}:{alertname=\"HighErrorRate\"}","status":"firing","receiver":"kubechat",
"groupLabels":{"alertname":"HighErrorRate"},"commonLabels":{"alertname":"HighErrorRate","namespace":"web","severity":"critical"},
"commonAnnotations":{"summary":"web answers 5xx"},"externalURL":"http://am.example",
"alerts":[
 {"status":"firing","labels":{"alertname":"HighErrorRate","namespace":"web","severity":"critical","pod":"web-1"},"annotations":{},"startsAt":"2026-11-23T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"a"},
 {"status":"firing","labels":{"alertname":"HighErrorRate","namespace":"web","severity":"critical","pod":"web-2"},"annotations":{},"startsAt":"2026-11-23T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"b"},
 {"status":"resolved","labels":{"alertname":"HighErrorRate","namespace":"web","severity":"critical","pod":"web-3"},"annotations":{},"startsAt":"2026-11-23T10:00:00Z","endsAt":"2026-11-23T10:05:00Z","fingerprint":"c"}]}`

type recording struct {
	mu  sync.Mutex
	got []event.Event
}

func (r *recording) emit(_ context.Context, ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ev)
}

func (r *recording) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.got...)
}

func secret(_ *testing.T, v string) *config.Secret {
	s := config.NewSecret(v, "test")
	return &s
}

// started runs the source with a recording emit until the test ends.
func started(t *testing.T, am config.AlertmanagerSource) (*Source, *recording) {
	t.Helper()
	s, err := New(config.Source{Name: "prom", Type: config.SourceAlertmanager, Alertmanager: &am}, "prod", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rec := &recording{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Start(ctx, rec.emit) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	require.Eventually(t, func() bool {
		emit, _ := s.Running()
		return emit != nil
	}, 5*time.Second, time.Millisecond)
	return s, rec
}

func do(s *Source, method, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/alertmanager/prom", strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func TestBearerTokenRequired(t *testing.T) {
	s, rec := started(t, config.AlertmanagerSource{BearerToken: secret(t, "tok")})
	for name, h := range map[string]map[string]string{
		"none":         nil,
		"wrong token":  {"Authorization": "Bearer nope"},
		"basic":        {"Authorization": "Basic dG9rOnRvaw=="},
		"token prefix": {"Authorization": "Bearer tokk"},
	} {
		w := do(s, http.MethodPost, firing, h)
		require.Equal(t, http.StatusUnauthorized, w.Code, name)
		require.NotEmpty(t, w.Header().Get("WWW-Authenticate"), name)
	}
	require.Empty(t, rec.events(), "nothing unauthenticated gets in")
	w := do(s, http.MethodPost, firing, map[string]string{"Authorization": "Bearer tok"})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Len(t, rec.events(), 1)
}

func TestBasicAuth(t *testing.T) {
	s, rec := started(t, config.AlertmanagerSource{BasicAuth: &config.BasicAuth{Username: "am", Password: secret(t, "pw")}})
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(firing))
	req.SetBasicAuth("am", "wrong")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	require.Equal(t, http.StatusUnauthorized, w.Code)
	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(firing))
	req.SetBasicAuth("am", "pw")
	w = httptest.NewRecorder()
	s.ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code)
	require.Len(t, rec.events(), 1)
}

func TestBadRequests(t *testing.T) {
	s, rec := started(t, config.AlertmanagerSource{BearerToken: secret(t, "tok")})
	auth := map[string]string{"Authorization": "Bearer tok"}
	require.Equal(t, http.StatusMethodNotAllowed, do(s, http.MethodGet, "", auth).Code)
	for body, want := range map[string]string{
		`{"version":"3","groupKey":"k","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"}}]}`:  `version: "3" is not supported`,
		`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"}}]}`:                 "groupKey: is required",
		`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"burning","labels":{"a":"b"}}]}`: `alerts[0].status: "burning"`,
		`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing","labels":{}}]}`:         "alerts[0].labels: is empty",
		`{"version":"4","groupKey":"k","status":"firing","alerts":[]}`:                                        "alerts: is empty",
		`{"version":"4","groupKey":"k","status":"firing","alerts":{"x":1}}`:                                   "alerts: cannot take a JSON object",
		`{"version":4}`: "version: cannot take a JSON number",
		`not json`:      "not a webhook payload",
	} {
		w := do(s, http.MethodPost, body, auth)
		require.Equal(t, http.StatusBadRequest, w.Code, body)
		require.Contains(t, w.Body.String(), want, body)
	}
	big := `{"version":"4","groupKey":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	require.Equal(t, http.StatusRequestEntityTooLarge, do(s, http.MethodPost, big, auth).Code)
	require.Empty(t, rec.events())
}

func TestNotRunningAnswers503(t *testing.T) {
	s, err := New(config.Source{Name: "prom", Alertmanager: &config.AlertmanagerSource{BearerToken: secret(t, "tok")}}, "prod", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	w := do(s, http.MethodPost, firing, map[string]string{"Authorization": "Bearer tok"})
	require.Equal(t, http.StatusServiceUnavailable, w.Code, "a standby makes Alertmanager retry")
}

func TestGroupBecomesOneEvent(t *testing.T) {
	s, rec := started(t, config.AlertmanagerSource{BearerToken: secret(t, "tok")})
	auth := map[string]string{"Authorization": "Bearer tok"}
	require.Equal(t, http.StatusOK, do(s, http.MethodPost, firing, auth).Code)
	resolved := strings.ReplaceAll(firing, `"status":"firing"`, `"status":"resolved"`)
	require.Equal(t, http.StatusOK, do(s, http.MethodPost, resolved, auth).Code)
	evs := rec.events()
	require.Len(t, evs, 2)

	f := evs[0]
	require.Equal(t, event.Failing, f.Transition)
	require.Equal(t, event.Critical, f.Level)
	require.Equal(t, "[FIRING:2] HighErrorRate in web", f.Title())
	require.Equal(t, "prod", f.Cluster)
	require.Equal(t, `{}:{alertname="HighErrorRate"}`, f.Group)
	require.Equal(t, event.Object{APIVersion: "alertmanager/v4", Kind: "Alert", Namespace: "web", Name: "HighErrorRate"}, f.Object)
	require.Equal(t, map[string]string{"alertname": "HighErrorRate", "namespace": "web", "severity": "critical"}, f.Labels,
		"the labels the firing alerts share")
	require.Contains(t, f.Message, "web answers 5xx")
	require.Contains(t, f.Message, "(pod=web-1)")
	require.Contains(t, f.Message, "(pod=web-2)")
	require.NotContains(t, f.Message, "web-3", "resolved alerts are not listed as firing")
	require.Contains(t, f.Fields, event.Field{Name: "Firing", Value: "2"})
	require.Contains(t, f.Fields, event.Field{Name: "Resolved", Value: "1"})

	r := evs[1]
	require.Equal(t, event.Resolved, r.Transition)
	require.Equal(t, f.Group, r.Group)
	require.Equal(t, f.Object, r.Object)
}

func TestNewRefusesNoAuth(t *testing.T) {
	_, err := New(config.Source{Name: "prom", Alertmanager: &config.AlertmanagerSource{}}, "prod", slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "needs alertmanager.bearerToken or alertmanager.basicAuth")
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(firing))
	f.Add([]byte(`{"version":"4"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Decode(body)
		if err != nil {
			return
		}
		s := &Source{name: "prom", cluster: "prod"}
		ev := s.Event(p)
		require.NotEmpty(t, ev.Group)
		require.NotEmpty(t, ev.Transition)
	})
}

// BenchmarkWebhook measures one authenticated webhook of a three-alert
// group: auth, body read, decode, checks and the group's event.
func BenchmarkWebhook(b *testing.B) {
	tok := config.NewSecret("tok", "bench")
	s, err := New(config.Source{Name: "prom", Alertmanager: &config.AlertmanagerSource{BearerToken: &tok}}, "prod", slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx, func(context.Context, event.Event) {}) }()
	b.Cleanup(func() { cancel(); <-done })
	for emit, _ := s.Running(); emit == nil; emit, _ = s.Running() {
		runtime.Gosched()
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/alertmanager/prom", strings.NewReader(firing))
		req.Header.Set("Authorization", "Bearer tok")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
