// Package pagerduty is the "pagerduty" sink: it turns alerts into
// PagerDuty incidents through the Events API v2
// (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/),
// with the go-pagerduty client. A channel of this platform is a PagerDuty
// service: its id names one of the settings' routing keys.
//
// An alert that starts failing triggers an alert in PagerDuty, and its
// recovery resolves it: both carry the same dedup_key, the alert's
// identity in kubechat (chat.Message.Alert, the alerting pipeline's
// transition key), which the trigger's ref records too. An edit (a repeat
// counted, an alert group that changed) and a message into an alert's
// thread trigger again under the dedup_key of the message they edit or
// reply to, which PagerDuty adds to that alert's log. Retries resend the
// same dedup_key, so a retry after a lost answer opens nothing twice.
//
// A trigger links back to the alert's messages in the chat channels it
// was posted to (the event's links): the alerting pipeline holds it, a few
// seconds at most, until those are delivered (chat.BackLinker).
//
// It receives nothing: Listen waits for its context.
package pagerduty

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/redact"
)

// DefaultURL is the Events API of PagerDuty's US service region.
const DefaultURL = "https://events.pagerduty.com"

// Severities are the severities the Events API v2 knows.
var Severities = []string{"critical", "error", "warning", "info"}

// DefaultSeverity maps message levels to PagerDuty severities unless the
// settings say otherwise.
var DefaultSeverity = map[chat.Level]string{
	chat.LevelError:   "critical",
	chat.LevelWarning: "warning",
	chat.LevelInfo:    "info",
	chat.LevelSuccess: "info",
}

// Settings configure the pagerduty platform.
type Settings struct {
	// URL is the Events API's base URL (default https://events.pagerduty.com;
	// https://events.eu.pagerduty.com for the EU service region).
	URL string `yaml:"url"`
	// RoutingKeys maps each channel id to the integration key (routing key)
	// of a PagerDuty service's Events API v2 integration, from a Secret.
	RoutingKeys map[string]config.Secret `yaml:"routingKeys" jsonschema:"required"`
	// Severity maps message levels (error, warning, info, success) to
	// PagerDuty severities (critical, error, warning, info); levels not
	// named keep their default (error: critical, warning: warning, info
	// and success: info).
	Severity map[string]string `yaml:"severity"`
	// Source is the payload's source: where the alert comes from (default:
	// the cluster's name).
	Source string `yaml:"source"`
}

type platform struct {
	name     string
	keys     map[string]config.Secret
	severity map[chat.Level]string
	source   string
	client   *pd.Client
	secrets  *redact.Set
}

// New builds a pagerduty platform. It does not connect.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("pagerduty %q: %w", name, err)
	}
	if s.URL == "" {
		s.URL = DefaultURL
	}
	var errs []error
	if err := config.CheckHTTPURL("settings.url", s.URL); err != nil {
		errs = append(errs, err)
	}
	if len(s.RoutingKeys) == 0 {
		errs = append(errs, errors.New("settings.routingKeys: name at least one channel id with its routing key"))
	}
	secrets := redact.NewSet()
	for _, id := range slices.Sorted(maps.Keys(s.RoutingKeys)) {
		if s.RoutingKeys[id].IsZero() {
			errs = append(errs, fmt.Errorf("settings.routingKeys.%s: empty", id))
		}
		secrets.Add(s.RoutingKeys[id].Reveal())
	}
	severity := maps.Clone(DefaultSeverity)
	for _, level := range slices.Sorted(maps.Keys(s.Severity)) {
		sev := s.Severity[level]
		if _, ok := DefaultSeverity[chat.Level(level)]; !ok {
			errs = append(errs, fmt.Errorf("settings.severity.%s: unknown level (known: error, warning, info, success)", level))
		}
		if !slices.Contains(Severities, sev) {
			errs = append(errs, fmt.Errorf("settings.severity.%s: unknown severity %q (known: %s)", level, sev, strings.Join(Severities, ", ")))
		}
		severity[chat.Level(level)] = sev
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pagerduty %q: %w", name, err)
	}
	source := s.Source
	if source == "" {
		source = d.Cluster
	}
	if source == "" {
		source = "kubechat"
	}
	hc := d.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: chat.PostTimeout}
	}
	client := pd.NewClient("", pd.WithV2EventsAPIEndpoint(strings.TrimRight(s.URL, "/")))
	client.HTTPClient = retryAfterClient{hc}
	return &platform{name: name, keys: s.RoutingKeys, severity: severity, source: source, client: client, secrets: secrets}, nil
}

func (p *platform) Name() string { return p.name }

// LinksBack makes a trigger carry the links of the same alert's chat
// messages (chat.Message.Links) as the event's links.
func (p *platform) LinksBack() {}

// Listen has nothing to receive: PagerDuty only takes events.
func (p *platform) Listen(ctx context.Context, _ chat.Handler) error {
	<-ctx.Done()
	return nil
}

// Post sends m as one event: a resolve for a message that reports a
// recovery, else a trigger. 429 (with its Retry-After), 408 and 5xx are
// retryable; other 4xx are permanent.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	key, ok := p.keys[to.ID]
	if !ok {
		return chat.MessageRef{}, chat.Permanent(fmt.Errorf("pagerduty %q: unknown channel %q: settings.routingKeys has no key for it", p.name, to.ID))
	}
	dedup := DedupKey(m)
	e := &pd.V2Event{RoutingKey: key.Reveal(), DedupKey: dedup, Action: "trigger", Client: "kubechat"}
	if m.Resolved {
		e.Action = "resolve"
	} else {
		e.Payload = p.payload(m)
		for _, l := range m.Links {
			e.Links = append(e.Links, map[string]string{"href": l.URL, "text": l.Text})
		}
	}
	var after retryAfter
	_, err := p.client.ManageEventWithContext(context.WithValue(ctx, retryAfterKey{}, &after), e)
	if err != nil {
		return chat.MessageRef{}, p.classify(to, err, after)
	}
	ref := chat.MessageRef{Platform: p.name, Channel: to.ID, ID: dedup}
	if m.Thread != nil {
		ref.Thread = m.Thread.Root()
	}
	return ref, nil
}

// DedupKey is the dedup_key of m's event: its alert's identity, else the
// key of the message it edits or replies to, else its own key.
func DedupKey(m chat.Message) string {
	switch {
	case m.Alert != "":
		return m.Alert
	case m.Replace != nil && m.Replace.ID != "":
		return m.Replace.ID
	case m.Thread != nil && m.Thread.Root() != "":
		return m.Thread.Root()
	case m.Key != "":
		return m.Key
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "kubechat-" + hex.EncodeToString(b)
}

// Payload limits of the Events API.
const (
	maxSummary = 1024
	maxCode    = 8 << 10
)

// payload describes m: the title is the summary, the fields and text are
// custom details, and the alerting pipeline's Kind, Name, Namespace and
// Reason fields fill component, group and class.
func (p *platform) payload(m chat.Message) *pd.V2Payload {
	details := map[string]string{}
	var text, code []string
	for _, s := range m.Sections {
		for _, f := range s.Fields {
			details[f.Name] = f.Value
		}
		if s.Text != "" {
			text = append(text, s.Text)
		}
		if s.Code != "" {
			code = append(code, s.Code)
		}
	}
	if len(text) > 0 {
		details["text"] = strings.Join(text, "\n")
	}
	if len(code) > 0 {
		details["output"] = chat.Cut(strings.Join(code, "\n"), maxCode)
	}
	if m.Context != "" {
		details["context"] = m.Context
	}
	ts := m.Queued
	if ts.IsZero() {
		ts = time.Now()
	}
	summary := m.Title
	if summary == "" {
		summary = m.PlainText()
	}
	pl := &pd.V2Payload{
		Summary:   chat.Cut(summary, maxSummary),
		Source:    p.source,
		Severity:  p.severity[m.Level],
		Timestamp: ts.UTC().Format(time.RFC3339),
		Group:     details["Namespace"],
		Class:     details["Reason"],
		Details:   details,
	}
	if pl.Severity == "" {
		pl.Severity = "info"
	}
	if kind, name := details["Kind"], details["Name"]; kind != "" && name != "" {
		pl.Component = kind + "/" + name
	}
	return pl
}

// classify turns the client's error into a retryable or permanent one,
// with the routing keys masked.
func (p *platform) classify(to chat.Channel, err error, after retryAfter) error {
	status := 0
	var api pd.APIError
	var events pd.EventsAPIV2Error
	switch {
	case errors.As(err, &api):
		status = api.StatusCode
	case errors.As(err, &events):
		status = events.StatusCode
	}
	masked := fmt.Errorf("pagerduty %q: channel %q: %s", p.name, to.ID, p.secrets.Redact(err.Error()))
	switch {
	case status == http.StatusTooManyRequests && after.d > 0:
		return chat.RetryAfter(after.d, masked)
	case status == 0, status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return masked
	}
	return chat.Permanent(masked)
}

// retryAfter is where retryAfterClient leaves a 429's Retry-After, which
// the go-pagerduty client does not hand back.
type retryAfter struct{ d time.Duration }

type retryAfterKey struct{}

// retryAfterClient is the HTTP client go-pagerduty calls; it reads the
// Retry-After of a 429 into the request context's retryAfter.
type retryAfterClient struct{ c *http.Client }

func (c retryAfterClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.c.Do(req)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		return resp, err
	}
	if after, ok := req.Context().Value(retryAfterKey{}).(*retryAfter); ok {
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
			after.d = time.Duration(secs) * time.Second
		}
	}
	return resp, nil
}
