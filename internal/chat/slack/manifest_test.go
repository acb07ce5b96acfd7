package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/slack/slacktest"
	"github.com/kubechat/kubechat/internal/config"
)

// The Slack app manifests in configs/slack grant what the adapter uses and
// nothing more. The chain of checks, each against the one before:
//
//	the adapter's source → clientCalls (TestClientCallsAreListed)
//	clientCalls → the Web API methods on the wire (TestWebAPICallsOnTheWire)
//	those methods → webAPI, Slack's documented scopes → the manifests (TestManifests)
//
// so a new call in slack.go fails a test until the tables, and then the
// manifests, say what it needs.

// clientCalls are the calls the adapter makes on its slack-go clients
// (p.api, the Web API client, and sm, the Socket Mode client), each with
// the Web API methods it sends.
var clientCalls = map[string][]string{
	"p.api.AuthTestContext":         {"auth.test"},
	"p.api.GetConversationsContext": {"conversations.list"},
	"p.api.GetPermalinkContext":     {"chat.getPermalink"},
	"p.api.PostMessageContext":      {"chat.postMessage"},
	"p.api.UpdateMessageContext":    {"chat.update"},
	// The external upload flow; the upload itself goes to the URL that
	// files.getUploadURLExternal returns, without a token.
	"p.api.UploadFileContext": {"files.getUploadURLExternal", "files.completeUploadExternal"},
	"sm.RunContext":           {"apps.connections.open"}, // then the websocket it returns
	"sm.AckCtx":               nil,                       // a frame on the websocket
}

// tokenBot and tokenApp are the two kinds of token the adapter holds.
const (
	tokenBot = "bot" // xoxb-: its scopes are the manifest's oauth_config.scopes.bot
	tokenApp = "app" // xapp-: made in the app's settings, not in the manifest
)

// webAPI is, for each Web API method the adapter calls, the token it takes
// and the scopes Slack documents for it at https://api.slack.com/methods/<method>.
var webAPI = map[string]struct {
	token  string
	scopes []string
}{
	"auth.test":             {tokenBot, nil},
	"apps.connections.open": {tokenApp, []string{"connections:write"}},
	"chat.postMessage":      {tokenBot, []string{"chat:write"}},
	"chat.update":           {tokenBot, []string{"chat:write"}},
	"chat.getPermalink":     {tokenBot, nil}, // no scope
	// One scope per conversation type listed; the adapter lists
	// public_channel and private_channel (see conversationTypeScopes).
	"conversations.list":           {tokenBot, []string{"channels:read", "groups:read"}},
	"files.getUploadURLExternal":   {tokenBot, []string{"files:write"}},
	"files.completeUploadExternal": {tokenBot, []string{"files:write"}},
}

// conversationTypeScopes are the scopes conversations.list needs for each
// value of its types argument.
var conversationTypeScopes = map[string]string{
	"public_channel": "channels:read", "private_channel": "groups:read", "im": "im:read", "mpim": "mpim:read",
}

// events are the bot events the manifests may subscribe to: the scope
// Slack requires for each (https://api.slack.com/events/<event>) and an
// inner event as Slack sends it, which Listen must turn into a command
// ("ping"). UPEER00001 is a peer cluster's bot.
var events = map[string]struct {
	scope string
	inner string
}{
	"app_mention": {"app_mentions:read",
		`{"type":"app_mention","channel":"C0000000001","user":"U0000000001","text":"<@UKUBECHAT> ping","ts":"1.1"}`},
	"message.im": {"im:history",
		`{"type":"message","channel":"D0000000001","channel_type":"im","user":"U0000000001","text":"ping","ts":"1.2"}`},
	"message.channels": {"channels:history",
		`{"type":"message","channel":"C0000000001","channel_type":"channel","user":"U0000000001","text":"<@UPEER00001> ping","ts":"1.3"}`},
	"message.groups": {"groups:history",
		`{"type":"message","channel":"G0000000001","channel_type":"group","user":"U0000000001","text":"<@UPEER00001> ping","ts":"1.4"}`},
}

// manifests are the app manifests and the events each must subscribe to.
var manifests = map[string]struct {
	events   []string
	peerBots bool // the agent lists peer bots, as every agent with this app does
}{
	"app-manifest.yaml":              {[]string{"app_mention", "message.im"}, false},
	"app-manifest-multicluster.yaml": {[]string{"app_mention", "message.channels", "message.groups", "message.im"}, true},
}

// TestClientCallsAreListed: every call the adapter makes on a slack-go
// client is in clientCalls, and every entry is still made.
func TestClientCallsAreListed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	call := regexp.MustCompile(`\b(p\.api|sm)\.([A-Z]\w*)\(`)
	found := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			found[m[1]+"."+m[2]] = true
		}
	}
	require.Equal(t, slices.Sorted(maps.Keys(clientCalls)), slices.Sorted(maps.Keys(found)),
		"a slack-go call was added or removed: update clientCalls, webAPI and configs/slack/*.yaml")
}

// apiCall is one Web API request as the recorder saw it.
type apiCall struct {
	method, token string
	params        url.Values
}

// recorder records the Web API requests (/api/<method>) that pass through it.
type recorder struct {
	mu    sync.Mutex
	calls []apiCall
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if method, ok := strings.CutPrefix(req.URL.Path, "/api/"); ok {
		params := req.URL.Query()
		if req.Body != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			form, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, err
			}
			for k, v := range form {
				params[k] = append(params[k], v...)
			}
		}
		token := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
		if token == "" {
			token = params.Get("token")
		}
		kind := ""
		switch {
		case strings.HasPrefix(token, "xoxb-"):
			kind = tokenBot
		case strings.HasPrefix(token, "xapp-"):
			kind = tokenApp
		}
		r.mu.Lock()
		r.calls = append(r.calls, apiCall{method: method, token: kind, params: params})
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestWebAPICallsOnTheWire runs the adapter through everything it does
// (connect, a command and its reply, an alert, its edit, an upload)
// against the fake Slack and checks the Web API methods it sent against
// clientCalls and webAPI.
func TestWebAPICallsOnTheWire(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	rec := &recorder{}
	p := newPlatform(t, srv, chat.Deps{HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		_ = p.Listen(ctx, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{Title: "pong"} }))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, srv.WaitConnected(t.Context(), 1))

	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	alerts := srv.ChannelID("alerts")
	_, _, err := srv.Mention(alerts, "U0000000001", "ping")
	require.NoError(t, err)
	_, err = srv.WaitMessages(wctx, alerts, 2) // the command and its reply
	require.NoError(t, err)
	ref, err := p.Post(wctx, chat.Channel{ID: "alerts"}, chat.Message{Title: "CrashLoopBackOff"})
	require.NoError(t, err)
	_, err = p.Post(wctx, chat.Channel{ID: "alerts"}, chat.Message{Title: "Resolved", Replace: &ref})
	require.NoError(t, err)
	require.NoError(t, p.(chat.Uploader).Upload(wctx, chat.Channel{ID: "alerts"}, ref, chat.File{Name: "out.txt", Content: "x\n"}))
	_, err = chat.Permalink(wctx, p, ref)
	require.NoError(t, err)
	cancel()
	<-done

	want := map[string]bool{}
	for _, methods := range clientCalls {
		for _, m := range methods {
			want[m] = true
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := map[string]bool{}
	for _, c := range rec.calls {
		got[c.method] = true
		api, known := webAPI[c.method]
		require.True(t, known, "the adapter called %s, which webAPI does not list", c.method)
		require.Equal(t, api.token, c.token, "%s was called with the wrong kind of token", c.method)
		if c.method == "conversations.list" {
			var scopes []string
			for _, typ := range strings.Split(c.params.Get("types"), ",") {
				require.Contains(t, conversationTypeScopes, typ)
				scopes = append(scopes, conversationTypeScopes[typ])
			}
			require.ElementsMatch(t, api.scopes, scopes, "conversations.list types=%s", c.params.Get("types"))
		}
	}
	require.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)),
		"the Web API methods sent differ from clientCalls")
	require.Len(t, webAPI, len(want), "webAPI lists a method the adapter no longer calls")
}

// TestManifests: each manifest parses (strictly, into slack-go's own
// manifest type), asks for exactly the bot scopes its calls and events
// need, subscribes to events the adapter turns into commands, and uses
// Socket Mode with interactivity on.
func TestManifests(t *testing.T) {
	for name, want := range manifests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "..", "..", "configs", "slack", name)
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			var m slack.Manifest
			require.NoError(t, yaml.UnmarshalStrict(data, &m))

			require.True(t, m.Settings.SocketModeEnabled, "settings.socket_mode_enabled")
			require.NotNil(t, m.Settings.Interactivity, "settings.interactivity")
			require.True(t, m.Settings.Interactivity.IsEnabled, "settings.interactivity.is_enabled: buttons")
			require.Empty(t, m.Settings.Interactivity.RequestUrl, "with Socket Mode, clicks come over the connection")
			require.NotNil(t, m.Settings.EventSubscriptions, "settings.event_subscriptions")
			require.Empty(t, m.Settings.EventSubscriptions.RequestUrl, "with Socket Mode, events come over the connection")
			require.Empty(t, m.Settings.EventSubscriptions.UserEvents)
			require.True(t, m.Features.AppHome.MessagesTabEnabled && !m.Features.AppHome.MessagesTabReadOnlyEnabled,
				"features.app_home: users must be able to send the bot direct messages (message.im)")
			require.NotEmpty(t, m.Features.BotUser.DisplayName, "features.bot_user")
			require.Empty(t, m.OAuthConfig.Scopes.User, "the agent holds no user token")
			require.Empty(t, m.OAuthConfig.Scopes.BotOptional)

			require.Equal(t, want.events, slices.Sorted(slices.Values(m.Settings.EventSubscriptions.BotEvents)), "bot events")
			scopes := map[string]bool{}
			for _, api := range webAPI {
				if api.token == tokenBot {
					for _, s := range api.scopes {
						scopes[s] = true
					}
				}
			}
			for _, e := range want.events {
				scopes[events[e].scope] = true
			}
			require.Equal(t, slices.Sorted(maps.Keys(scopes)), slices.Sorted(slices.Values(m.OAuthConfig.Scopes.Bot)),
				"oauth_config.scopes.bot must be exactly what the calls and events need")
			for _, s := range m.OAuthConfig.Scopes.Bot {
				require.Regexp(t, `(?m)^#\s+`+regexp.QuoteMeta(s)+`\s`, string(data), "the header comment says why %s is needed", s)
			}

			// Every subscribed event is one Listen turns into a command.
			settings := "botToken: ${TEST_SLACK_BOT_TOKEN}\nappToken: ${TEST_SLACK_APP_TOKEN}\n"
			if want.peerBots {
				settings += "peerBots: [UPEER00001]\n"
			}
			t.Setenv("TEST_SLACK_BOT_TOKEN", slacktest.BotToken)
			t.Setenv("TEST_SLACK_APP_TOKEN", slacktest.AppToken)
			raw, err := config.RawFromYAML(settings)
			require.NoError(t, err)
			cp, err := New("ops-slack", raw, chat.Deps{})
			require.NoError(t, err)
			p := cp.(*platform)
			p.botUser = "UKUBECHAT"
			for _, e := range m.Settings.EventSubscriptions.BotEvents {
				outer := `{"type":"event_callback","team_id":"T0000000001","event":` + events[e].inner + `}`
				ev, err := slackevents.ParseEvent(json.RawMessage(outer), slackevents.OptionNoVerifyToken())
				require.NoError(t, err, e)
				in := p.inbound(socketmode.Event{Type: socketmode.EventTypeEventsAPI, Data: ev})
				require.Len(t, in, 1, "the %s event is subscribed but Listen does not handle it", e)
				require.Equal(t, "ping", in[0].Text, e)
			}
			// Interactivity: a click on a button comes back as the action.
			var click slack.InteractionCallback
			require.NoError(t, json.Unmarshal([]byte(`{"type":"block_actions","user":{"id":"U0000000001"},
				"channel":{"id":"C0000000001"},"container":{"type":"message","message_ts":"1.1","channel_id":"C0000000001"},
				"actions":[{"type":"button","action_id":"act-1","block_id":"b","value":"v"}]}`), &click))
			in := p.inbound(socketmode.Event{Type: socketmode.EventTypeInteractive, Data: click})
			require.Len(t, in, 1)
			require.Equal(t, "act-1", in[0].ButtonID)
		})
	}
}
