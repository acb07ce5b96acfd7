package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/teams/teamstest"
	"github.com/kubechat/kubechat/internal/config"
)

// configMapKey is what the API server accepts as a ConfigMap key.
var configMapKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// memState is an in-memory chat.StateStore shared across "restarts".
type memState struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memState) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

func (s *memState) Set(_ context.Context, key, value string) error {
	if !configMapKey.MatchString(key) {
		return fmt.Errorf("%q is not a valid ConfigMap key", key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		delete(s.m, key)
	} else {
		s.m[key] = value
	}
	return nil
}

// newPlatform builds the adapter against srv and serves its endpoint on
// loopback, where srv sends activities.
func newPlatform(t *testing.T, srv *teamstest.Server, serviceURL string, state chat.StateStore) *platform {
	t.Helper()
	t.Setenv("TEST_TEAMS_PASSWORD", teamstest.AppPassword)
	raw, err := config.RawFromYAML(fmt.Sprintf("appID: %s\nappPassword: ${TEST_TEAMS_PASSWORD}\nserviceURL: %s\nopenIDURL: %s\ntokenURL: %s\n",
		teamstest.AppID, serviceURL, srv.OpenIDURL(), srv.TokenURL()))
	require.NoError(t, err)
	p, err := New("ops-teams", raw, chat.Deps{State: state})
	require.NoError(t, err)
	tp := p.(*platform)
	mux := http.NewServeMux()
	mux.Handle(tp.HTTPPrefix()+"/", http.StripPrefix(tp.HTTPPrefix(), tp.HTTPHandler()))
	bot := httptest.NewServer(mux)
	t.Cleanup(bot.Close)
	srv.SetBotEndpoint(bot.URL + tp.HTTPPrefix() + "/api/messages")
	return tp
}

func (p *platform) ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verifier != nil && p.handle != nil
}

// fake adapts teamstest.Server to the conformance suite.
type fake struct{ srv *teamstest.Server }

func (f fake) Messages(ch string) []chattest.Posted {
	var out []chattest.Posted
	for _, a := range f.srv.Activities(ch) {
		out = append(out, chattest.Posted{ID: a.ID, Thread: a.ThreadRoot, Text: visibleText(a), Edits: a.Edits})
	}
	return out
}

// Files: bots cannot upload files to Teams channels; output is split instead.
func (f fake) Files(string) []chattest.Uploaded { return nil }

func (f fake) Mention(ch, user, text string) error {
	_, status, err := f.srv.Mention(ch, user, text)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("bot answered %d", status)
	}
	return err
}

func (f fake) Click(ch, messageID, user, actionID, value string) error {
	data := map[string]any{"actionId": actionID}
	if value != "" {
		data["value"] = value // the Input.ChoiceSet "value" merged into the action's data
	}
	status, body, err := f.srv.Execute(ch, messageID, user, actionVerb, data)
	if err == nil && (status != http.StatusOK || !strings.Contains(string(body), `"statusCode":200`)) {
		err = fmt.Errorf("bot answered %d %s", status, body)
	}
	return err
}

func (f fake) FailNext(n, status int, retryAfter time.Duration) {
	f.srv.FailNext(n, status, retryAfter)
}
func (f fake) Drop()            {}
func (f fake) Connections() int { return 0 }

// visibleText is the activity's text plus every text of its cards.
func visibleText(a teamstest.Activity) string {
	return a.Text + "\n" + chattest.JSONText([]string{"text", "title", "value"}, a.Attachments)
}

// TestConformance runs the shared suite. Teams bots cannot upload files to
// channels, so long output must arrive split, whole, over several replies;
// and Teams calls the agent over HTTPS, so there is no connection to cut.
func TestConformance(t *testing.T) {
	chattest.RunConformance(t, func(t *testing.T) chattest.Setup {
		srv := teamstest.New()
		t.Cleanup(srv.Close)
		p := newPlatform(t, srv, srv.ServiceURL(), nil)
		return chattest.Setup{
			Platform:       p,
			Fake:           fake{srv},
			Channel:        chat.Channel{Name: "alerts", ID: srv.ChannelID("alerts")},
			CanUpload:      false,
			Secrets:        []string{teamstest.AppPassword},
			Connectionless: true,
			Ready:          p.ready,
		}
	})
}

func listen(t *testing.T, p *platform, h chat.Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Listen(ctx, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, p.ready, 10*time.Second, 10*time.Millisecond)
}

// TestUnauthenticatedRequestsAreRefused: no token, a wrong audience, an
// expired token, a token from an unknown key, a foreign issuer and a
// serviceurl other than the activity's all get 401 and reach nothing.
func TestUnauthenticatedRequestsAreRefused(t *testing.T) {
	srv := teamstest.New()
	t.Cleanup(srv.Close)
	p := newPlatform(t, srv, srv.ServiceURL(), nil)
	var calls sync.Map
	listen(t, p, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
		calls.Store(in.Text, true)
		return chat.Message{Title: "pong"}
	}))
	activityOn := func(channelID, text string) []byte {
		a := map[string]any{
			"type": "message", "id": "1", "serviceUrl": srv.ServiceURL(), "text": "<at>kubechat</at> " + text,
			"from": map[string]any{"id": "29:U1", "name": "Mallory"}, "recipient": map[string]any{"id": "28:" + teamstest.AppID},
			"conversation": map[string]any{"id": srv.ChannelID("alerts") + ";messageid=1"},
			"channelData":  map[string]any{"channel": map[string]any{"id": srv.ChannelID("alerts")}},
		}
		if channelID != "" {
			a["channelId"] = channelID
		}
		b, _ := json.Marshal(a)
		return b
	}
	activity := func(text string) []byte { return activityOn("msteams", text) }
	for name, auth := range map[string]string{
		"no token":       "",
		"not bearer":     "Basic " + teamstest.AppPassword,
		"garbage":        "Bearer not.a.jwt",
		"wrong audience": "Bearer " + srv.TokenWith(srv.ServiceURL(), teamstest.WithAudience("another-bot")),
		"expired":        "Bearer " + srv.TokenWith(srv.ServiceURL(), teamstest.WithExpiry(time.Now().Add(-time.Hour))),
		"unknown key":    "Bearer " + srv.TokenWith(srv.ServiceURL(), teamstest.WithUnknownKey()),
		"unendorsed key": "Bearer " + srv.TokenWith(srv.ServiceURL(), teamstest.WithWebChatKey()),
		"wrong issuer":   "Bearer " + srv.TokenWith(srv.ServiceURL(), teamstest.WithIssuer("https://evil.example.com")),
		"serviceurl":     "Bearer " + srv.TokenWith(srv.ServiceURL(), teamstest.WithServiceURL("https://evil.example.com/")),
	} {
		status, err := srv.Post(activity(name), auth)
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, status, name)
	}
	// A key endorsed for Teams cannot sign an activity of another channel.
	for name, channelID := range map[string]string{"other channel": "webchat", "no channel": ""} {
		status, err := srv.Post(activityOn(channelID, name), "Bearer "+srv.Token(srv.ServiceURL()))
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, status, name)
	}
	status, err := srv.Post([]byte("{not json"), "")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, status, "bad JSON without a token says nothing more")
	// Barrier: a valid activity sent after the refused ones arrives alone.
	status, err = srv.Post(activity("sentinel"), "Bearer "+srv.Token(srv.ServiceURL()))
	require.NoError(t, err)
	require.Less(t, status, 300)
	require.Eventually(t, func() bool { _, ok := calls.Load("sentinel"); return ok }, 10*time.Second, 10*time.Millisecond)
	calls.Delete("sentinel")
	calls.Range(func(k, _ any) bool { t.Errorf("a refused request reached the handler: %v", k); return true })

	// The same activity, properly signed, gets through.
	status, err = srv.Post(activity("ping"), "Bearer "+srv.Token(srv.ServiceURL()))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { _, ok := calls.Load("ping"); return ok }, 10*time.Second, 10*time.Millisecond)
}

// TestConversationReferencesSurviveARestart: the bot learns a channel's
// serviceUrl when installed and mentioned; after a restart (a new
// platform, the same state) alerts reach the channel although the
// configured fallback serviceURL is wrong, and channels resolve by name.
func TestConversationReferencesSurviveARestart(t *testing.T) {
	srv := teamstest.New()
	t.Cleanup(srv.Close)
	state := &memState{m: map[string]string{}}
	first := newPlatform(t, srv, "https://unreachable.invalid/", state)
	listen(t, first, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
	status, err := srv.Install()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	_, status, err = srv.Mention(srv.ChannelID("alerts"), "U1", "ping")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	restarted := newPlatform(t, srv, "https://unreachable.invalid/", state)
	ref, err := restarted.Post(t.Context(), chat.Channel{ID: srv.ChannelID("alerts")}, chat.Message{Title: "Pod shop/web is failing"})
	require.NoError(t, err)
	require.NotEmpty(t, ref.ID)
	_, err = restarted.Post(t.Context(), chat.Channel{ID: "General"}, chat.Message{Title: "to General by name"})
	require.NoError(t, err)
	var titles []string
	for _, a := range srv.Activities(srv.TeamID()) {
		titles = append(titles, visibleText(a))
	}
	require.Contains(t, strings.Join(titles, "\n"), "to General by name")
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	t.Setenv("PW", "secret-value-123")
	for yaml, want := range map[string]string{
		"appPassword: ${PW}\n": "settings.appID: is required",
		"appID: x\n":           "settings.appPassword: is required",
		"appID: x\nappPassword: ${PW}\nserviceURL: ftp:x\n": `settings.serviceURL: "ftp:x" is not an http(s) URL`,
		"appID: x\nappPassword: ${PW}\nbogus: 1\n":          `unknown field "bogus"`,
	} {
		raw, err := config.RawFromYAML(yaml)
		require.NoError(t, err)
		_, err = New("t", raw, chat.Deps{})
		require.ErrorContains(t, err, want, yaml)
		require.NotContains(t, err.Error(), "secret-value-123")
	}
}

func TestMentionTextIsCleaned(t *testing.T) {
	p := &platform{name: "t", memory: map[string]string{}}
	var act inboundActivity
	act.ID = "42"
	act.Text = "<at>kubechat</at>&nbsp;kubectl get pods -l app=web &amp;&amp; x"
	act.Conversation.ID = "19:c@thread.tacv2;messageid=40"
	act.From.AADObjectID = "aad-1"
	in := p.inbound(act, "19:c@thread.tacv2")
	require.Equal(t, "kubectl get pods -l app=web && x", in.Text)
	require.Equal(t, "40", in.Thread.ID, "a reply goes into the thread of the message")
	require.Equal(t, "aad-1", in.UserID)
}

// TestPermalinkIsADeepLinkToTheMessage: once the agent heard from the
// channel (the install, a mention), a message and its thread link to
// Teams' deep link, with the team's group id from the install or, for a
// reference without it, from the team's details; before, none.
func TestPermalinkIsADeepLinkToTheMessage(t *testing.T) {
	srv := teamstest.New()
	t.Cleanup(srv.Close)
	state := &memState{m: map[string]string{}}
	p := newPlatform(t, srv, srv.ServiceURL(), state)
	alerts := chat.Channel{ID: srv.ChannelID("alerts")}
	root, err := p.Post(t.Context(), alerts, chat.Message{Title: "Pod shop/web is failing"})
	require.NoError(t, err)
	link, err := p.Permalink(t.Context(), root)
	require.NoError(t, err)
	require.Empty(t, link, "a channel the agent has not heard from has no link")

	listen(t, p, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
	_, status, err := srv.Mention(alerts.ID, "U1", "ping") // a mention carries no group id
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	reply, err := p.Post(t.Context(), alerts, chat.Message{Title: "more", Thread: &root})
	require.NoError(t, err)
	want := func(id string) string {
		return "https://teams.microsoft.com/l/message/" + url.PathEscape(alerts.ID) + "/" + id +
			"?groupId=" + teamstest.GroupID + "&parentMessageId=" + root.ID + "&tenantId=" + teamstest.TenantID
	}
	for _, ref := range []chat.MessageRef{root, reply} {
		link, err := p.Permalink(t.Context(), ref)
		require.NoError(t, err)
		require.Equal(t, want(ref.ID), link)
	}
	link, err = p.Permalink(t.Context(), chat.ThreadRef(reply))
	require.NoError(t, err)
	require.Equal(t, want(root.ID), link, "the thread's link is its root's")
}
