package discord

import (
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/kubechat/kubechat/internal/chat"
)

// Discord's limits (https://discord.com/developers/docs/resources/message#create-message
// and .../resources/channel#embed-object-embed-limits).
const (
	maxTitle       = 256
	maxDescription = 4096
	maxFieldName   = 256
	maxFieldValue  = 1024
	maxFields      = 25
	maxFooter      = 2048
	maxLabel       = 80
	maxOptions     = 25
	maxButtonsRow  = 5
)

// limits keep each message's text and code within one embed description
// (4096) with room for fences; longer output goes into a file.
var limits = chat.Limits{Block: 1900, Message: 3800, Upload: 3800}

var levelColor = map[chat.Level]int{
	chat.LevelError:   0xE01E5A,
	chat.LevelWarning: 0xECB22E,
	chat.LevelSuccess: 0x2EB67D,
	chat.LevelInfo:    0x36C5F0,
}

// render turns m into one embed (title, description with the text and
// code, fields, footer with the cluster) and component rows for buttons
// and selects.
func render(m chat.Message) ([]*discordgo.MessageEmbed, []discordgo.MessageComponent) {
	e := &discordgo.MessageEmbed{Title: chat.Cut(m.Title, maxTitle), Color: levelColor[m.Level]}
	var desc []string
	var buttons []discordgo.MessageComponent
	var rows []discordgo.MessageComponent
	for _, s := range m.Sections {
		if s.Header != "" {
			desc = append(desc, "**"+s.Header+"**")
		}
		if s.Text != "" {
			desc = append(desc, s.Text)
		}
		if s.Code != "" {
			desc = append(desc, "```\n"+strings.TrimRight(s.Code, "\n")+"\n```")
		}
		for _, f := range s.Fields {
			if len(e.Fields) < maxFields {
				e.Fields = append(e.Fields, &discordgo.MessageEmbedField{Name: chat.Cut(f.Name, maxFieldName), Value: chat.Cut(f.Value, maxFieldValue), Inline: true})
			}
		}
		for _, b := range s.Buttons {
			btn := discordgo.Button{Label: chat.Cut(b.Label, maxLabel), Style: discordgo.SecondaryButton, CustomID: b.ID}
			switch {
			case b.URL != "":
				btn.Style, btn.URL, btn.CustomID = discordgo.LinkButton, b.URL, ""
			case b.Style == chat.ButtonPrimary:
				btn.Style = discordgo.PrimaryButton
			case b.Style == chat.ButtonDanger:
				btn.Style = discordgo.DangerButton
			}
			buttons = append(buttons, btn)
		}
		for _, sel := range s.Selects {
			menu := discordgo.SelectMenu{MenuType: discordgo.StringSelectMenu, CustomID: sel.ID, Placeholder: chat.Cut(sel.Placeholder, 150)}
			for _, o := range sel.Options[:min(len(sel.Options), maxOptions)] {
				menu.Options = append(menu.Options, discordgo.SelectMenuOption{Label: chat.Cut(o.Label, 100), Value: o.Value})
			}
			rows = append(rows, discordgo.ActionsRow{Components: []discordgo.MessageComponent{menu}})
		}
	}
	for i := 0; i < len(buttons); i += maxButtonsRow {
		rows = append(rows, discordgo.ActionsRow{Components: buttons[i:min(i+maxButtonsRow, len(buttons))]})
	}
	e.Description = chat.Cut(strings.Join(desc, "\n"), maxDescription)
	if m.Context != "" {
		e.Footer = &discordgo.MessageEmbedFooter{Text: chat.Cut(m.Context, maxFooter)}
	}
	return []*discordgo.MessageEmbed{e}, rows
}
