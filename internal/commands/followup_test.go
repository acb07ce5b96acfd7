package commands

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/executor"
)

// followUps adds follow-up buttons to every result, as the flux executor
// does under a diff.
type followUps struct{ *counting }

func (f followUps) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	res, err := f.counting.Execute(ctx, req)
	res.Buttons = []executor.Button{
		{Label: "Describe", Args: []string{"describe", "deployment", "web"}, Primary: true},
		{Label: "Delete", Args: []string{"delete", "deployment", "web"}},
		{Label: "Docs", URL: "https://kubernetes.io/docs/"},
		{Label: "Link without its URL"},
	}
	return res, err
}

// TestFollowUpButtons: an executor's follow-up buttons become one-shot
// buttons whose click runs the command again through policy and identity,
// for the user who clicks; a URL button is a link; a button with neither
// command nor URL is not shown (it would run the bare executor).
func TestFollowUpButtons(t *testing.T) {
	f := newFixture(t)
	for _, ch := range f.r.channels {
		for i := range ch.executors {
			if c, ok := ch.executors[i].exec.(*counting); ok {
				ch.executors[i].exec = followUps{c}
			}
		}
	}
	m := f.say(t, "readonly", "U1", "kubectl get deployments")
	buttons := m.Sections[len(m.Sections)-1].Buttons
	require.Len(t, buttons, 4)
	require.Equal(t, []string{"Describe", "Delete", "Docs", "Run again"}, []string{buttons[0].Label, buttons[1].Label, buttons[2].Label, buttons[3].Label})
	require.Equal(t, chat.ButtonPrimary, buttons[0].Style)
	require.Equal(t, "https://kubernetes.io/docs/", buttons[2].URL)
	require.Empty(t, buttons[2].ID)
	for _, b := range []chat.Button{buttons[0], buttons[1]} {
		require.NotContains(t, b.ID, "deployment", "the button carries only an opaque id")
	}
	click := func(id string) chat.Message {
		return f.r.Handle(t.Context(), chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "readonly", ID: "readonly"}, UserID: "U2",
			ButtonID: id, Thread: chat.MessageRef{ID: "T1"}})
	}
	calls := f.read.calls.Load()
	described := click(buttons[0].ID)
	require.Equal(t, "kubectl describe deployment web", described.Title)
	require.Contains(t, described.PlainText(), "Replicas:")
	require.Equal(t, calls+1, f.read.calls.Load())

	denied := click(buttons[1].ID)
	require.Equal(t, "Denied by kubechat policy", denied.Title)
	require.Contains(t, denied.PlainText(), `"delete" is not one of them`)
	require.Equal(t, calls+1, f.read.calls.Load(), "a click the policy denies runs nothing")
	require.Contains(t, click(buttons[0].ID).PlainText(), "this button was already used")
}
