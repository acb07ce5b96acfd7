package discordtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// Tests here use Point, which rewrites discordgo's package variables: none
// of them may call t.Parallel.

// start runs a server pointed at by discordgo until the test ends.
func start(t *testing.T) *Server {
	t.Helper()
	srv := New()
	srv.Point()
	t.Cleanup(srv.Close)
	return srv
}

// newSession is a discordgo session with the intents the fake requires,
// not yet open. It does not reconnect: discordgo's reconnect loop cannot be
// stopped, and one left from a test would read the endpoint variables the
// next test sets.
func newSession(t *testing.T) *discordgo.Session {
	t.Helper()
	s, err := discordgo.New(Token)
	require.NoError(t, err)
	s.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages |
		discordgo.IntentsDirectMessages | discordgo.IntentsMessageContent
	s.LogLevel = -1 // discordgo logs every reconnect at warning level; keep test output quiet
	s.ShouldReconnectOnError = false
	return s
}

// open opens a session and closes it when the test ends (before the server,
// whose Cleanup was registered first). A session that reconnects stops
// reconnecting first: discordgo reads the flag after taking the session's
// lock, in the Close that a failure during this Close makes.
func open(t *testing.T, s *discordgo.Session) {
	t.Helper()
	require.NoError(t, s.Open())
	t.Cleanup(func() {
		s.Lock()
		s.ShouldReconnectOnError = false
		s.Unlock()
		_ = s.Close()
	})
}

// events collects gateway events of one type from a session.
func events[T any](s *discordgo.Session) <-chan T {
	ch := make(chan T, 100)
	s.AddHandler(func(_ *discordgo.Session, e T) { ch <- e })
	return ch
}

// next waits for one value from ch.
func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %T within 5s", *new(T))
		panic("unreachable")
	}
}

// ctx is a context for one wait.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// restError asserts err is a *discordgo.RESTError and returns it.
func restError(t *testing.T, err error) *discordgo.RESTError {
	t.Helper()
	var re *discordgo.RESTError
	require.ErrorAs(t, err, &re)
	require.NotNil(t, re.Response)
	return re
}

// apiCode asserts err is a RESTError with the given status and JSON code.
func apiCode(t *testing.T, err error, status, code int) {
	t.Helper()
	re := restError(t, err)
	require.Equal(t, status, re.Response.StatusCode, string(re.ResponseBody))
	require.NotNil(t, re.Message, string(re.ResponseBody))
	require.Equal(t, code, re.Message.Code, string(re.ResponseBody))
}

func TestPointReassignsEveryEndpoint(t *testing.T) {
	before := discordgo.EndpointChannelMessages("1")
	srv := New()
	srv.Point()

	// Every string endpoint variable in discordgo's endpoints.go must be
	// in endpointVars and point at the server; every function-valued one
	// must be a closure (or an alias of one), which reads those variables
	// when called.
	strs, funcs := endpointDecls(t)
	var vars []string
	for _, p := range endpointVars {
		vars = append(vars, *p)
	}
	require.Len(t, endpointVars, len(strs), "string endpoints in endpoints.go: %v", strs)
	for _, v := range vars {
		require.True(t, strings.HasPrefix(v, srv.URL()+"/"), v)
	}
	require.NotEmpty(t, funcs)

	base := srv.URL() + "/api/v" + discordgo.APIVersion + "/"
	require.Equal(t, srv.URL()+"/", discordgo.EndpointDiscord)
	require.Equal(t, base, discordgo.EndpointAPI)
	require.Equal(t, base+"gateway/bot", discordgo.EndpointGatewayBot)
	require.Equal(t, base+"channels/1/messages", discordgo.EndpointChannelMessages("1"))
	require.Equal(t, base+"channels/1/messages/2/threads", discordgo.EndpointChannelMessageThread("1", "2"))
	require.Equal(t, base+"interactions/1/tok/callback", discordgo.EndpointInteractionResponse("1", "tok"))
	require.Equal(t, base+"webhooks/1/tok/messages/@original", discordgo.EndpointInteractionResponseActions("1", "tok"))
	require.Equal(t, base+"oauth2/applications/1", discordgo.EndpointOauth2Application("1"))
	require.Equal(t, base+"applications/1/commands", discordgo.EndpointApplicationGlobalCommands("1"))
	require.Equal(t, srv.URL()+"/cdn/avatars/1/2.png", discordgo.EndpointUserAvatar("1", "2"))

	srv.Close()
	require.Equal(t, before, discordgo.EndpointChannelMessages("1"), "Close restores the endpoints")
	require.Equal(t, "https://discord.com/api/v"+discordgo.APIVersion+"/", discordgo.EndpointAPI)
}

// endpointVars are all of discordgo's string-valued endpoint variables.
// Its function-valued endpoints (EndpointChannelMessages and the like) are
// closures that read these variables when called, so they follow without
// being reassigned.
var endpointVars = []*string{
	&discordgo.EndpointStatus, &discordgo.EndpointSm, &discordgo.EndpointSmActive, &discordgo.EndpointSmUpcoming,
	&discordgo.EndpointDiscord, &discordgo.EndpointAPI, &discordgo.EndpointGuilds, &discordgo.EndpointChannels,
	&discordgo.EndpointUsers, &discordgo.EndpointGateway, &discordgo.EndpointGatewayBot, &discordgo.EndpointWebhooks,
	&discordgo.EndpointStickers, &discordgo.EndpointStageInstances, &discordgo.EndpointSKUs,
	&discordgo.EndpointCDN, &discordgo.EndpointCDNAttachments, &discordgo.EndpointCDNAvatars, &discordgo.EndpointCDNIcons,
	&discordgo.EndpointCDNSplashes, &discordgo.EndpointCDNChannelIcons, &discordgo.EndpointCDNBanners,
	&discordgo.EndpointCDNGuilds, &discordgo.EndpointCDNRoleIcons,
	&discordgo.EndpointVoice, &discordgo.EndpointVoiceRegions, &discordgo.EndpointNitroStickersPacks,
	&discordgo.EndpointGuildCreate, &discordgo.EndpointApplications,
	&discordgo.EndpointOAuth2, &discordgo.EndpointOAuth2Applications,
	&discordgo.EndpointOauth2, &discordgo.EndpointOauth2Applications,
}

// endpointDecls parses discordgo's endpoints.go and returns the names of
// its string-valued and function-valued Endpoint variables. A variable
// initialized with anything but a string expression, a closure or another
// variable fails the test.
func endpointDecls(t *testing.T) (strs, funcs []string) {
	t.Helper()
	fn := runtime.FuncForPC(reflect.ValueOf(discordgo.EndpointChannel).Pointer())
	require.NotNil(t, fn)
	file, _ := fn.FileLine(fn.Entry())
	if _, err := os.Stat(file); err != nil || !strings.HasSuffix(file, "endpoints.go") {
		t.Skipf("discordgo's endpoints.go not found (%q): %v", file, err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	require.NoError(t, err)
	inits := map[string]ast.Expr{}
	var names []string
	for _, decl := range f.Decls {
		if gen, ok := decl.(*ast.GenDecl); ok && gen.Tok == token.VAR {
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					inits[name.Name] = vs.Values[i]
					names = append(names, name.Name)
				}
			}
		}
	}
	var isFunc func(e ast.Expr) bool
	isFunc = func(e ast.Expr) bool {
		switch v := e.(type) {
		case *ast.FuncLit:
			return true
		case *ast.Ident:
			return isFunc(inits[v.Name])
		}
		return false
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "Endpoint") {
			continue
		}
		switch e := inits[name]; e.(type) {
		case *ast.FuncLit, *ast.Ident, *ast.BasicLit, *ast.BinaryExpr:
			if isFunc(e) {
				funcs = append(funcs, name)
			} else {
				strs = append(strs, name)
			}
		default:
			t.Fatalf("%s: unexpected initializer %T", name, e)
		}
	}
	return strs, funcs
}

func TestGatewayReadyAndMention(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	ready := events[*discordgo.Ready](s)
	guilds := events[*discordgo.GuildCreate](s)
	created := events[*discordgo.MessageCreate](s)
	open(t, s)

	r := next(t, ready)
	require.Equal(t, BotUserID, r.User.ID)
	require.True(t, r.User.Bot)
	require.Equal(t, AppID, r.Application.ID)
	require.Equal(t, 9, r.Version, "discordgo asks for v=9")
	g := next(t, guilds)
	require.Equal(t, GuildID, g.ID)
	var names []string
	for _, c := range g.Channels {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"alerts", "general"}, names)
	require.Equal(t, 1, srv.Connections())
	require.Equal(t, 1, srv.Connected())

	alerts := srv.ChannelID("alerts")
	require.NotEmpty(t, alerts)
	require.NotEqual(t, alerts, srv.ChannelID("general"))
	require.Empty(t, srv.ChannelID("nope"))

	id, err := srv.Mention(alerts, "555", "get pods")
	require.NoError(t, err)
	m := next(t, created)
	require.Equal(t, id, m.ID)
	require.Equal(t, alerts, m.ChannelID)
	require.Equal(t, GuildID, m.GuildID)
	require.Equal(t, "<@"+BotUserID+"> get pods", m.Content)
	require.Equal(t, "555", m.Author.ID)
	require.False(t, m.Author.Bot)
	require.Len(t, m.Mentions, 1)
	require.Equal(t, BotUserID, m.Mentions[0].ID)
	require.NotNil(t, m.Member)

	msgs := srv.Messages(alerts)
	require.Len(t, msgs, 1)
	require.Equal(t, "555", msgs[0].AuthorID)

	_, err = srv.Mention("404", "555", "x")
	require.ErrorIs(t, err, errUnknownChannel)
}

func TestMentionWithoutSession(t *testing.T) {
	srv := start(t)
	_, err := srv.Mention(srv.ChannelID("alerts"), "555", "hi")
	require.ErrorIs(t, err, errNoSession)
	require.Empty(t, srv.Messages(srv.ChannelID("alerts")))
}

func TestMissingIntentsClose4014(t *testing.T) {
	srv := start(t)
	s, err := discordgo.New(Token) // default intents lack MESSAGE_CONTENT
	require.NoError(t, err)
	err = s.Open()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4014, ce.Code)
	require.Equal(t, 0, srv.Connections())
}

func TestSendEditAndFiles(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	alerts := srv.ChannelID("alerts")

	root, err := s.ChannelMessageSend(alerts, "root")
	require.NoError(t, err)
	require.Equal(t, BotUserID, root.Author.ID)
	require.True(t, root.Author.Bot)

	sent, err := s.ChannelMessageSendComplex(alerts, &discordgo.MessageSend{
		Embeds: []*discordgo.MessageEmbed{{Title: "pods", Description: "3 running"}},
		Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "Approve", CustomID: "approve", Style: discordgo.SuccessButton},
			discordgo.Button{Label: "Deny", CustomID: "deny", Style: discordgo.DangerButton},
		}}},
		Files:     []*discordgo.File{{Name: "out.txt", ContentType: "text/plain", Reader: strings.NewReader("line 1\nline 2\n")}},
		Reference: &discordgo.MessageReference{MessageID: root.ID, ChannelID: alerts},
	})
	require.NoError(t, err)
	require.Equal(t, alerts, sent.ChannelID)
	require.Len(t, sent.Embeds, 1)
	require.Equal(t, "pods", sent.Embeds[0].Title)
	require.Len(t, sent.Components, 1)
	require.Equal(t, discordgo.MessageTypeReply, sent.Type)
	require.Equal(t, root.ID, sent.MessageReference.MessageID)
	require.Len(t, sent.Attachments, 1)
	require.Equal(t, "out.txt", sent.Attachments[0].Filename)

	resp, err := http.Get(sent.Attachments[0].URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Equal(t, "line 1\nline 2\n", string(body))

	msgs := srv.Messages(alerts)
	require.Len(t, msgs, 2)
	got := msgs[1]
	require.Equal(t, sent.ID, got.ID)
	require.Equal(t, root.ID, got.Reference)
	require.Equal(t, []File{{Name: "out.txt", Content: "line 1\nline 2\n"}}, got.Attachments)
	require.JSONEq(t, `[{"type":"rich","title":"pods","description":"3 running"}]`, string(got.Embeds))
	require.Contains(t, string(got.Components), `"custom_id":"approve"`)
	require.Equal(t, BotUserID, got.AuthorID)
	require.Zero(t, got.Edits)

	// Edit only embeds and components: content and files stay.
	embeds := []*discordgo.MessageEmbed{{Title: "pods", Description: "approved"}}
	components := []discordgo.MessageComponent{}
	edited, err := s.ChannelMessageEditComplex(&discordgo.MessageEdit{ID: sent.ID, Channel: alerts, Embeds: &embeds, Components: &components})
	require.NoError(t, err)
	require.Equal(t, "approved", edited.Embeds[0].Description)
	require.NotNil(t, edited.EditedTimestamp)
	got = srv.Messages(alerts)[1]
	require.Equal(t, 1, got.Edits)
	require.JSONEq(t, `[]`, string(got.Components))
	require.Len(t, got.Attachments, 1)

	_, err = s.ChannelMessageEdit(alerts, "123", "x")
	apiCode(t, err, http.StatusNotFound, 10008)
}

func TestValidation(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	alerts := srv.ChannelID("alerts")

	_, err := s.ChannelMessageSend(alerts, strings.Repeat("é", 2001))
	apiCode(t, err, http.StatusBadRequest, 50035)
	_, err = s.ChannelMessageSend(alerts, strings.Repeat("é", 2000))
	require.NoError(t, err)

	_, err = s.ChannelMessageSend("404", "x")
	apiCode(t, err, http.StatusNotFound, 10003)

	_, err = s.ChannelMessageSendComplex(alerts, &discordgo.MessageSend{})
	apiCode(t, err, http.StatusBadRequest, 50006)

	_, err = s.ChannelMessageSendComplex(alerts, &discordgo.MessageSend{
		Content: "dup",
		Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "a", CustomID: "same"}, discordgo.Button{Label: "b", CustomID: "same"},
		}}},
	})
	apiCode(t, err, http.StatusBadRequest, 50035)

	_, err = s.ChannelMessageSendComplex(alerts, &discordgo.MessageSend{
		Embeds: []*discordgo.MessageEmbed{{Description: strings.Repeat("x", 4097)}},
	})
	apiCode(t, err, http.StatusBadRequest, 50035)
	require.Contains(t, string(restError(t, err).ResponseBody), `"description"`)

	bad, err := discordgo.New("Bot wrong")
	require.NoError(t, err)
	_, err = bad.ChannelMessageSend(alerts, "x")
	apiCode(t, err, http.StatusUnauthorized, 0)

	require.Len(t, srv.Messages(alerts), 1)
}

func TestThreads(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	alerts := srv.ChannelID("alerts")

	root, err := s.ChannelMessageSend(alerts, "incident")
	require.NoError(t, err)
	th, err := s.MessageThreadStart(alerts, root.ID, "incident thread", 1440)
	require.NoError(t, err)
	require.Equal(t, discordgo.ChannelTypeGuildPublicThread, th.Type)
	require.Equal(t, alerts, th.ParentID)
	require.Equal(t, GuildID, th.GuildID)
	require.Equal(t, root.ID, th.ID, "Discord gives a thread started from a message the message's id")
	require.Equal(t, 1440, th.ThreadMetadata.AutoArchiveDuration)

	_, err = s.MessageThreadStart(alerts, root.ID, "again", 60)
	apiCode(t, err, http.StatusBadRequest, 160004)
	_, err = s.MessageThreadStart(alerts, "123", "x", 60)
	apiCode(t, err, http.StatusNotFound, 10008)

	got, err := s.Channel(th.ID)
	require.NoError(t, err)
	require.Equal(t, "incident thread", got.Name)

	in, err := s.ChannelMessageSend(th.ID, "in thread")
	require.NoError(t, err)
	require.Equal(t, th.ID, in.ChannelID)

	msgs := srv.Messages(alerts)
	require.Len(t, msgs, 2)
	require.Empty(t, msgs[0].Thread)
	require.Equal(t, th.ID, msgs[1].Thread)
	require.Equal(t, th.ID, msgs[1].ChannelID)
	require.Len(t, srv.Messages(th.ID), 1)
	require.Empty(t, srv.Messages(srv.ChannelID("general")))
}

func TestDirectMessages(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	created := events[*discordgo.MessageCreate](s)
	open(t, s)

	chID, msgID, err := srv.DirectMessage("777", "hello bot")
	require.NoError(t, err)
	var m *discordgo.MessageCreate
	for m == nil || m.Author.ID != "777" {
		m = next(t, created)
	}
	require.Equal(t, msgID, m.ID)
	require.Equal(t, chID, m.ChannelID)
	require.Empty(t, m.GuildID)
	require.Equal(t, "hello bot", m.Content)

	dm, err := s.UserChannelCreate("777")
	require.NoError(t, err)
	require.Equal(t, chID, dm.ID)
	require.Equal(t, discordgo.ChannelTypeDM, dm.Type)
	require.Equal(t, "777", dm.Recipients[0].ID)

	_, err = s.ChannelMessageSend(dm.ID, "hi back")
	require.NoError(t, err)
	msgs := srv.Messages(chID)
	require.Len(t, msgs, 2)
	require.Equal(t, BotUserID, msgs[1].AuthorID)
}

func TestClickAndInteractionResponses(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	clicks := events[*discordgo.InteractionCreate](s)
	open(t, s)
	alerts := srv.ChannelID("alerts")

	msg, err := s.ChannelMessageSendComplex(alerts, &discordgo.MessageSend{
		Content: "approve rollout?",
		Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "Approve", CustomID: "approve"},
		}}},
	})
	require.NoError(t, err)

	// A button: the bot updates the message in place (type 7).
	id, err := srv.Click(alerts, msg.ID, "555", "approve", nil)
	require.NoError(t, err)
	i := next(t, clicks)
	require.Equal(t, id, i.ID)
	require.Equal(t, discordgo.InteractionMessageComponent, i.Type)
	require.Equal(t, AppID, i.AppID)
	require.Equal(t, GuildID, i.GuildID)
	require.Equal(t, alerts, i.ChannelID)
	require.Equal(t, "555", i.Member.User.ID)
	require.Equal(t, msg.ID, i.Message.ID)
	data := i.MessageComponentData()
	require.Equal(t, "approve", data.CustomID)
	require.Equal(t, discordgo.ButtonComponent, data.ComponentType)
	require.Nil(t, data.Values)

	err = s.InteractionRespond(i.Interaction, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseUpdateMessage,
		Data: &discordgo.InteractionResponseData{Content: "approved by 555", Components: []discordgo.MessageComponent{}},
	})
	require.NoError(t, err)
	body, err := srv.WaitInteractionResponse(ctx(t), id)
	require.NoError(t, err)
	require.Contains(t, string(body), `"type":7`)
	require.Len(t, srv.InteractionResponses(id), 1)
	got := srv.Messages(alerts)
	require.Len(t, got, 1)
	require.Equal(t, "approved by 555", got[0].Content)
	require.Equal(t, 1, got[0].Edits)

	err = s.InteractionRespond(i.Interaction, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate})
	apiCode(t, err, http.StatusBadRequest, 40060)

	// A select: deferred update, then a follow-up and an edit of @original.
	_, err = srv.Click(alerts, msg.ID, "556", "pick", []string{"prod"})
	require.NoError(t, err)
	i = next(t, clicks)
	data = i.MessageComponentData()
	require.Equal(t, discordgo.SelectMenuComponent, data.ComponentType)
	require.Equal(t, []string{"prod"}, data.Values)

	_, err = s.FollowupMessageCreate(i.Interaction, true, &discordgo.WebhookParams{Content: "too early"})
	apiCode(t, err, http.StatusNotFound, 10015)
	require.NoError(t, s.InteractionRespond(i.Interaction, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}))
	f, err := s.FollowupMessageCreate(i.Interaction, true, &discordgo.WebhookParams{Content: "deploying to prod"})
	require.NoError(t, err)
	require.Equal(t, alerts, f.ChannelID)
	content := "picked prod"
	orig, err := s.InteractionResponseEdit(i.Interaction, &discordgo.WebhookEdit{Content: &content})
	require.NoError(t, err)
	require.Equal(t, msg.ID, orig.ID)

	got = srv.Messages(alerts)
	require.Len(t, got, 2)
	require.Equal(t, "picked prod", got[0].Content)
	require.Equal(t, 2, got[0].Edits)
	require.Equal(t, "deploying to prod", got[1].Content)

	_, err = srv.Click(alerts, "123", "555", "approve", nil)
	require.ErrorIs(t, err, errUnknownMessage)
	_, err = srv.WaitInteractionResponse(ctx(t), "123")
	require.ErrorIs(t, err, errUnknownInteraction)
}

func TestClickReplyWithMessage(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	clicks := events[*discordgo.InteractionCreate](s)
	open(t, s)

	chID, _, err := srv.DirectMessage("777", "hi")
	require.NoError(t, err)
	msg, err := s.ChannelMessageSendComplex(chID, &discordgo.MessageSend{
		Content: "sure?",
		Components: []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
			discordgo.Button{Label: "Yes", CustomID: "yes"},
		}}},
	})
	require.NoError(t, err)
	id, err := srv.Click(chID, msg.ID, "777", "yes", nil)
	require.NoError(t, err)
	i := next(t, clicks)
	require.Nil(t, i.Member, "no member in a DM")
	require.Equal(t, "777", i.User.ID)
	require.Empty(t, i.GuildID)

	files := []*discordgo.File{{Name: "log.txt", Reader: strings.NewReader("done")}}
	require.NoError(t, s.InteractionRespond(i.Interaction, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Content: "done", Files: files},
	}))
	body, err := srv.WaitInteractionResponse(ctx(t), id)
	require.NoError(t, err)
	require.Contains(t, string(body), `"content":"done"`)
	msgs, err := srv.WaitMessages(ctx(t), chID, 3)
	require.NoError(t, err)
	require.Equal(t, "done", msgs[2].Content)
	require.Equal(t, []File{{Name: "log.txt", Content: "done"}}, msgs[2].Attachments)
}

func TestRateLimitIsRetriedByDiscordgo(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	alerts := srv.ChannelID("alerts")
	limited := events[*discordgo.RateLimit](s)

	srv.FailNext(1, http.StatusTooManyRequests, 300*time.Millisecond)
	calls := srv.Calls()
	began := time.Now()
	_, err := s.ChannelMessageSend(alerts, "after the limit")
	require.NoError(t, err)
	took := time.Since(began)
	t.Logf("discordgo retried a 429 with retry_after 0.3 by itself; the call took %v", took.Round(time.Millisecond))
	require.GreaterOrEqual(t, took, 300*time.Millisecond)
	require.Equal(t, calls+2, srv.Calls(), "one 429, one retry")
	rl := next(t, limited)
	require.Equal(t, 300*time.Millisecond, rl.RetryAfter)
	require.Len(t, srv.Messages(alerts), 1)

	// It has no retry limit for 429s.
	srv.FailNext(3, http.StatusTooManyRequests, 20*time.Millisecond)
	calls = srv.Calls()
	_, err = s.ChannelMessageSend(alerts, "after three limits")
	require.NoError(t, err)
	require.Equal(t, calls+4, srv.Calls())

	// Without retries discordgo returns a *RateLimitError.
	srv.FailNext(1, http.StatusTooManyRequests, 100*time.Millisecond)
	_, err = s.ChannelMessageSend(alerts, "x", discordgo.WithRetryOnRatelimit(false))
	var rle *discordgo.RateLimitError
	require.ErrorAs(t, err, &rle)
	require.Equal(t, 100*time.Millisecond, rle.RetryAfter)
}

func TestServerErrors(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	alerts := srv.ChannelID("alerts")

	srv.FailNext(1, http.StatusServiceUnavailable, 0)
	_, err := s.ChannelMessageSend(alerts, "x")
	require.Equal(t, http.StatusServiceUnavailable, restError(t, err).Response.StatusCode)
	_, err = s.ChannelMessageSend(alerts, "ok now")
	require.NoError(t, err)

	// discordgo retries a 502 by itself (up to MaxRestRetries).
	srv.FailNext(2, http.StatusBadGateway, 0)
	calls := srv.Calls()
	_, err = s.ChannelMessageSend(alerts, "after 502s")
	require.NoError(t, err)
	require.Equal(t, calls+3, srv.Calls())

	srv.SetDown(true)
	_, err = s.ChannelMessageSend(alerts, "x")
	require.Equal(t, http.StatusServiceUnavailable, restError(t, err).Response.StatusCode)
	srv.SetDown(false)
	srv.FailNext(0, 0, 0)
	_, err = s.ChannelMessageSend(alerts, "up again")
	require.NoError(t, err)
	require.Len(t, srv.Messages(alerts), 3)
}

func TestDropResumesAndReplays(t *testing.T) {
	srv := start(t)
	s := newSession(t)
	s.ShouldReconnectOnError = true // discordgo's own reconnect is what this test checks
	created := events[*discordgo.MessageCreate](s)
	resumed := events[*discordgo.Resumed](s)
	ready := events[*discordgo.Ready](s)
	open(t, s)
	// Open returns before READY arrives; a session cut before it has no
	// session id to resume and identifies again.
	next(t, ready)
	alerts := srv.ChannelID("alerts")

	dropped := time.Now()
	srv.Drop()
	require.Equal(t, 0, srv.Connected())
	// Dispatched while discordgo is away: replayed on RESUME.
	id, err := srv.Mention(alerts, "555", "while away")
	require.NoError(t, err)

	// Wait for the resume itself, not for a second connection: discordgo's
	// heartbeat and reader can both start a reconnect.
	require.Eventually(t, func() bool { return srv.Resumes() == 1 }, 10*time.Second, 20*time.Millisecond,
		"discordgo resumes after a dropped connection")
	t.Logf("discordgo was back %v after Drop", time.Since(dropped).Round(time.Millisecond))
	require.GreaterOrEqual(t, srv.Connections(), 2)
	// Not asserting Connected() here: discordgo's heartbeat and reader can
	// both start a reconnect, so the resumed socket may be replaced at once.
	// The mention after the resume shows the session works.
	next(t, resumed)
	require.Equal(t, id, next(t, created).ID)

	// Still working after the resume.
	id, err = srv.Mention(alerts, "555", "after")
	require.NoError(t, err)
	require.Equal(t, id, next(t, created).ID)
}

// dial opens a raw websocket to the gateway and reads HELLO.
func dial(t *testing.T, srv *Server) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL(), "http")+"/gateway?v=10&encoding=json", nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	hello := read(t, ws)
	require.Equal(t, opHello, hello.Op)
	require.JSONEq(t, `{"heartbeat_interval":1000}`, string(hello.D))
	return ws
}

// payload is a gateway payload as a client reads it.
type payload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

// read reads one payload.
func read(t *testing.T, ws *websocket.Conn) payload {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	var p payload
	require.NoError(t, ws.ReadJSON(&p))
	return p
}

// send writes one payload.
func send(t *testing.T, ws *websocket.Conn, op int, d any) {
	t.Helper()
	require.NoError(t, ws.WriteJSON(map[string]any{"op": op, "d": d}))
}

// closeCode reads until the server closes and returns its close code.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		_, _, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce)
			return ce.Code
		}
	}
}

const allIntents = int64(discordgo.IntentsGuildMessages | discordgo.IntentsDirectMessages | discordgo.IntentsMessageContent)

func TestGatewayProtocol(t *testing.T) {
	srv := New()
	t.Cleanup(srv.Close)

	t.Run("heartbeat and identify", func(t *testing.T) {
		ws := dial(t, srv)
		send(t, ws, opHeartbeat, nil)
		require.Equal(t, opHeartbeatAck, read(t, ws).Op)
		send(t, ws, opIdentify, map[string]any{"token": Token, "intents": allIntents})
		ready := read(t, ws)
		require.Equal(t, "READY", *ready.T)
		require.EqualValues(t, 1, *ready.S)
		var r struct {
			V                int    `json:"v"`
			SessionID        string `json:"session_id"`
			ResumeGatewayURL string `json:"resume_gateway_url"`
		}
		require.NoError(t, json.Unmarshal(ready.D, &r))
		require.Equal(t, 10, r.V)
		require.NotEmpty(t, r.SessionID)
		require.Equal(t, "ws"+strings.TrimPrefix(srv.URL(), "http")+"/gateway", r.ResumeGatewayURL)
		guild := read(t, ws)
		require.Equal(t, "GUILD_CREATE", *guild.T)
		require.EqualValues(t, 2, *guild.S)

		send(t, ws, opIdentify, map[string]any{"token": Token, "intents": allIntents})
		require.Equal(t, 4005, closeCode(t, ws))
	})
	t.Run("bad token", func(t *testing.T) {
		ws := dial(t, srv)
		send(t, ws, opIdentify, map[string]any{"token": "Bot nope", "intents": allIntents})
		require.Equal(t, 4004, closeCode(t, ws))
	})
	t.Run("garbage", func(t *testing.T) {
		ws := dial(t, srv)
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("{")))
		require.Equal(t, 4002, closeCode(t, ws))
	})
	t.Run("unknown opcode", func(t *testing.T) {
		ws := dial(t, srv)
		send(t, ws, 42, nil)
		require.Equal(t, 4001, closeCode(t, ws))
	})
	t.Run("not authenticated", func(t *testing.T) {
		ws := dial(t, srv)
		send(t, ws, opPresenceUpdate, map[string]any{"status": "online"})
		require.Equal(t, 4003, closeCode(t, ws))
	})
	t.Run("resume unknown session", func(t *testing.T) {
		ws := dial(t, srv)
		send(t, ws, opResume, map[string]any{"token": Token, "session_id": "nope", "seq": 3})
		p := read(t, ws)
		require.Equal(t, opInvalidSession, p.Op)
		require.JSONEq(t, "false", string(p.D))
	})
	t.Run("resume replays", func(t *testing.T) {
		ws := dial(t, srv)
		send(t, ws, opIdentify, map[string]any{"token": Token, "intents": allIntents})
		var r struct {
			SessionID string `json:"session_id"`
		}
		require.NoError(t, json.Unmarshal(read(t, ws).D, &r))
		read(t, ws) // GUILD_CREATE, s=2
		require.NoError(t, ws.Close())
		require.Eventually(t, func() bool { return srv.Connected() == 0 }, 5*time.Second, 10*time.Millisecond)

		_, err := srv.Mention(srv.ChannelID("general"), "555", "missed")
		require.NoError(t, err)

		ws = dial(t, srv)
		send(t, ws, opResume, map[string]any{"token": Token, "session_id": r.SessionID, "seq": 2})
		missed := read(t, ws)
		require.Equal(t, "MESSAGE_CREATE", *missed.T)
		require.EqualValues(t, 3, *missed.S)
		require.Contains(t, string(missed.D), "missed")
		done := read(t, ws)
		require.Equal(t, "RESUMED", *done.T)
		require.EqualValues(t, 4, *done.S)
		require.Equal(t, 1, srv.Resumes())
	})
}

func TestWaitMessagesContext(t *testing.T) {
	srv := start(t)
	c, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	msgs, err := srv.WaitMessages(c, srv.ChannelID("alerts"), 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, msgs)

	done := make(chan error, 1)
	go func() {
		_, err := srv.WaitMessages(context.Background(), srv.ChannelID("alerts"), 1)
		done <- err
	}()
	srv.Close()
	require.True(t, errors.Is(next(t, done), errClosed))
}

func TestBadRequests(t *testing.T) {
	srv := start(t)
	alerts := srv.ChannelID("alerts")
	do := func(method, path, contentType, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL()+path, bytes.NewBufferString(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", Token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	status, body := do("POST", "/api/v10/channels/"+alerts+"/messages", "application/json", "{")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "50109")
	status, _ = do("POST", "/api/v10/channels/"+alerts+"/messages", "application/json", `{"content":5}`)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = do("POST", "/api/v10/channels/"+alerts+"/messages", "multipart/form-data; boundary=x", "garbage")
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = do("POST", "/api/v10/channels/"+alerts+"/messages", "application/json", `{"embeds":{"title":1}}`)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = do("POST", "/api/v10/channels/"+alerts+"/messages", "application/json", `{"components":[{"type":9}]}`)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = do("GET", "/api/v8/users/@me", "", "")
	require.Equal(t, http.StatusNotFound, status)
	status, body = do("GET", "/api/v10/gateway/bot", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `"url":"ws://127.0.0.1:`)
	status, _ = do("POST", "/api/v10/interactions/1/2/callback", "application/json", `{"type":6}`)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = do("PATCH", "/api/v10/webhooks/"+AppID+"/nope/messages/@original", "application/json", `{}`)
	require.Equal(t, http.StatusNotFound, status)
	require.Empty(t, srv.Messages(alerts))
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := New()
	ws := dial(t, srv)
	send(t, ws, opIdentify, map[string]any{"token": Token, "intents": allIntents})
	require.Equal(t, "READY", *read(t, ws).T)

	client := &http.Client{}
	req, err := http.NewRequest("GET", srv.URL()+"/api/v9/users/@me", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", Token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	client.CloseIdleConnections()

	srv.Close()
	srv.Close() // idempotent
	_ = ws.Close()
	// Polled by hand: require.Eventually runs its condition on goroutines of its own.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); after > before && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, after, before, "goroutines left running")
	_, err = srv.Mention(srv.ChannelID("alerts"), "555", "x")
	require.ErrorIs(t, err, errClosed)
}
