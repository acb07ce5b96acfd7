package webchat

import (
	"net/url"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
)

// Message kinds, as the page tells them apart.
const (
	kindBot  = "bot"  // a message the agent posted: an alert or a reply
	kindUser = "user" // what a person typed
	kindFile = "file" // an uploaded file
)

// wireMessage is one message as the page receives it: the data of one
// event on the stream. The page renders it with the DOM, never as HTML.
type wireMessage struct {
	ID      string `json:"id"`
	Channel string `json:"channel"`
	// Thread is the id of the thread's root, or "" for a top-level message.
	Thread string `json:"thread,omitempty"`
	// Pos orders messages by when they were first posted; an edit keeps it.
	Pos    uint64    `json:"pos"`
	Kind   string    `json:"kind"`
	Author string    `json:"author,omitempty"`
	Time   time.Time `json:"time"`
	// Edits counts the edits in place.
	Edits    int           `json:"edits,omitempty"`
	Title    string        `json:"title,omitempty"`
	Level    string        `json:"level,omitempty"`
	Text     string        `json:"text,omitempty"`
	Sections []wireSection `json:"sections,omitempty"`
	Context  string        `json:"context,omitempty"`
	File     *wireFile     `json:"file,omitempty"`
}

type wireSection struct {
	Header  string       `json:"header,omitempty"`
	Text    string       `json:"text,omitempty"`
	Fields  []wireField  `json:"fields,omitempty"`
	Code    string       `json:"code,omitempty"`
	Buttons []wireButton `json:"buttons,omitempty"`
	Selects []wireSelect `json:"selects,omitempty"`
}

type wireField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type wireButton struct {
	Label  string `json:"label"`
	Action string `json:"action,omitempty"`
	URL    string `json:"url,omitempty"`
	Style  string `json:"style,omitempty"`
}

type wireSelect struct {
	Placeholder string       `json:"placeholder,omitempty"`
	Action      string       `json:"action"`
	Options     []wireOption `json:"options"`
}

type wireOption struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// wireFile describes an upload; its content is served at URL, relative
// to the page.
type wireFile struct {
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	Size  int    `json:"size"`
	URL   string `json:"url"`
}

// fromMessage fills w with m's content. A link button keeps only an
// http(s) URL, so that a "javascript:" link never reaches the page.
func (w *wireMessage) fromMessage(m chat.Message) {
	w.Title, w.Level, w.Context = m.Title, string(m.Level), m.Context
	w.Sections = make([]wireSection, 0, len(m.Sections))
	for _, s := range m.Sections {
		ws := wireSection{Header: s.Header, Text: s.Text, Code: s.Code}
		for _, f := range s.Fields {
			ws.Fields = append(ws.Fields, wireField(f))
		}
		for _, b := range s.Buttons {
			wb := wireButton{Label: b.Label, Action: b.ID, Style: string(b.Style)}
			if b.URL != "" {
				wb.Action = ""
				if httpURL(b.URL) {
					wb.URL = b.URL
				}
			}
			ws.Buttons = append(ws.Buttons, wb)
		}
		for _, sel := range s.Selects {
			wsel := wireSelect{Placeholder: sel.Placeholder, Action: sel.ID}
			for _, o := range sel.Options {
				wsel.Options = append(wsel.Options, wireOption(o))
			}
			ws.Selects = append(ws.Selects, wsel)
		}
		w.Sections = append(w.Sections, ws)
	}
}

// message is w's content as a chat.Message again (what a reader sees).
func (w *wireMessage) message() chat.Message {
	m := chat.Message{Title: w.Title, Level: chat.Level(w.Level), Context: w.Context}
	if w.Kind == kindUser {
		m.Title = w.Author + ": " + w.Text
	}
	for _, ws := range w.Sections {
		s := chat.Section{Header: ws.Header, Text: ws.Text, Code: ws.Code}
		for _, f := range ws.Fields {
			s.Fields = append(s.Fields, chat.Field(f))
		}
		for _, b := range ws.Buttons {
			s.Buttons = append(s.Buttons, chat.Button{Label: b.Label, ID: b.Action, URL: b.URL, Style: chat.ButtonStyle(b.Style)})
		}
		for _, sel := range ws.Selects {
			cs := chat.Select{Placeholder: sel.Placeholder, ID: sel.Action}
			for _, o := range sel.Options {
				cs.Options = append(cs.Options, chat.Option(o))
			}
			s.Selects = append(s.Selects, cs)
		}
		m.Sections = append(m.Sections, s)
	}
	return m
}

// actions lists the message's action ids, each with the values a click
// on it may carry: none for a button, the options for a select.
func (w *wireMessage) actions() map[string][]string {
	out := map[string][]string{}
	for _, s := range w.Sections {
		for _, b := range s.Buttons {
			if b.Action != "" {
				out[b.Action] = nil
			}
		}
		for _, sel := range s.Selects {
			if sel.Action == "" {
				continue
			}
			values := make([]string, 0, len(sel.Options))
			for _, o := range sel.Options {
				values = append(values, o.Value)
			}
			out[sel.Action] = values
		}
	}
	return out
}

// httpURL reports whether s is an absolute http or https URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
