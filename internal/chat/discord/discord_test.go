package discord

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/discord/discordtest"
	"github.com/kubechat/kubechat/internal/config"
)

// newPlatform builds the adapter against srv. discordgo's endpoints are
// package variables, so these tests do not run in parallel.
func newPlatform(t *testing.T, srv *discordtest.Server) chat.Platform {
	t.Helper()
	srv.Point()
	t.Setenv("TEST_DISCORD_TOKEN", strings.TrimPrefix(discordtest.Token, "Bot "))
	raw, err := config.RawFromYAML("botToken: ${TEST_DISCORD_TOKEN}\n")
	require.NoError(t, err)
	p, err := New("ops-discord", raw, chat.Deps{})
	require.NoError(t, err)
	return p
}

type fake struct{ srv *discordtest.Server }

func (f fake) Messages(ch string) []chattest.Posted {
	var out []chattest.Posted
	for _, m := range f.srv.Messages(ch) {
		if len(m.Attachments) > 0 && len(m.Embeds) == 0 {
			continue // a file: Discord attaches it with a message of its own (see Files)
		}
		out = append(out, chattest.Posted{ID: m.ID, Thread: m.Reference, Text: visibleText(m), Edits: m.Edits})
	}
	return out
}

func (f fake) Files(ch string) []chattest.Uploaded {
	var out []chattest.Uploaded
	for _, m := range f.srv.Messages(ch) {
		for _, file := range m.Attachments {
			out = append(out, chattest.Uploaded{Name: file.Name, Content: file.Content, Thread: m.Reference})
		}
	}
	return out
}

func (f fake) Mention(ch, user, text string) error {
	_, err := f.srv.Mention(ch, user, text)
	return err
}

func (f fake) Click(ch, messageID, user, actionID, value string) error {
	var values []string
	if value != "" {
		values = []string{value}
	}
	_, err := f.srv.Click(ch, messageID, user, actionID, values)
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

// visibleText is the content plus every text of the embeds and components.
func visibleText(m discordtest.Message) string {
	return m.Content + "\n" + chattest.JSONText([]string{"title", "description", "name", "value", "text", "label"}, m.Embeds, m.Components)
}

func TestConformance(t *testing.T) {
	chattest.RunConformance(t, func(t *testing.T) chattest.Setup {
		srv := discordtest.New()
		t.Cleanup(srv.Close)
		return chattest.Setup{
			Platform:  newPlatform(t, srv),
			Fake:      fake{srv},
			Channel:   chat.Channel{Name: "alerts", ID: srv.ChannelID("alerts")},
			CanUpload: true,
			Secrets:   []string{strings.TrimPrefix(discordtest.Token, "Bot ")},
			Permalink: func(ref chat.MessageRef) string {
				return "https://discord.com/channels/" + discordtest.GuildID + "/" + ref.Channel + "/" + ref.ID
			},
		}
	})
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	for yaml, want := range map[string]string{
		"{}\n":                         "settings.botToken: is required",
		"botToken: ${UNSET_X_TOKEN}\n": "UNSET_X_TOKEN is not set",
		"bogus: 1\n":                   `unknown field "bogus"`,
	} {
		raw, err := config.RawFromYAML(yaml)
		if err == nil {
			_, err = New("d", raw, chat.Deps{})
		}
		require.ErrorContains(t, err, want, yaml)
	}
}

// TestPermalinkOfADirectMessage: a direct message's channel has no guild,
// and Discord's links name it @me.
func TestPermalinkOfADirectMessage(t *testing.T) {
	srv := discordtest.New()
	t.Cleanup(srv.Close)
	p := newPlatform(t, srv)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- p.Listen(ctx, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{Title: "pong"} }))
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, srv.WaitConnected(t.Context(), 1))
	dm, _, err := srv.DirectMessage("300000000000000001", "ping")
	require.NoError(t, err)
	ref, err := p.Post(t.Context(), chat.Channel{ID: dm}, chat.Message{Title: "pong"})
	require.NoError(t, err)
	link, err := chat.Permalink(t.Context(), p, ref)
	require.NoError(t, err)
	require.Equal(t, "https://discord.com/channels/@me/"+dm+"/"+ref.ID, link)
}

// TestListenLeavesNothingRunning: Listen reconnects after a drop, and once
// it returns no discordgo goroutine is left to dial again. discordgo's own
// reconnect loop, which a heartbeat failing during Close would start, runs
// until the process ends.
func TestListenLeavesNothingRunning(t *testing.T) {
	srv := discordtest.New()
	t.Cleanup(srv.Close)
	p := newPlatform(t, srv)
	for round := range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- p.Listen(ctx, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
		}()
		before := srv.Connections()
		require.NoError(t, srv.WaitConnected(t.Context(), before+1), "round %d", round)
		srv.Drop()
		require.NoError(t, srv.WaitConnected(t.Context(), before+2), "round %d: Listen opens the gateway again after a drop", round)
		cancel()
		require.NoError(t, <-done)
		// The stacks are read on each try, so a failure shows the last ones.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Zero(c, srv.Connected(), "round %d: a gateway connection outlived Listen", round)
			assert.NotContains(c, stacks(), "github.com/bwmarrin/discordgo.", "round %d: a discordgo goroutine outlived Listen", round)
		}, 10*time.Second, 20*time.Millisecond)
	}
}

// stacks are every goroutine's stack.
func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
