package alerting

import (
	"fmt"
	"text/template"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/templates"
)

// Templates (config templates:) shape alert messages: a channel's
// template, else its event's source's, else the built-in Render. They
// render the platform-neutral chat.Message (title, text, fields, link
// buttons), which every platform then renders natively. The level, the
// buttons the command side adds (Ask AI, Mute, an event's follow-ups) and
// the edit that marks an alert resolved are not templated.

// DefaultTemplate is the built-in message written as a template: Render's
// output, which TestDefaultTemplateIsRender holds equal to it.
var DefaultTemplate = config.Template{
	Name:    "default",
	Title:   "{{ .Title }}",
	Text:    "{{ .Message }}",
	Context: "cluster: {{ .Cluster }}",
	Fields: []config.TemplateField{
		{Name: "Kind", Value: "{{ .Object.Kind }}"},
		{Name: "Name", Value: "{{ .Object.Name }}"},
		{Name: "Namespace", Value: "{{ .Object.Namespace }}"},
		{Name: "Reason", Value: "{{ .Reason }}"},
		{Name: "Count", Value: "{{ if gt .Count 1 }}{{ .Count }}{{ end }}"},
	},
	EventFields: true,
}

// messageTemplate is a config template, parsed.
type messageTemplate struct {
	name                 string
	title, text, context *template.Template
	fields               [][2]*template.Template // name, value
	eventFields          bool
	buttons              [][2]*template.Template // label, url
}

// compileTemplate parses t (config validation parsed it already).
func compileTemplate(t config.Template) (*messageTemplate, error) {
	var errs []error
	parse := func(what, text string) *template.Template {
		if text == "" {
			return nil
		}
		pt, err := templates.Parse(t.Name+"."+what, text)
		if err != nil {
			errs = append(errs, fmt.Errorf("template %q %s: %w", t.Name, what, err))
		}
		return pt
	}
	mt := &messageTemplate{name: t.Name, title: parse("title", t.Title), text: parse("text", t.Text),
		context: parse("context", t.Context), eventFields: t.EventFields}
	for i, f := range t.Fields {
		mt.fields = append(mt.fields, [2]*template.Template{parse(fmt.Sprintf("fields[%d].name", i), f.Name), parse(fmt.Sprintf("fields[%d].value", i), f.Value)})
	}
	for i, b := range t.Buttons {
		mt.buttons = append(mt.buttons, [2]*template.Template{parse(fmt.Sprintf("buttons[%d].label", i), b.Label), parse(fmt.Sprintf("buttons[%d].url", i), b.URL)})
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return mt, nil
}

// render renders ev through t over the built-in message: an empty title,
// text or context keeps the built-in one; fields (with or without the
// event's) replace the built-in ones when the template has any; a field or
// a button that renders empty is left out.
func (t *messageTemplate) render(ev event.Event) (chat.Message, error) {
	m := Render(ev)
	exec := func(pt *template.Template) (string, error) {
		if pt == nil {
			return "", nil
		}
		return templates.Execute(pt, ev)
	}
	set := func(dst *string, pt *template.Template) error {
		if pt == nil {
			return nil
		}
		s, err := exec(pt)
		*dst = s
		return err
	}
	if err := set(&m.Title, t.title); err != nil {
		return chat.Message{}, err
	}
	if err := set(&m.Sections[0].Text, t.text); err != nil {
		return chat.Message{}, err
	}
	if err := set(&m.Context, t.context); err != nil {
		return chat.Message{}, err
	}
	if len(t.fields) > 0 || t.eventFields {
		var fields []chat.Field
		for _, f := range t.fields {
			name, err := exec(f[0])
			if err != nil {
				return chat.Message{}, err
			}
			value, err := exec(f[1])
			if err != nil {
				return chat.Message{}, err
			}
			if value != "" {
				fields = append(fields, chat.Field{Name: name, Value: value})
			}
		}
		if t.eventFields {
			for _, f := range ev.Fields {
				fields = append(fields, chat.Field{Name: f.Name, Value: f.Value})
			}
		}
		m.Sections[0].Fields = fields
	}
	var buttons []chat.Button
	for _, b := range t.buttons {
		label, err := exec(b[0])
		if err != nil {
			return chat.Message{}, err
		}
		url, err := exec(b[1])
		if err != nil {
			return chat.Message{}, err
		}
		if label != "" && url != "" {
			buttons = append(buttons, chat.Button{Label: label, URL: url})
		}
	}
	if len(buttons) > 0 {
		m.Sections = append(m.Sections, chat.Section{Buttons: buttons})
	}
	return m, nil
}

// RenderTemplate renders ev through the config template t, for tests and
// previews; a template that fails to run is an error.
func RenderTemplate(t config.Template, ev event.Event) (chat.Message, error) {
	mt, err := compileTemplate(t)
	if err != nil {
		return chat.Message{}, err
	}
	return mt.render(ev)
}

// templateFor is the template of ev's alerts in s's channel: the
// channel's, else the source's; nil for the built-in message.
func (p *Pipeline) templateFor(ev event.Event, s *sender) *messageTemplate {
	if s.b.template != nil {
		return s.b.template
	}
	return p.sourceTemplates[ev.Source]
}

// baseMessage is ev's message in s's channel, through its template. A
// template that fails on this event (an index out of range) falls back to
// the built-in message, so the alert is never lost to its format.
func (p *Pipeline) baseMessage(ev event.Event, s *sender) chat.Message {
	t := p.templateFor(ev, s)
	if t == nil {
		return Render(ev)
	}
	m, err := t.render(ev)
	if err != nil {
		p.log.Warn("alert template failed; the built-in message is posted instead", "template", t.name, "err", err)
		return Render(ev)
	}
	return m
}

// compileTemplates parses the config's templates and picks each source's.
func (p *Pipeline) compileTemplates(cfg *config.Config) (map[string]*messageTemplate, error) {
	byName := map[string]*messageTemplate{}
	for _, t := range cfg.Templates {
		mt, err := compileTemplate(t)
		if err != nil {
			return nil, fmt.Errorf("alerting: %w", err)
		}
		byName[t.Name] = mt
	}
	p.sourceTemplates = map[string]*messageTemplate{}
	for _, sc := range cfg.Sources {
		if sc.Template != "" {
			p.sourceTemplates[sc.Name] = byName[sc.Template]
		}
	}
	return byName, nil
}
