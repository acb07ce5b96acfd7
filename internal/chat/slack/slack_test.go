package slack

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/health"
)

var update = flag.Bool("update", false, "rewrite golden files")

// newPlatform builds the adapter against srv, with tokens from the environment as in production.
func newPlatform(t *testing.T, srv *slacktest.Server, d chat.Deps) chat.Platform {
	t.Helper()
	t.Setenv("TEST_SLACK_BOT_TOKEN", slacktest.BotToken)
	t.Setenv("TEST_SLACK_APP_TOKEN", slacktest.AppToken)
	raw, err := config.RawFromYAML("botToken: ${TEST_SLACK_BOT_TOKEN}\nappToken: ${TEST_SLACK_APP_TOKEN}\napiURL: " + srv.APIURL() + "\n")
	require.NoError(t, err)
	p, err := New("ops-slack", raw, d)
	require.NoError(t, err)
	return p
}

// fake adapts slacktest.Server to the conformance suite; channels are
// named as configured (by name).
type fake struct{ srv *slacktest.Server }

func (f fake) id(ch string) string {
	if id := f.srv.ChannelID(strings.TrimPrefix(ch, "#")); id != "" {
		return id
	}
	return ch
}

func (f fake) Messages(ch string) []chattest.Posted {
	var out []chattest.Posted
	for _, m := range f.srv.Messages(f.id(ch)) {
		out = append(out, chattest.Posted{ID: m.TS, Thread: m.ThreadTS, Text: visibleText(m), Edits: m.Edits})
	}
	return out
}

func (f fake) Files(ch string) []chattest.Uploaded {
	var out []chattest.Uploaded
	for _, file := range f.srv.Files() {
		if file.Channel == f.id(ch) {
			out = append(out, chattest.Uploaded{Name: file.Name, Content: file.Content, Thread: file.ThreadTS})
		}
	}
	return out
}

func (f fake) Mention(ch, user, text string) error {
	_, _, err := f.srv.Mention(f.id(ch), user, text)
	return err
}

func (f fake) Click(ch, messageID, user, actionID, value string) error {
	_, err := f.srv.Click(f.id(ch), messageID, user, actionID, value)
	return err
}

func (f fake) FailNext(n, status int, retryAfter time.Duration) {
	f.srv.FailNext(n, status, retryAfter)
}
func (f fake) Drop()            { f.srv.Drop() }
func (f fake) Connections() int { return f.srv.Connections() }
func (f fake) Connected() int   { return f.srv.Connected() }

// The adapter dials out: the conformance suite checks it hangs up.
var _ chattest.OpenConnections = fake{}

// visibleText is what a reader sees: the text of every block (or the
// fallback text when there are none), with mrkdwn entities decoded.
func visibleText(m slacktest.Message) string {
	if len(m.Blocks) == 0 {
		return unescape(m.Text)
	}
	return unescape(chattest.JSONText([]string{"text"}, m.Blocks))
}

func TestConformance(t *testing.T) {
	chattest.RunConformance(t, func(t *testing.T) chattest.Setup {
		srv := slacktest.New()
		t.Cleanup(srv.Close)
		return chattest.Setup{
			Platform:  newPlatform(t, srv, chat.Deps{}),
			Fake:      fake{srv},
			Channel:   chat.Channel{Name: "alerts", ID: "alerts"},
			CanUpload: true,
			Secrets:   []string{slacktest.BotToken, slacktest.AppToken},
			Permalink: func(ref chat.MessageRef) string { return slacktest.Permalink(ref.Channel, ref.ID, ref.Thread) },
		}
	})
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	t.Setenv("BOT", "xoxb-1")
	t.Setenv("APP", "xapp-1")
	t.Setenv("WRONG", "xoxp-user-token")
	for yaml, want := range map[string]string{
		"appToken: ${APP}\n":                                    "settings.botToken: is required",
		"botToken: ${BOT}\n":                                    "settings.appToken: is required for Socket Mode",
		"botToken: ${WRONG}\nappToken: ${APP}\n":                "settings.botToken: from env WRONG is not a bot token (want xoxb-...)",
		"botToken: ${BOT}\nappToken: ${BOT}\n":                  "settings.appToken: from env BOT is not an app-level token",
		"botToken: ${BOT}\nappToken: ${APP}\nx: 1\n":            `unknown field "x"`,
		"botToken: ${BOT}\nappToken: ${APP}\napiURL: ftp://x\n": `settings.apiURL: "ftp://x" is not an http(s) URL`,
	} {
		raw, err := config.RawFromYAML(yaml)
		require.NoError(t, err)
		_, err = New("ops", raw, chat.Deps{})
		require.ErrorContains(t, err, want, yaml)
		require.NotContains(t, err.Error(), "xoxp-user-token", "a token value leaked into the error")
	}
}

// TestBlockKit checks the alert layout against a golden file:
// header, fields, code, buttons, select and the cluster context line.
func TestBlockKit(t *testing.T) {
	m := chat.Message{
		Title: "CrashLoopBackOff: shop/web-7d9f", Level: chat.LevelError,
		Sections: []chat.Section{{
			Text:    "Back-off restarting failed container <web> & friends",
			Fields:  []chat.Field{{Name: "Namespace", Value: "shop"}, {Name: "Reason", Value: "CrashLoopBackOff"}},
			Code:    "NAME   READY\nweb    0/1\n",
			Buttons: []chat.Button{{Label: "Run again", ID: "act-1", Style: chat.ButtonPrimary}, {Label: "Open PR", URL: "https://github.com/o/r/pull/1"}},
			Selects: []chat.Select{{Placeholder: "Namespace", ID: "act-2", Options: []chat.Option{{Label: "shop", Value: "shop"}}}},
		}},
		Context: "cluster: prod",
	}
	blocks, fallback := render(m)
	got, err := json.MarshalIndent(blocks, "", "  ")
	require.NoError(t, err)
	require.Equal(t, "CrashLoopBackOff: shop/web-7d9f", fallback)
	golden := filepath.Join("testdata", t.Name(), "alert.golden.json")
	if *update {
		require.NoError(t, os.WriteFile(golden, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with -update to create it")
	require.JSONEq(t, string(want), string(got))
}

func TestDirectMessagesAreCommands(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	p := newPlatform(t, srv, chat.Deps{})
	got := make(chan chat.Inbound, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		_ = p.Listen(ctx, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
			got <- in
			return chat.Message{Title: "pong"}
		}))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, srv.WaitConnected(t.Context(), 1))
	ts, _, err := srv.DirectMessage("UDAVE01", "ping")
	require.NoError(t, err)
	in := <-got
	require.Equal(t, "ping", in.Text)
	require.Equal(t, "DUDAVE01", in.Channel.ID)
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	msgs, err := srv.WaitMessages(wctx, "DUDAVE01", 2)
	require.NoError(t, err)
	require.Equal(t, ts, msgs[1].ThreadTS)
}

func TestHealthFollowsTheConnection(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	tracker := health.New(0)
	p := newPlatform(t, srv, chat.Deps{Health: tracker})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		_ = p.Listen(ctx, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, srv.WaitConnected(t.Context(), 1))
	require.Eventually(t, func() bool { return tracker.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	// An outage of the API keeps the connection from coming back: unhealthy.
	srv.SetDown(true)
	srv.Drop()
	require.Eventually(t, func() bool { return tracker.Ready() != nil }, 10*time.Second, 10*time.Millisecond)
	require.ErrorContains(t, tracker.Ready(), "platform/ops-slack")
	srv.SetDown(false)
	require.Eventually(t, func() bool { return tracker.Ready() == nil }, 30*time.Second, 10*time.Millisecond)
}

func TestBotMentionsAndEntitiesAreStripped(t *testing.T) {
	p := &platform{name: "s", names: map[string]string{"C1": "alerts"}}
	in := p.command("C1", "U1", "<@UBOT> kubectl logs web --since=1h &amp;&amp; &lt;x&gt; <@UOTHER>", "1.1", "", "UBOT")
	require.Equal(t, "kubectl logs web --since=1h && <x> <@UOTHER>", in.Text)
	require.Equal(t, chat.Channel{ID: "C1", Name: "alerts"}, in.Channel)
	require.Equal(t, "1.1", in.Thread.ID)
}

// TestPeerMentionsAreOverheard: with peerBots, a channel message to a peer
// cluster's bot reaches this agent marked Overheard; its own mention comes
// once (as app_mention), and a message to nobody is not a command.
func TestPeerMentionsAreOverheard(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	peer := srv.AddApp("kubechat-east", false)
	require.True(t, srv.SubscribeMessageEvents(slacktest.BotUserID))
	t.Setenv("TEST_SLACK_BOT_TOKEN", slacktest.BotToken)
	t.Setenv("TEST_SLACK_APP_TOKEN", slacktest.AppToken)
	raw, err := config.RawFromYAML("botToken: ${TEST_SLACK_BOT_TOKEN}\nappToken: ${TEST_SLACK_APP_TOKEN}\napiURL: " + srv.APIURL() +
		"\npeerBots: [" + peer.BotUserID + "]\n")
	require.NoError(t, err)
	p, err := New("ops-slack", raw, chat.Deps{})
	require.NoError(t, err)
	got := make(chan chat.Inbound, 10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		_ = p.Listen(ctx, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
			got <- in
			return chat.Message{}
		}))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, srv.WaitConnected(t.Context(), 1))
	general := srv.ChannelID("general")

	_, _, err = srv.Say(general, "U1", "just chatting")
	require.NoError(t, err)
	_, _, err = srv.Say(general, "U1", "<@"+peer.BotUserID+"> --cluster west kubectl get pods")
	require.NoError(t, err)
	in := <-got
	require.True(t, in.Overheard)
	require.Equal(t, "--cluster west kubectl get pods", in.Text)
	_, _, err = srv.Say(general, "U1", "<@"+slacktest.BotUserID+"> ping")
	require.NoError(t, err)
	in = <-got
	require.False(t, in.Overheard)
	require.Equal(t, "ping", in.Text)
	_, _, err = srv.Say(general, "U1", "<@"+peer.BotUserID+"> status")
	require.NoError(t, err)
	require.Equal(t, "status", (<-got).Text, "nothing came in between: no duplicate of the own mention, no chatter")
}

func TestPeerBotsMustBeUserIDs(t *testing.T) {
	t.Setenv("BOT", "xoxb-1")
	t.Setenv("APP", "xapp-1")
	raw, err := config.RawFromYAML("botToken: ${BOT}\nappToken: ${APP}\npeerBots: [U0OK1, kubechat-east]\n")
	require.NoError(t, err)
	_, err = New("ops", raw, chat.Deps{})
	require.ErrorContains(t, err, `settings.peerBots[1]: "kubechat-east" is not a Slack user id`)
}
