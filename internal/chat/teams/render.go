package teams

import (
	"strings"

	"github.com/kubechat/kubechat/internal/chat"
)

// Adaptive Card rendering (https://adaptivecards.io/explorer/). Buttons
// are Action.Execute (Universal Actions) carrying only the opaque action
// id; a select is an Input.ChoiceSet with its own Action.Execute.

// cardContentType is the attachment type of an Adaptive Card.
const cardContentType = "application/vnd.microsoft.card.adaptive"

// actionVerb is the verb of every kubechat Action.Execute.
const actionVerb = "kubechat"

// limits keep a card well under Teams' 28 KB message size; Teams has no
// file upload for bots in channels, so long output is split.
var limits = chat.Limits{Block: 4000, Message: 8000}

var levelColor = map[chat.Level]string{
	chat.LevelError:   "Attention",
	chat.LevelWarning: "Warning",
	chat.LevelSuccess: "Good",
	chat.LevelInfo:    "Accent",
}

type object = map[string]any

// card renders m as an Adaptive Card.
func card(m chat.Message) object {
	var body []any
	var actions []any
	if m.Title != "" {
		body = append(body, object{"type": "TextBlock", "text": m.Title, "size": "Large", "weight": "Bolder",
			"wrap": true, "color": levelColor[m.Level]})
	}
	for _, s := range m.Sections {
		if s.Header != "" {
			body = append(body, object{"type": "TextBlock", "text": s.Header, "weight": "Bolder", "wrap": true})
		}
		if s.Text != "" {
			body = append(body, object{"type": "TextBlock", "text": s.Text, "wrap": true})
		}
		if len(s.Fields) > 0 {
			var facts []any
			for _, f := range s.Fields {
				facts = append(facts, object{"title": f.Name, "value": f.Value})
			}
			body = append(body, object{"type": "FactSet", "facts": facts})
		}
		if s.Code != "" {
			body = append(body, object{"type": "TextBlock", "text": strings.TrimRight(s.Code, "\n"), "fontType": "Monospace", "wrap": true})
		}
		for _, b := range s.Buttons {
			if b.URL != "" {
				actions = append(actions, object{"type": "Action.OpenUrl", "title": b.Label, "url": b.URL})
				continue
			}
			a := object{"type": "Action.Execute", "title": b.Label, "verb": actionVerb, "data": object{"actionId": b.ID}}
			switch b.Style {
			case chat.ButtonPrimary:
				a["style"] = "positive"
			case chat.ButtonDanger:
				a["style"] = "destructive"
			}
			actions = append(actions, a)
		}
		for _, sel := range s.Selects {
			var choices []any
			for _, o := range sel.Options {
				choices = append(choices, object{"title": o.Label, "value": o.Value})
			}
			body = append(body, object{"type": "Input.ChoiceSet", "id": "value", "placeholder": sel.Placeholder, "choices": choices})
			actions = append(actions, object{"type": "Action.Execute", "title": "Choose", "verb": actionVerb, "data": object{"actionId": sel.ID}})
		}
	}
	if m.Context != "" {
		body = append(body, object{"type": "TextBlock", "text": m.Context, "size": "Small", "isSubtle": true, "wrap": true})
	}
	c := object{"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": "1.5", "body": body}
	if len(actions) > 0 {
		c["actions"] = actions
	}
	return c
}

// activity is the message activity that carries m.
func activity(m chat.Message) object {
	summary := m.Title
	if summary == "" {
		summary = m.PlainText()
	}
	if r := []rune(summary); len(r) > 200 {
		summary = string(r[:200])
	}
	return object{
		"type":        "message",
		"summary":     summary,
		"attachments": []any{object{"contentType": cardContentType, "content": card(m)}},
	}
}
