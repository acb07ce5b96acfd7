package chat

import (
	"strings"
	"time"
)

// Level colours a message.
type Level string

// Message levels.
const (
	LevelInfo    Level = "info"
	LevelWarning Level = "warning"
	LevelError   Level = "error"
	LevelSuccess Level = "success"
)

// Message is the platform-neutral content of one chat message. Each platform
// renders it into its own format (Block Kit, embeds, attachments, cards).
type Message struct {
	Title    string
	Level    Level
	Sections []Section
	// Context is a footer line, such as "cluster: prod".
	Context string
	// Thread, when set, makes the message a reply in that thread.
	Thread *MessageRef
	// Replace, when set, edits that message instead of posting a new one.
	Replace *MessageRef
	// Key is the message's stable identity, the same across retries and
	// restarts (the alerting pipeline sets it). Platforms that take an idempotency
	// key use it, so that a retry after a lost answer posts nothing twice.
	Key string
	// Alert is the identity of the alert the message opens, updates or
	// resolves, the same for each of them (the alerting pipeline's
	// transition key); "" for a message about no alert. Incident tools
	// deduplicate by it (PagerDuty's dedup_key); chat platforms ignore it.
	Alert string
	// Resolved marks the message that reports the alert's recovery: an
	// incident tool resolves the alert instead of triggering it again.
	Resolved bool
	// Links are the addresses of the same alert's chat messages, for a
	// sink that links back to them (chat.BackLinker); chat platforms ignore them.
	Links []Link
	// Queued is when the message was queued (the Queue sets it), the
	// same on every attempt: sinks that keep a record stamp it.
	Queued time.Time
}

// Section is one block of a message. Any of its parts may be empty.
type Section struct {
	Header  string
	Text    string
	Fields  []Field
	Code    string
	Buttons []Button
	Selects []Select
}

// Field is a labelled value.
type Field struct {
	Name  string
	Value string
}

// ButtonStyle is a button's emphasis.
type ButtonStyle string

// Button styles.
const (
	ButtonDefault ButtonStyle = ""
	ButtonPrimary ButtonStyle = "primary"
	ButtonDanger  ButtonStyle = "danger"
)

// Button is a clickable button. It carries only an opaque ID; what it does
// is stored server side. URL buttons open a link instead.
type Button struct {
	Label string
	ID    string
	URL   string
	Style ButtonStyle
}

// Select is a drop-down whose chosen option comes back as Inbound.Value.
type Select struct {
	Placeholder string
	// ID is the opaque id a choice comes back with (Inbound.ButtonID).
	ID      string
	Options []Option
}

// Option is one choice of a Select.
type Option struct {
	Label string
	Value string
}

// PlainText renders m as plain text, for platforms and logs without rich formatting.
func (m Message) PlainText() string {
	var b strings.Builder
	line := func(s string) {
		if s != "" {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	line(m.Title)
	for _, s := range m.Sections {
		line(s.Header)
		line(s.Text)
		for _, f := range s.Fields {
			line(f.Name + ": " + f.Value)
		}
		if s.Code != "" {
			line("```\n" + strings.TrimRight(s.Code, "\n") + "\n```")
		}
		for _, bt := range s.Buttons {
			line("[" + bt.Label + "]")
		}
	}
	line(m.Context)
	return strings.TrimRight(b.String(), "\n")
}
