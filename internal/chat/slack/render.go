package slack

import (
	"strings"

	"github.com/slack-go/slack"

	"github.com/kubechat/kubechat/internal/chat"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
const (
	maxHeader      = 150  // header block text
	maxSectionText = 3000 // section text
	maxField       = 2000 // one section field
	maxFields      = 10   // fields per section
	maxButtonText  = 75
	maxOptions     = 100 // options per static select
	maxOptionText  = 75
	maxFallback    = 3000 // the notification text we send with blocks
)

// limits keep each code or text block inside one section and upload
// anything longer than three of them.
var limits = chat.Limits{Block: maxSectionText - 100, Message: 3 * (maxSectionText - 100), Upload: 3 * (maxSectionText - 100)}

// levelEmoji marks a message's level in its header.
var levelEmoji = map[chat.Level]string{
	chat.LevelError:   ":red_circle:",
	chat.LevelWarning: ":large_yellow_circle:",
	chat.LevelSuccess: ":white_check_mark:",
	chat.LevelInfo:    ":large_blue_circle:",
}

// render turns m into Block Kit blocks: a header with the title, one
// section per text, fields and code, action blocks for buttons and
// selects, and a context line (the cluster). The second value is the
// plain-text fallback Slack shows in notifications.
func render(m chat.Message) ([]slack.Block, string) {
	var blocks []slack.Block
	if m.Title != "" {
		title := m.Title
		if e := levelEmoji[m.Level]; e != "" {
			title = e + " " + title
		}
		blocks = append(blocks, slack.NewHeaderBlock(plain(chat.Cut(title, maxHeader))))
	}
	for _, s := range m.Sections {
		if s.Header != "" {
			blocks = append(blocks, slack.NewSectionBlock(markdown("*"+escape(s.Header)+"*"), nil, nil))
		}
		if s.Text != "" {
			blocks = append(blocks, sections(escape(s.Text))...)
		}
		for i := 0; i < len(s.Fields); i += maxFields {
			var fields []*slack.TextBlockObject
			for _, f := range s.Fields[i:min(i+maxFields, len(s.Fields))] {
				fields = append(fields, markdown(chat.Cut("*"+escape(f.Name)+"*\n"+escape(f.Value), maxField)))
			}
			blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
		}
		if s.Code != "" {
			blocks = append(blocks, sections("```\n"+escape(strings.TrimRight(s.Code, "\n"))+"\n```")...)
		}
		var elements []slack.BlockElement
		for _, b := range s.Buttons {
			elements = append(elements, button(b))
		}
		for _, sel := range s.Selects {
			elements = append(elements, selectMenu(sel))
		}
		if len(elements) > 0 {
			blocks = append(blocks, slack.NewActionBlock("", elements...))
		}
	}
	if m.Context != "" {
		blocks = append(blocks, slack.NewContextBlock("", markdown(escape(m.Context))))
	}
	fallback := m.Title
	if fallback == "" {
		fallback = m.PlainText()
	}
	return blocks, chat.Cut(fallback, maxFallback)
}

// sections holds mrkdwn text in as many section blocks as it needs:
// escaping can push a block that Fit sized past Slack's limit.
func sections(text string) []slack.Block {
	var out []slack.Block
	for _, part := range chat.Split(text, maxSectionText) {
		out = append(out, slack.NewSectionBlock(markdown(part), nil, nil))
	}
	return out
}

func button(b chat.Button) *slack.ButtonBlockElement {
	id := b.ID
	if id == "" {
		id = "link:" + b.URL // Slack wants an action id even on link buttons
	}
	e := slack.NewButtonBlockElement(chat.Cut(id, 255), "", plain(chat.Cut(b.Label, maxButtonText)))
	e.URL = b.URL
	switch b.Style {
	case chat.ButtonPrimary:
		e = e.WithStyle(slack.StylePrimary)
	case chat.ButtonDanger:
		e = e.WithStyle(slack.StyleDanger)
	}
	return e
}

func selectMenu(s chat.Select) *slack.SelectBlockElement {
	var options []*slack.OptionBlockObject
	for _, o := range s.Options[:min(len(s.Options), maxOptions)] {
		options = append(options, slack.NewOptionBlockObject(o.Value, plain(chat.Cut(o.Label, maxOptionText)), nil))
	}
	placeholder := s.Placeholder
	if placeholder == "" {
		placeholder = "Choose"
	}
	return slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(chat.Cut(placeholder, maxOptionText)), s.ID, options...)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}
func markdown(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, true)
}

// escape makes text literal in mrkdwn: Slack reads &, < and > as markup
// (https://api.slack.com/reference/surfaces/formatting#escaping).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// unescape reverses escape, for text users typed.
func unescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}
