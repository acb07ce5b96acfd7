package mattermost

import (
	"strconv"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"

	"github.com/kubechat/kubechat/internal/chat"
)

// limits keep a post well inside Mattermost's default MaxPostSize (16383
// characters); longer output is uploaded as a file.
var limits = chat.Limits{Block: 4000, Message: 12000, Upload: 12000}

var levelColor = map[chat.Level]string{
	chat.LevelError:   "#E01E5A",
	chat.LevelWarning: "#ECB22E",
	chat.LevelSuccess: "#2EB67D",
	chat.LevelInfo:    "#36C5F0",
}

// Keys of an integration's context: the signed action id, and the thread
// a click is answered in when the message is itself a reply.
const (
	actionContextKey = "action_id"
	rootContextKey   = "root"
)

// render turns m into a message attachment (title, text and code, short
// fields, footer with the cluster) whose buttons and selects post back to
// actionsURL with the signed action id in their context. Without an
// actionsURL there is nowhere to post clicks back to, so no buttons.
func render(m chat.Message, actionsURL string) *model.MessageAttachment {
	a := &model.MessageAttachment{Title: m.Title, Color: levelColor[m.Level], Fallback: m.Title, Footer: m.Context}
	actionContext := func(actionID string) map[string]any {
		c := map[string]any{actionContextKey: actionID}
		if m.Thread != nil {
			c[rootContextKey] = m.Thread.Root()
		}
		return c
	}
	var text []string
	for _, s := range m.Sections {
		if s.Header != "" {
			text = append(text, "**"+s.Header+"**")
		}
		if s.Text != "" {
			text = append(text, s.Text)
		}
		if s.Code != "" {
			text = append(text, "```\n"+strings.TrimRight(s.Code, "\n")+"\n```")
		}
		for _, f := range s.Fields {
			a.Fields = append(a.Fields, &model.MessageAttachmentField{Title: f.Name, Value: f.Value, Short: true})
		}
		if actionsURL == "" {
			continue
		}
		for _, b := range s.Buttons {
			if b.URL != "" {
				continue // Mattermost buttons cannot open links; the link goes into the text
			}
			style := "default"
			switch b.Style {
			case chat.ButtonPrimary:
				style = "primary"
			case chat.ButtonDanger:
				style = "danger"
			}
			a.Actions = append(a.Actions, &model.PostAction{
				Id: "kc" + strconv.Itoa(len(a.Actions)), Type: model.PostActionTypeButton, Name: b.Label, Style: style,
				Integration: &model.PostActionIntegration{URL: actionsURL, Context: actionContext(b.ID)},
			})
		}
		for _, sel := range s.Selects {
			var options []*model.PostActionOptions
			for _, o := range sel.Options {
				options = append(options, &model.PostActionOptions{Text: o.Label, Value: o.Value})
			}
			a.Actions = append(a.Actions, &model.PostAction{
				Id: "kc" + strconv.Itoa(len(a.Actions)), Type: model.PostActionTypeSelect, Name: sel.Placeholder, Options: options,
				Integration: &model.PostActionIntegration{URL: actionsURL, Context: actionContext(sel.ID)},
			})
		}
	}
	for _, s := range m.Sections {
		for _, b := range s.Buttons {
			if b.URL != "" {
				text = append(text, "["+b.Label+"]("+b.URL+")")
			}
		}
	}
	a.Text = strings.Join(text, "\n")
	return a
}
