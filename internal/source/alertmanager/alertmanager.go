// Package alertmanager is the Alertmanager source: a webhook receiver for
// Alertmanager's webhook_config (payload version 4,
// https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
// Each notification becomes one event for its alert group (groupKey): a
// failing transition while any alert of the group fires, a resolved one
// when all have resolved, so a group gets one message, edited in place.
//
// Every request must carry the configured bearer token or basic auth
// credentials (401 otherwise); bodies are capped, and a malformed payload
// gets 400 with the offending field. While the source is not running (a
// standby replica), requests get 503, which Alertmanager retries.
package alertmanager

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/source/webhook"
)

// MaxBodyBytes caps a webhook request body. Alertmanager's own default cap
// on alerts per message is unlimited, so this is generous.
const MaxBodyBytes = 4 << 20

// Payload is Alertmanager's webhook payload, version 4.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a notification.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Source receives one configured Alertmanager's webhooks.
type Source struct {
	name    string
	cluster string
	auth    func(*http.Request) bool
	log     *slog.Logger

	webhook.Receiver
}

// New builds the source from its validated config.
func New(cfg config.Source, cluster string, log *slog.Logger) (*Source, error) {
	am := cfg.Alertmanager
	if am == nil {
		return nil, fmt.Errorf("source %q: the alertmanager block is missing", cfg.Name)
	}
	s := &Source{name: cfg.Name, cluster: cluster, log: log.With("source", cfg.Name)}
	switch {
	case am.BearerToken != nil && !am.BearerToken.IsZero():
		want := []byte("Bearer " + am.BearerToken.Reveal())
		s.auth = func(r *http.Request) bool {
			return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) == 1
		}
	case am.BasicAuth != nil && am.BasicAuth.Password != nil && !am.BasicAuth.Password.IsZero():
		user, pass := []byte(am.BasicAuth.Username), []byte(am.BasicAuth.Password.Reveal())
		s.auth = func(r *http.Request) bool {
			u, p, ok := r.BasicAuth()
			// Both compared, always, so timing tells nothing about which was wrong.
			uok := subtle.ConstantTimeCompare([]byte(u), user)
			pok := subtle.ConstantTimeCompare([]byte(p), pass)
			return ok && uok&pok == 1
		}
	default:
		return nil, fmt.Errorf("source %q: needs alertmanager.bearerToken or alertmanager.basicAuth", cfg.Name)
	}
	return s, nil
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// Path is where the agent's HTTP server mounts the receiver.
func (s *Source) Path() string { return "/alertmanager/" + s.name }

// ServeHTTP handles one webhook request.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !webhook.Post(w, r) {
		return
	}
	if !s.auth(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kubechat", Basic realm="kubechat"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		s.log.Warn("alertmanager webhook refused: bad or missing credentials", "remote", r.RemoteAddr)
		return
	}
	body, ok := webhook.Body(w, r, MaxBodyBytes)
	if !ok {
		return
	}
	p, err := Decode(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		s.log.Warn("alertmanager webhook refused: bad payload", "err", err)
		return
	}
	emit, ctx := s.Running()
	if emit == nil {
		// A standby replica, or shutting down: Alertmanager retries 5xx.
		http.Error(w, "this agent is not delivering alerts right now", http.StatusServiceUnavailable)
		return
	}
	emit(ctx, s.Event(p))
	w.WriteHeader(http.StatusOK)
}

// Decode parses and checks a webhook body; errors name the bad field.
func Decode(body []byte) (Payload, error) {
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Payload{}, fmt.Errorf("%s: cannot take a JSON %s", te.Field, te.Value)
		}
		return Payload{}, fmt.Errorf("the body is not a webhook payload: %v", err)
	}
	var errs []error
	if p.Version != "4" {
		errs = append(errs, fmt.Errorf("version: %q is not supported (want \"4\")", p.Version))
	}
	if p.GroupKey == "" {
		errs = append(errs, errors.New("groupKey: is required"))
	}
	if p.Status != StatusFiring && p.Status != StatusResolved {
		errs = append(errs, fmt.Errorf("status: %q is neither firing nor resolved", p.Status))
	}
	if len(p.Alerts) == 0 {
		errs = append(errs, errors.New("alerts: is empty"))
	}
	for i, a := range p.Alerts {
		if a.Status != StatusFiring && a.Status != StatusResolved {
			errs = append(errs, fmt.Errorf("alerts[%d].status: %q is neither firing nor resolved", i, a.Status))
		}
		if len(a.Labels) == 0 {
			errs = append(errs, fmt.Errorf("alerts[%d].labels: is empty", i))
		}
	}
	return p, errors.Join(errs...)
}

// Event turns a notification into the event of its alert group.
func (s *Source) Event(p Payload) event.Event {
	var firing, resolved []Alert
	for _, a := range p.Alerts {
		if a.Status == StatusFiring {
			firing = append(firing, a)
		} else {
			resolved = append(resolved, a)
		}
	}
	labels := maps.Clone(p.CommonLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	if len(firing) > 0 {
		// Matchers and placeholders see what the firing alerts share.
		labels = common(firing)
	}
	name := cmp.Or(p.GroupLabels["alertname"], labels["alertname"], p.CommonLabels["alertname"], "alerts")
	h := sha256.Sum256([]byte(p.GroupKey))
	ev := event.Event{
		Source:  s.name,
		Cluster: s.cluster,
		Type:    event.Error,
		Object:  event.Object{APIVersion: "alertmanager/v4", Kind: "Alert", Namespace: labels["namespace"], Name: name},
		Reason:  name,
		Time:    time.Now(),
		UID:     hex.EncodeToString(h[:8]),
		Labels:  labels,
		Group:   p.GroupKey,
		ID:      occurrence(p.GroupKey, firing, resolved),
	}
	if len(firing) == 0 {
		ev.Transition, ev.Level = event.Resolved, event.Info
		ev.Message = fmt.Sprintf("All %d alert(s) of the group resolved", len(resolved))
		return ev
	}
	ev.Transition = event.Failing
	ev.Level = event.Warn
	if sev := strings.ToLower(labels["severity"]); sev == "critical" || sev == "error" || sev == "page" {
		ev.Level = event.Critical
	}
	ev.Headline = fmt.Sprintf("[FIRING:%d] %s", len(firing), name)
	if ns := labels["namespace"]; ns != "" {
		ev.Headline += " in " + ns
	}
	ev.Message = describe(firing, p)
	for _, k := range slices.Sorted(maps.Keys(p.GroupLabels)) {
		if k != "alertname" {
			ev.Fields = append(ev.Fields, event.Field{Name: k, Value: p.GroupLabels[k]})
		}
	}
	if sev := labels["severity"]; sev != "" && p.GroupLabels["severity"] == "" {
		ev.Fields = append(ev.Fields, event.Field{Name: "severity", Value: sev})
	}
	ev.Fields = append(ev.Fields, event.Field{Name: "Firing", Value: fmt.Sprint(len(firing))})
	if len(resolved) > 0 {
		ev.Fields = append(ev.Fields, event.Field{Name: "Resolved", Value: fmt.Sprint(len(resolved))})
	}
	if p.ExternalURL != "" {
		ev.Fields = append(ev.Fields, event.Field{Name: "Alertmanager", Value: p.ExternalURL})
	}
	return ev
}

// maxListed bounds the alerts described in one message.
const maxListed = 10

// describe lists the firing alerts: summary or description, and the labels
// that tell them apart.
func describe(firing []Alert, p Payload) string {
	var b strings.Builder
	if s := cmp.Or(p.CommonAnnotations["summary"], p.CommonAnnotations["description"]); s != "" {
		b.WriteString(s + "\n")
	}
	shared := common(firing)
	for i, a := range firing {
		if i == maxListed {
			fmt.Fprintf(&b, "… and %d more\n", len(firing)-maxListed)
			break
		}
		var own []string
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			if _, same := shared[k]; !same {
				own = append(own, k+"="+a.Labels[k])
			}
		}
		line := "• " + cmp.Or(a.Annotations["summary"], a.Annotations["description"], a.Labels["alertname"])
		if len(own) > 0 {
			line += " (" + strings.Join(own, ", ") + ")"
		}
		if !a.StartsAt.IsZero() {
			line += ", since " + a.StartsAt.UTC().Format(time.RFC3339)
		}
		b.WriteString(line + "\n")
	}
	if p.TruncatedAlerts > 0 {
		fmt.Fprintf(&b, "(%d more alerts were left out by Alertmanager's max_alerts)\n", p.TruncatedAlerts)
	}
	return strings.TrimRight(b.String(), "\n")
}

// common returns the labels every alert shares.
func common(alerts []Alert) map[string]string {
	out := maps.Clone(alerts[0].Labels)
	for _, a := range alerts[1:] {
		for k, v := range out {
			if a.Labels[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

// occurrence identifies one state of an alert group: its key and which of
// its alerts (by fingerprint and start) fire and which resolved. The same
// notification sent again (Alertmanager repeats them) has the same id; a
// new firing of the group has new starts, so a new id.
func occurrence(groupKey string, firing, resolved []Alert) string {
	h := sha256.New()
	h.Write([]byte(groupKey))
	for _, set := range [][]Alert{firing, resolved} {
		h.Write([]byte{0})
		ids := make([]string, 0, len(set))
		for _, a := range set {
			ids = append(ids, a.Fingerprint+"@"+a.StartsAt.UTC().Format(time.RFC3339Nano))
		}
		slices.Sort(ids)
		for _, id := range ids {
			h.Write([]byte(id + "\x00"))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
