package alerting

import (
	"fmt"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// Render turns an event into a chat message.
func Render(ev event.Event) chat.Message {
	level := map[event.Level]chat.Level{event.Info: chat.LevelInfo, event.Warn: chat.LevelWarning, event.Critical: chat.LevelError}[ev.Level]
	if level == "" {
		level = chat.LevelInfo
	}
	fields := []chat.Field{{Name: "Kind", Value: ev.Object.Kind}, {Name: "Name", Value: ev.Object.Name}}
	if ev.Object.Namespace != "" {
		fields = append(fields, chat.Field{Name: "Namespace", Value: ev.Object.Namespace})
	}
	if ev.Reason != "" {
		fields = append(fields, chat.Field{Name: "Reason", Value: ev.Reason})
	}
	if ev.Count > 1 {
		fields = append(fields, chat.Field{Name: "Count", Value: fmt.Sprint(ev.Count)})
	}
	for _, f := range ev.Fields {
		fields = append(fields, chat.Field{Name: f.Name, Value: f.Value})
	}
	return chat.Message{
		Title:    ev.Title(),
		Level:    level,
		Sections: []chat.Section{{Text: ev.Message, Fields: fields}},
		Context:  "cluster: " + ev.Cluster,
	}
}

// RenderResolved is the edited text of a transition alert once it resolved.
func RenderResolved(ev event.Event, rec transitionRecord) chat.Message {
	text := "Recovered after " + time.Since(rec.Since).Round(time.Second).String() + "."
	if ev.Message != "" {
		text = ev.Message + ". " + text
	}
	return chat.Message{
		Title: "Resolved: " + ev.Object.String() + " (was " + rec.Reason + ")",
		Level: chat.LevelSuccess,
		Sections: []chat.Section{{Text: text, Fields: []chat.Field{
			{Name: "Kind", Value: ev.Object.Kind}, {Name: "Name", Value: ev.Object.Name},
			{Name: "Namespace", Value: ev.Object.Namespace}, {Name: "Was", Value: rec.Reason},
		}}},
		Context: "cluster: " + ev.Cluster,
	}
}
