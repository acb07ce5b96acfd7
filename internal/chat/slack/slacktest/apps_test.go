package slacktest

import (
	"context"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
	"github.com/stretchr/testify/require"
)

// appClient runs slack-go's Socket Mode client for one app until the test ends.
func appClient(t *testing.T, srv *Server, a App, connections int) (*slack.Client, *socketmode.Client) {
	t.Helper()
	api := slack.New(a.BotToken, slack.OptionAPIURL(srv.APIURL()), slack.OptionAppLevelToken(a.AppToken))
	client := socketmode.New(api)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- client.RunContext(ctx) }()
	t.Cleanup(func() { cancel(); <-stopped })
	require.NoError(t, srv.WaitConnected(waitCtx(t), connections))
	return api, client
}

// Two apps in one workspace: each has its own bot; an app_mention reaches
// only the mentioned app, a channel message every app subscribed to
// message.channels, and a click the app that posted the message.
func TestSeveralApps(t *testing.T) {
	srv := newServer(t)
	def := App{Name: botName, BotToken: BotToken, AppToken: AppToken, BotUserID: BotUserID}
	other := srv.AddApp("kubechat-dev", true)
	require.NotEqual(t, BotUserID, other.BotUserID)
	defAPI, defClient := appClient(t, srv, def, 1)
	otherAPI, otherClient := appClient(t, srv, other, 2)
	ctx := waitCtx(t)

	auth, err := otherAPI.AuthTestContext(ctx)
	require.NoError(t, err)
	require.Equal(t, other.BotUserID, auth.UserID)
	require.Equal(t, "kubechat-dev", auth.User)
	_, err = slack.New(other.BotToken+"x", slack.OptionAPIURL(srv.APIURL())).AuthTestContext(ctx)
	require.ErrorContains(t, err, "invalid_auth")

	general := srv.ChannelID("general")
	_, pushed, err := srv.Say(general, "U1", "<@"+BotUserID+"> kubectl get pods")
	require.NoError(t, err)
	require.Equal(t, 2, pushed, "app_mention to the default app, message to the subscribed one")
	mention := nextEvent(t, defClient, socketmode.EventTypeEventsAPI)
	_, ok := mention.Data.(slackevents.EventsAPIEvent).InnerEvent.Data.(*slackevents.AppMentionEvent)
	require.True(t, ok)
	overheard := nextEvent(t, otherClient, socketmode.EventTypeEventsAPI)
	msg, ok := overheard.Data.(slackevents.EventsAPIEvent).InnerEvent.Data.(*slackevents.MessageEvent)
	require.True(t, ok)
	require.Equal(t, "channel", msg.ChannelType)
	require.Equal(t, "<@"+BotUserID+"> kubectl get pods", msg.Text)

	// Each app edits only its own messages; a click goes to the poster.
	_, ts, err := otherAPI.PostMessageContext(ctx, general, slack.MsgOptionText("from dev", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("a", slack.NewButtonBlockElement("run", "", slack.NewTextBlockObject(slack.PlainTextType, "Run", false, false)))))
	require.NoError(t, err)
	require.Equal(t, other.BotUserID, srv.Messages(general)[1].User)
	_, _, _, err = defAPI.UpdateMessageContext(ctx, general, ts, slack.MsgOptionText("hijack", false))
	require.ErrorContains(t, err, "cant_update_message")
	_, err = srv.Click(general, ts, "U1", "run", "")
	require.NoError(t, err)
	click := nextEvent(t, otherClient, socketmode.EventTypeInteractive)
	require.Equal(t, "run", click.Data.(slack.InteractionCallback).ActionCallback.BlockActions[0].ActionID)
}
