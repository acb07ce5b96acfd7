// Package event defines the platform-neutral event that sources emit and the
// alerting pipeline delivers. It has no client-go dependency beyond plain values.
package event

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"
)

// Type is what happened to the object.
type Type string

// Event types.
const (
	Create  Type = "create"
	Update  Type = "update"
	Delete  Type = "delete"
	Error   Type = "error"
	Warning Type = "warning"
)

// Level is how loud the event is.
type Level string

// Levels, from quiet to loud.
const (
	Info     Level = "info"
	Warn     Level = "warning"
	Critical Level = "error"
)

// Object names the Kubernetes (or other) object an event is about.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
}

// String renders "Kind namespace/name" or "Kind name".
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Field is one labelled value shown with the event.
type Field struct {
	Name  string
	Value string
}

// Event is one thing worth telling a channel about.
type Event struct {
	// Source is the configured source name that produced the event.
	Source  string
	Cluster string
	Type    Type
	Level   Level
	Object  Object
	Reason  string
	Message string
	Fields  []Field
	// Count is how many occurrences this event stands for (grouping); 0 means 1.
	Count int
	Time  time.Time
	// UID is the UID of the watched object that produced the event (for a
	// Kubernetes Event, the Event's own).
	UID string
	// ID identifies this occurrence, the same whenever the source sees it
	// again (a replay after a restart): the object's UID with what
	// happened to it and when. The alerting pipeline keys messages by it; empty
	// means Digest.
	ID string
	// Transition is set when a workload starts failing or recovers: the
	// alerting pipeline posts one message for Failing and edits it on Resolved.
	Transition Transition
	// Labels are the labels of an alert from Alertmanager (nil for
	// Kubernetes events); channel matchers and action placeholders read them.
	Labels map[string]string
	// ObjectLabels are the labels of the object the event is about, where
	// the source knows them; silences match them.
	ObjectLabels map[string]string `json:",omitempty"`
	// Group, when set, identifies the alert group whose transitions share
	// one message (Alertmanager's groupKey); a new failing event of an open
	// group edits that message.
	Group string
	// Thread, when set, names a conversation: in each channel the first
	// event with it starts a message, and later ones are posted into that
	// message's thread (a pull request's pushes and merge).
	Thread string `json:",omitempty"`
	// Headline, when set, replaces the generated title of a failing or
	// one-off event.
	Headline string
	// Buttons are follow-ups the source suggests with a failing event (an
	// Argo CD Application's Sync, Diff, History). The alert shows a command
	// button only where the channel may run that command.
	Buttons []Button
}

// Button is a follow-up offered with an event: a command, whose first
// word is the executor type (or name) that runs it, or a link.
type Button struct {
	Label   string
	Command []string
	URL     string
	Primary bool
}

// Transition is a change of a workload's health.
type Transition string

// Transitions.
const (
	Failing  Transition = "failing"
	Resolved Transition = "resolved"
)

// Fingerprint identifies "the same event" for deduplication: the same source,
// cluster, object, type and reason. Message text and counts are left out on
// purpose, so that repeats of a changing message still group together.
func (e Event) Fingerprint() string {
	h := sha256.New()
	for _, s := range []string{e.Source, e.Cluster, string(e.Type), e.Object.APIVersion, e.Object.Kind,
		e.Object.Namespace, e.Object.Name, e.Reason} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Digest identifies an event by its content, without its time and count:
// the same event emitted twice has the same digest.
func (e Event) Digest() string {
	h := sha256.New()
	write := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	for _, s := range []string{e.Source, e.Cluster, string(e.Type), string(e.Level), e.Object.APIVersion, e.Object.Kind,
		e.Object.Namespace, e.Object.Name, e.Reason, e.Message, e.UID, string(e.Transition), e.Group, e.Headline} {
		write(s)
	}
	for _, f := range e.Fields {
		write(f.Name)
		write(f.Value)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Labels)) {
		write(k)
		write(e.Labels[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Title is a one-line summary such as "Pod default/web-1 created".
func (e Event) Title() string {
	if e.Headline != "" && e.Transition != Resolved {
		return e.Headline
	}
	switch e.Transition {
	case Failing:
		return e.Object.String() + " is failing (" + e.Reason + ")"
	case Resolved:
		return e.Object.String() + " recovered"
	}
	verb := map[Type]string{Create: "created", Update: "updated", Delete: "deleted", Error: "error", Warning: "warning"}[e.Type]
	parts := []string{e.Object.String(), verb}
	if e.Reason != "" {
		parts = append(parts, "("+e.Reason+")")
	}
	return strings.Join(parts, " ")
}
