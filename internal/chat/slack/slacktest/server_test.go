package slacktest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
	"github.com/stretchr/testify/require"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// newServer starts a Server that the test closes when it ends.
func newServer(t *testing.T) *Server {
	t.Helper()
	srv := New()
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a slack-go client of the fake workspace's bot.
func newClient(srv *Server, options ...slack.Option) *slack.Client {
	options = append([]slack.Option{slack.OptionAPIURL(srv.APIURL()), slack.OptionAppLevelToken(AppToken)}, options...)
	return slack.New(BotToken, options...)
}

// waitCtx returns a context for one wait of the test.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startSocketMode runs slack-go's Socket Mode client against srv until the
// test ends, and waits until it is connected.
func startSocketMode(t *testing.T, srv *Server) *socketmode.Client {
	t.Helper()
	client := socketmode.New(newClient(srv))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- client.RunContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	require.NoError(t, srv.WaitConnected(waitCtx(t), 1))
	return client
}

// nextEvent returns the client's next event of the wanted type, skipping
// the others (connecting, connected, hello and the like).
func nextEvent(t *testing.T, client *socketmode.Client, want socketmode.EventType) socketmode.Event {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case evt := <-client.Events:
			if evt.Type == want {
				return evt
			}
			t.Logf("skipping socket mode event %s", evt.Type)
		case <-timeout:
			t.Fatalf("no %s event within %s", want, waitTimeout)
		}
	}
}

// innerEvent returns the inner event of an events_api event and acks it.
func innerEvent(t *testing.T, client *socketmode.Client, evt socketmode.Event) any {
	t.Helper()
	apiEvent, ok := evt.Data.(slackevents.EventsAPIEvent)
	require.True(t, ok, "data is %T", evt.Data)
	require.Equal(t, TeamID, apiEvent.TeamID)
	require.NoError(t, client.Ack(*evt.Request))
	return apiEvent.InnerEvent.Data
}

func TestAuthTest(t *testing.T) {
	srv := newServer(t)
	ctx := t.Context()

	resp, err := newClient(srv).AuthTestContext(ctx)
	require.NoError(t, err)
	require.Equal(t, BotUserID, resp.UserID)
	require.Equal(t, "kubechat", resp.User)
	require.Equal(t, TeamID, resp.TeamID)
	require.Equal(t, "BKUBECHAT", resp.BotID)

	_, err = slack.New("xoxb-wrong", slack.OptionAPIURL(srv.APIURL())).AuthTestContext(ctx)
	require.EqualError(t, err, "invalid_auth")
	_, err = slack.New(AppToken, slack.OptionAPIURL(srv.APIURL())).AuthTestContext(ctx)
	require.EqualError(t, err, "invalid_auth", "the app token is no bot token")
	require.Equal(t, 3, srv.Calls("auth.test"))
}

func TestPostAndUpdateMessages(t *testing.T) {
	srv := newServer(t)
	api := newClient(srv)
	ctx := t.Context()
	alerts := srv.ChannelID("alerts")
	require.NotEmpty(t, alerts)

	section := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*Pod web-1 failing*", false, false), nil, nil)
	channel, rootTS, err := api.PostMessageContext(ctx, "#alerts",
		slack.MsgOptionText("Pod web-1 failing", false), slack.MsgOptionBlocks(section))
	require.NoError(t, err)
	require.Equal(t, alerts, channel, "a channel name resolves to its id")

	channel, replyTS, err := api.PostMessageContext(ctx, alerts,
		slack.MsgOptionText("logs follow", false), slack.MsgOptionTS(rootTS))
	require.NoError(t, err)
	require.Equal(t, alerts, channel)

	_, ts, text, err := api.UpdateMessageContext(ctx, alerts, rootTS, slack.MsgOptionText("Pod web-1 resolved", false))
	require.NoError(t, err)
	require.Equal(t, rootTS, ts)
	require.Equal(t, "Pod web-1 resolved", text)

	msgs := srv.Messages(alerts)
	require.Len(t, msgs, 2)
	root, reply := msgs[0], msgs[1]
	require.Equal(t, Message{Channel: alerts, TS: rootTS, Text: "Pod web-1 resolved", Blocks: root.Blocks, Edits: 1, User: BotUserID}, root)
	require.Contains(t, string(root.Blocks), "*Pod web-1 failing*", "an update without blocks keeps them")
	require.JSONEq(t, mustJSON(t, []slack.Block{section}), string(root.Blocks))
	require.Equal(t, Message{Channel: alerts, TS: replyTS, ThreadTS: rootTS, Text: "logs follow", User: BotUserID}, reply)
	require.Less(t, root.TS, reply.TS, "timestamps increase")

	_, _, err = api.PostMessageContext(ctx, "#nowhere", slack.MsgOptionText("x", false))
	require.EqualError(t, err, "channel_not_found")
	_, _, _, err = api.UpdateMessageContext(ctx, alerts, "1.000001", slack.MsgOptionText("x", false))
	require.EqualError(t, err, "message_not_found")
	_, _, err = api.PostMessageContext(ctx, alerts)
	require.EqualError(t, err, "no_text")
	require.Len(t, srv.Messages(alerts), 2)
	require.Equal(t, 4, srv.Calls("chat.postMessage"))
	require.Equal(t, 2, srv.Calls("chat.update"))
}

func TestWaitMessages(t *testing.T) {
	srv := newServer(t)
	api := newClient(srv)
	general := srv.ChannelID("#general")

	go func() {
		for _, text := range []string{"one", "two"} {
			_, _, _ = api.PostMessage(general, slack.MsgOptionText(text, false))
		}
	}()
	msgs, err := srv.WaitMessages(waitCtx(t), general, 2)
	require.NoError(t, err)
	require.Equal(t, "one", msgs[0].Text)
	require.Equal(t, "two", msgs[1].Text)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	msgs, err = srv.WaitMessages(ctx, general, 3)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, msgs, 2, "a failed wait returns what there is")
}

func TestUploadFile(t *testing.T) {
	srv := newServer(t)
	api := newClient(srv)
	ctx := t.Context()
	alerts := srv.ChannelID("alerts")
	_, threadTS, err := api.PostMessageContext(ctx, alerts, slack.MsgOptionText("Pod web-1 failing", false))
	require.NoError(t, err)

	content := "line 1\nline 2\n"
	summary, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename:        "web-1.log",
		Title:           "Logs of web-1",
		Content:         content,
		FileSize:        len(content),
		Channel:         alerts,
		ThreadTimestamp: threadTS,
		InitialComment:  "the last lines",
	})
	require.NoError(t, err)
	require.Equal(t, "Logs of web-1", summary.Title)

	_, err = api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename: "events.txt",
		Reader:   strings.NewReader("no events"),
		FileSize: len("no events"),
		Channel:  "#general",
	})
	require.NoError(t, err)

	files := srv.Files()
	require.Len(t, files, 2)
	require.Equal(t, File{
		ID: summary.ID, Name: "web-1.log", Title: "Logs of web-1", Content: content,
		Channel: alerts, ThreadTS: threadTS, InitialComment: "the last lines",
	}, files[0])
	require.Equal(t, File{
		ID: files[1].ID, Name: "events.txt", Title: "events.txt", Content: "no events", Channel: srv.ChannelID("general"),
	}, files[1])

	_, err = api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: summary.ID}}, Channel: alerts,
	})
	require.EqualError(t, err, "file_not_found", "a file completes once")
	require.Len(t, srv.Files(), 2)
}

func TestFailNextRateLimited(t *testing.T) {
	srv := newServer(t)
	api := newClient(srv)
	ctx := t.Context()
	alerts := srv.ChannelID("alerts")

	srv.FailNext(2, http.StatusTooManyRequests, time.Second)
	for range 2 {
		_, _, err := api.PostMessageContext(ctx, alerts, slack.MsgOptionText("hi", false))
		var limited *slack.RateLimitedError
		require.ErrorAs(t, err, &limited)
		require.Equal(t, time.Second, limited.RetryAfter)
	}
	_, _, err := api.PostMessageContext(ctx, alerts, slack.MsgOptionText("hi", false))
	require.NoError(t, err)
	require.Equal(t, 3, srv.Calls("chat.postMessage"), "failed calls count")
	require.Len(t, srv.Messages(alerts), 1)

	srv.FailNext(1, http.StatusTooManyRequests, 1500*time.Millisecond)
	_, err = api.AuthTestContext(ctx)
	var limited *slack.RateLimitedError
	require.ErrorAs(t, err, &limited)
	require.Equal(t, 2*time.Second, limited.RetryAfter, "Retry-After rounds up to whole seconds")

	srv.FailNext(1, http.StatusTooManyRequests, 0)
	_, err = api.AuthTestContext(ctx)
	var status slack.StatusCodeError
	require.ErrorAs(t, err, &status, "without Retry-After slack-go reports the status")
	require.Equal(t, http.StatusTooManyRequests, status.Code)
}

func TestFailNextServerErrorAndOutage(t *testing.T) {
	srv := newServer(t)
	api := newClient(srv)
	ctx := t.Context()

	srv.FailNext(1, http.StatusServiceUnavailable, 0)
	_, err := api.AuthTestContext(ctx)
	var status slack.StatusCodeError
	require.ErrorAs(t, err, &status)
	require.Equal(t, http.StatusServiceUnavailable, status.Code)
	require.True(t, status.Retryable())
	_, err = api.AuthTestContext(ctx)
	require.NoError(t, err)

	srv.SetDown(true)
	for _, call := range []func() error{
		func() error { _, err := api.AuthTestContext(ctx); return err },
		func() error { _, _, err := api.StartSocketModeContext(ctx); return err },
		func() error {
			_, _, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{})
			return err
		},
	} {
		require.ErrorAs(t, call(), &status)
		require.Equal(t, http.StatusServiceUnavailable, status.Code)
	}
	srv.SetDown(false)
	_, err = api.AuthTestContext(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, srv.Calls("auth.test"))
	require.Equal(t, 1, srv.Calls("apps.connections.open"))
}

func TestConversations(t *testing.T) {
	srv := newServer(t)
	api := newClient(srv)
	ctx := t.Context()
	deploys := srv.AddChannel("#deploys")
	require.Equal(t, deploys, srv.AddChannel("deploys"), "adding a channel twice keeps one")
	require.Equal(t, deploys, srv.ChannelID("deploys"))
	require.Empty(t, srv.ChannelID("nowhere"))

	var names []string
	cursor := ""
	for pages := 1; ; pages++ {
		require.LessOrEqual(t, pages, 3)
		channels, next, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{Limit: 1, Cursor: cursor})
		require.NoError(t, err)
		require.Len(t, channels, 1)
		require.True(t, channels[0].IsChannel)
		require.True(t, channels[0].IsMember)
		names = append(names, channels[0].Name)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, []string{"alerts", "general", "deploys"}, names)

	channels, next, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{})
	require.NoError(t, err)
	require.Len(t, channels, 3)
	require.Empty(t, next)

	info, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: deploys})
	require.NoError(t, err)
	require.Equal(t, deploys, info.ID)
	require.Equal(t, "deploys", info.Name)
	_, err = api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C404"})
	require.EqualError(t, err, "channel_not_found")
}

func TestSocketModeEvents(t *testing.T) {
	srv := newServer(t)
	client := startSocketMode(t, srv)
	api := newClient(srv)
	ctx := waitCtx(t)
	alerts := srv.ChannelID("alerts")

	ts, envelopeID, err := srv.Mention(alerts, "U1", "status")
	require.NoError(t, err)
	evt := nextEvent(t, client, socketmode.EventTypeEventsAPI)
	require.Equal(t, envelopeID, evt.Request.EnvelopeID)
	require.False(t, srv.Acked(envelopeID))
	mention, ok := innerEvent(t, client, evt).(*slackevents.AppMentionEvent)
	require.True(t, ok)
	require.Equal(t, slackevents.AppMentionEvent{
		Type: "app_mention", User: "U1", Text: "<@UKUBECHAT> status", TimeStamp: ts, Channel: alerts, EventTimeStamp: ts,
	}, *mention)
	require.NoError(t, srv.WaitAcked(ctx, envelopeID))
	require.True(t, srv.Acked(envelopeID))

	replyTS, envelopeID, err := srv.MentionInThread(alerts, ts, "U1", "more")
	require.NoError(t, err)
	mention, ok = innerEvent(t, client, nextEvent(t, client, socketmode.EventTypeEventsAPI)).(*slackevents.AppMentionEvent)
	require.True(t, ok)
	require.Equal(t, ts, mention.ThreadTimeStamp)
	require.Equal(t, replyTS, mention.TimeStamp)
	require.NoError(t, srv.WaitAcked(ctx, envelopeID))

	dmTS, envelopeID, err := srv.DirectMessage("U1", "ping")
	require.NoError(t, err)
	dm, ok := innerEvent(t, client, nextEvent(t, client, socketmode.EventTypeEventsAPI)).(*slackevents.MessageEvent)
	require.True(t, ok)
	require.Equal(t, "im", dm.ChannelType)
	require.Equal(t, "DU1", dm.Channel)
	require.Equal(t, "U1", dm.User)
	require.Equal(t, "ping", dm.Text)
	require.Equal(t, dmTS, dm.TimeStamp)
	require.NoError(t, srv.WaitAcked(ctx, envelopeID))

	require.Equal(t, []Message{
		{Channel: alerts, TS: ts, Text: "<@UKUBECHAT> status", User: "U1"},
		{Channel: alerts, TS: replyTS, ThreadTS: ts, Text: "<@UKUBECHAT> more", User: "U1"},
	}, srv.Messages(alerts))
	require.Equal(t, []Message{{Channel: "DU1", TS: dmTS, Text: "ping", User: "U1"}}, srv.Messages("DU1"))

	_, _, err = api.PostMessageContext(ctx, "DU1", slack.MsgOptionText("pong", false))
	require.NoError(t, err, "the bot answers in the direct message channel")
	_, _, _, err = api.UpdateMessageContext(ctx, alerts, ts, slack.MsgOptionText("edited", false))
	require.EqualError(t, err, "cant_update_message", "the bot edits only its own messages")
}

func TestSocketModeClick(t *testing.T) {
	srv := newServer(t)
	client := startSocketMode(t, srv)
	api := newClient(srv)
	ctx := waitCtx(t)
	alerts := srv.ChannelID("alerts")

	plain := func(text string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, text, false, false)
	}
	actions := slack.NewActionBlock("decide",
		slack.NewButtonBlockElement("approve", "restart", plain("Approve")),
		slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Snooze"), "snooze",
			slack.NewOptionBlockObject("1h", plain("1 hour"), nil),
			slack.NewOptionBlockObject("4h", plain("4 hours"), nil)),
	)
	_, ts, err := api.PostMessageContext(ctx, alerts, slack.MsgOptionText("Pod web-1 failing", false), slack.MsgOptionBlocks(actions))
	require.NoError(t, err)

	envelopeID, err := srv.Click(alerts, ts, "U1", "approve", "restart")
	require.NoError(t, err)
	evt := nextEvent(t, client, socketmode.EventTypeInteractive)
	require.Equal(t, envelopeID, evt.Request.EnvelopeID)
	callback, ok := evt.Data.(slack.InteractionCallback)
	require.True(t, ok, "data is %T", evt.Data)
	require.Equal(t, slack.InteractionTypeBlockActions, callback.Type)
	require.Equal(t, "U1", callback.User.ID)
	require.Equal(t, alerts, callback.Channel.ID)
	require.Equal(t, "alerts", callback.Channel.Name)
	require.Equal(t, TeamID, callback.Team.ID)
	require.Equal(t, "AKUBECHAT", callback.APIAppID)
	require.NotEmpty(t, callback.TriggerID)
	require.True(t, strings.HasPrefix(callback.ResponseURL, "http://127.0.0.1:"), callback.ResponseURL)
	require.Equal(t, slack.Container{Type: "message", MessageTs: ts, ChannelID: alerts}, callback.Container)
	require.Equal(t, ts, callback.Message.Timestamp)
	require.Equal(t, "Pod web-1 failing", callback.Message.Text)
	require.Len(t, callback.Message.Blocks.BlockSet, 1)
	require.Len(t, callback.ActionCallback.BlockActions, 1)
	button := callback.ActionCallback.BlockActions[0]
	require.Equal(t, "approve", button.ActionID)
	require.Equal(t, "decide", button.BlockID)
	require.Equal(t, slack.ActionType("button"), button.Type)
	require.Equal(t, "restart", button.Value)
	require.Equal(t, "Approve", button.Text.Text)
	require.NoError(t, client.Ack(*evt.Request))
	require.NoError(t, srv.WaitAcked(ctx, envelopeID))

	envelopeID, err = srv.Click(alerts, ts, "U1", "snooze", "4h")
	require.NoError(t, err)
	evt = nextEvent(t, client, socketmode.EventTypeInteractive)
	callback, ok = evt.Data.(slack.InteractionCallback)
	require.True(t, ok)
	require.Len(t, callback.ActionCallback.BlockActions, 1)
	selected := callback.ActionCallback.BlockActions[0]
	require.Equal(t, "snooze", selected.ActionID)
	require.Equal(t, slack.ActionType("static_select"), selected.Type)
	require.Equal(t, "4h", selected.SelectedOption.Value)
	require.Equal(t, "4 hours", selected.SelectedOption.Text.Text)
	require.False(t, srv.Acked(envelopeID))

	_, err = srv.Click(alerts, "1.000001", "U1", "approve", "")
	require.Error(t, err, "there is no such message")
}

func TestPushWithoutConnection(t *testing.T) {
	srv := newServer(t)
	alerts := srv.ChannelID("alerts")

	_, _, err := srv.Mention(alerts, "U1", "status")
	require.ErrorIs(t, err, errNotConnected)
	_, _, err = srv.DirectMessage("U1", "ping")
	require.ErrorIs(t, err, errNotConnected)
	_, err = srv.Click(alerts, "1.000001", "U1", "approve", "")
	require.ErrorIs(t, err, errNotConnected)
	require.Empty(t, srv.Messages(alerts), "nothing is posted when nothing can be delivered")
}

func TestDropReconnects(t *testing.T) {
	srv := newServer(t)
	client := startSocketMode(t, srv)
	require.Equal(t, 1, srv.Connections())
	require.Equal(t, 1, srv.Connected())

	srv.Drop()
	// The cut connection is no longer open; the client may already have
	// opened its next one (read Connected first, then Connections).
	open := srv.Connected()
	require.Less(t, open, srv.Connections(), "the dropped connection is not counted as open")
	require.NoError(t, srv.WaitConnected(waitCtx(t), 2))
	require.Equal(t, 2, srv.Connections())
	require.Equal(t, 2, srv.Calls("apps.connections.open"))

	_, envelopeID, err := srv.Mention(srv.ChannelID("alerts"), "U1", "still there?")
	require.NoError(t, err)
	innerEvent(t, client, nextEvent(t, client, socketmode.EventTypeEventsAPI))
	require.NoError(t, srv.WaitAcked(waitCtx(t), envelopeID))
}

// TestSocketProtocol speaks Socket Mode by hand: the hello message, acks,
// pings and single-use tickets.
func TestSocketProtocol(t *testing.T) {
	srv := newServer(t)
	ctx := waitCtx(t)
	_, wsURL, err := newClient(srv).StartSocketModeContext(ctx)
	require.NoError(t, err)

	conn, _, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	require.NoError(t, err)
	defer conn.Close()
	_, hello, err := conn.ReadMessage()
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"hello","num_connections":1,"debug_info":{"host":"fake","approximate_connection_time":18060},"connection_info":{"app_id":"AKUBECHAT"}}`, string(hello))

	_, envelopeID, err := srv.Mention(srv.ChannelID("alerts"), "U1", "status")
	require.NoError(t, err)
	var env struct {
		EnvelopeID string `json:"envelope_id"`
		Type       string `json:"type"`
		Payload    struct {
			Type  string `json:"type"`
			Event struct {
				Type string `json:"type"`
			} `json:"event"`
		} `json:"payload"`
	}
	require.NoError(t, conn.ReadJSON(&env))
	require.Equal(t, envelopeID, env.EnvelopeID)
	require.Equal(t, "events_api", env.Type)
	require.Equal(t, "event_callback", env.Payload.Type)
	require.Equal(t, "app_mention", env.Payload.Event.Type)
	require.NoError(t, conn.WriteJSON(map[string]any{"envelope_id": "not-pushed"}))
	require.NoError(t, conn.WriteJSON(map[string]any{"envelope_id": envelopeID, "payload": map[string]any{}}))
	require.NoError(t, srv.WaitAcked(ctx, envelopeID))
	require.False(t, srv.Acked("not-pushed"))

	pinged := make(chan struct{}, 1)
	conn.SetPingHandler(func(string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return nil
	})
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pinged:
	case <-ctx.Done():
		t.Fatal("no ping")
	}

	_, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
	require.Error(t, err, "a ticket is good for one connection")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, 1, srv.Connections())
}

func TestMalformedRequests(t *testing.T) {
	srv := newServer(t)
	bearer := http.Header{"Authorization": {"Bearer " + BotToken}}
	jsonBearer := http.Header{"Authorization": {"Bearer " + BotToken}, "Content-Type": {"application/json"}}
	form := func(fields ...string) string {
		values := url.Values{"token": {BotToken}}
		for i := 0; i+1 < len(fields); i += 2 {
			values.Set(fields[i], fields[i+1])
		}
		return values.Encode()
	}
	for _, tc := range []struct {
		name   string
		method string
		header http.Header
		body   string
		want   string // the error code, or "" for ok
	}{
		{"unknown method", "chat.nope", bearer, "", "unknown_method"},
		{"no token", "auth.test", nil, "", "invalid_auth"},
		{"bot token for socket mode", "apps.connections.open", bearer, "", "invalid_auth"},
		{"bad JSON", "chat.postMessage", jsonBearer, `{"channel":`, "invalid_arguments"},
		{"JSON body", "chat.postMessage", jsonBearer, `{"channel":"alerts","blocks":[{"type":"divider"}]}`, ""},
		{"bad form", "chat.postMessage", nil, "token=%zz", "invalid_arguments"},
		{"blocks not JSON", "chat.postMessage", nil, form("channel", "alerts", "blocks", "[{"), "invalid_blocks"},
		{"blocks without type", "chat.postMessage", nil, form("channel", "alerts", "blocks", `[{}]`), "invalid_blocks"},
		{"update without ts", "chat.update", nil, form("channel", "alerts", "text", "x"), "message_not_found"},
		{"bad limit", "conversations.list", nil, form("limit", "many"), "invalid_arguments"},
		{"bad cursor", "conversations.list", nil, form("cursor", "zz"), "invalid_cursor"},
		{"cursor past the end", "conversations.list", nil, form("cursor", "99"), "invalid_cursor"},
		{"upload without length", "files.getUploadURLExternal", nil, form("filename", "a.txt"), "invalid_arguments"},
		{"complete without files", "files.completeUploadExternal", nil, form("files", "nope"), "invalid_arguments"},
		{"complete unknown file", "files.completeUploadExternal", nil, form("files", `[{"id":"F1"}]`), "file_not_found"},
		{"complete to unknown channel", "files.completeUploadExternal", nil, form("files", `[{"id":"F1"}]`, "channel_id", "C404"), "channel_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tc.header.Clone()
			if header == nil {
				header = http.Header{}
			}
			if header.Get("Content-Type") == "" {
				header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp := post(t, srv.APIURL()+tc.method, header, tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var got struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
			require.Equal(t, tc.want, got.Error)
			require.Equal(t, tc.want == "", got.OK)
		})
	}

	base := strings.TrimSuffix(srv.APIURL(), "/api/")
	resp := post(t, base+"/upload/F404", http.Header{"Content-Type": {"text/plain"}}, "data")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, err := http.Get(base + "/upload/F404")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	resp, err = http.Get(base + "/socket?ticket=guess")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestCloseTwice(t *testing.T) {
	srv := New()
	startSocketMode(t, srv)
	srv.Close()
	require.Equal(t, 0, srv.Connected())
	srv.Close()
}

// post sends a POST request; the test closes the response body when it ends.
func post(t *testing.T, target string, header http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(body))
	require.NoError(t, err)
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// mustJSON returns v as JSON.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return string(data)
}
