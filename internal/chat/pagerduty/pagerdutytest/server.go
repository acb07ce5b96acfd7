// Package pagerdutytest is a fake PagerDuty Events API v2 on loopback for
// tests. The real go-pagerduty client runs against it unchanged:
// pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(srv.URL())).
//
// It serves POST /v2/enqueue as PagerDuty documents it
// (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
// an event with routing_key, event_action (trigger, acknowledge, resolve),
// dedup_key and, for a trigger, a payload with summary, source and
// severity, answered with 202 {"status":"success","message":"Event
// processed","dedup_key":...}; a malformed event or an unknown routing key
// gets 400 {"status":"invalid event","message":...,"errors":[...]}. It
// keeps one alert per dedup_key, as PagerDuty does: a trigger opens it (or
// adds to the open one's log, which counts as an edit), a resolve closes
// it. Every event received is kept in order (Events). Faults: failures of
// the next calls (FailNext; a 429 says "throttle event", with Retry-After
// when the test asks for one) and an outage (SetDown: 503 to every call).
package pagerdutytest

import (
	"encoding/json"
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

// Event is one event as PagerDuty receives it.
type Event struct {
	RoutingKey string   `json:"routing_key"`
	Action     string   `json:"event_action"`
	DedupKey   string   `json:"dedup_key,omitempty"`
	Client     string   `json:"client,omitempty"`
	Links      []Link   `json:"links,omitempty"`
	Payload    *Payload `json:"payload,omitempty"`
}

// Link is one of an event's links.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Payload is a trigger's description of the alert.
type Payload struct {
	Summary   string            `json:"summary"`
	Source    string            `json:"source"`
	Severity  string            `json:"severity"`
	Timestamp string            `json:"timestamp,omitempty"`
	Component string            `json:"component,omitempty"`
	Group     string            `json:"group,omitempty"`
	Class     string            `json:"class,omitempty"`
	Details   map[string]string `json:"custom_details,omitempty"`
}

// Alert is what the store keeps of one dedup_key: its status and the
// events that made it.
type Alert struct {
	Status string // "triggered" or "resolved"
	Events []Event
}

// Server is the fake Events API.
type Server struct {
	*fake.Server[Alert, *fake.Conn]
	channels map[string]string // routing key → channel

	mu     sync.Mutex
	events []Event
}

// New serves the Events API for the routing keys, each mapped to the name
// of the channel its alerts are listed under.
func New(routingKeys map[string]string) *Server {
	s := &Server{Server: fake.NewServer[Alert, *fake.Conn](0), channels: maps.Clone(routingKeys)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/enqueue", s.enqueue)
	s.Start(mux)
	return s
}

// Events returns every event accepted so far, in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Alerts returns the alerts of a channel, in the order they opened.
func (s *Server) Alerts(channel string) []fake.Message[Alert] {
	return s.Store.Messages(channel)
}

func (s *Server) enqueue(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.Store.Next(); ok {
		switch {
		case f.Status == http.StatusTooManyRequests:
			if f.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Seconds()+0.999)))
			}
			fake.WriteJSON(w, f.Status, map[string]any{"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."})
		case f.Status >= 500:
			http.Error(w, http.StatusText(f.Status), f.Status)
		default:
			invalid(w, f.Status, "injected failure")
		}
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 512<<10))
	if err != nil {
		invalid(w, http.StatusBadRequest, "request body too large or unreadable")
		return
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		invalid(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	channel, ok := s.channels[e.RoutingKey]
	if !ok {
		invalid(w, http.StatusBadRequest, "Invalid routing key")
		return
	}
	if problem := check(e); problem != "" {
		invalid(w, http.StatusBadRequest, problem)
		return
	}
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	s.apply(channel, e)
	fake.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "success", "message": "Event processed", "dedup_key": e.DedupKey})
}

// check names what is wrong with e, as PagerDuty's errors do.
func check(e Event) string {
	switch {
	case e.Action != "trigger" && e.Action != "acknowledge" && e.Action != "resolve":
		return "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"
	case len(e.DedupKey) > 255:
		return "'dedup_key' is too long (maximum is 255 characters)"
	case e.Action != "trigger" && e.DedupKey == "":
		return "'dedup_key' is missing or blank"
	case e.Action != "trigger":
		return ""
	case slices.ContainsFunc(e.Links, func(l Link) bool { return l.Href == "" }):
		return "'links.href' is missing or blank"
	case e.Payload == nil:
		return "'payload' is missing or blank"
	case e.Payload.Summary == "" || len([]rune(e.Payload.Summary)) > 1024:
		return "'payload.summary' is missing, blank or longer than 1024 characters"
	case e.Payload.Source == "":
		return "'payload.source' is missing or blank"
	case !slices.Contains([]string{"critical", "error", "warning", "info"}, e.Payload.Severity):
		return "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
	}
	return ""
}

// apply keeps e in its alert.
func (s *Server) apply(channel string, e Event) {
	old, exists := s.Store.Message(e.DedupKey)
	switch {
	case e.Action == "trigger" && !exists:
		s.Store.Post(fake.Message[Alert]{ID: e.DedupKey, Channel: channel, Text: text(e), X: Alert{Status: "triggered", Events: []Event{e}}})
	case !exists:
		// PagerDuty accepts a resolve or acknowledge of nothing, and does nothing.
	case e.Action == "trigger":
		old.Text, old.X = text(e), Alert{Status: "triggered", Events: append(slices.Clone(old.X.Events), e)}
		s.Store.Update(old)
	default:
		status := map[string]string{"resolve": "resolved", "acknowledge": "acknowledged"}[e.Action]
		old.X = Alert{Status: status, Events: append(slices.Clone(old.X.Events), e)}
		s.Store.Update(old)
	}
}

// text is what PagerDuty shows of a trigger: the summary and the details.
func text(e Event) string {
	var b strings.Builder
	b.WriteString(e.Payload.Summary + "\n")
	for _, k := range slices.Sorted(maps.Keys(e.Payload.Details)) {
		fmt.Fprintf(&b, "%s: %s\n", k, e.Payload.Details[k])
	}
	return b.String()
}

func invalid(w http.ResponseWriter, status int, problem string) {
	fake.WriteJSON(w, status, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{problem}})
}
