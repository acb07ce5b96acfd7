package webchat

import (
	"context"
	"encoding/json"
	"fmt"
	"golang.org/x/crypto/bcrypt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/health"
)

// testToken is the access token of the token-auth cases.
const testToken = "test-token-0123456789abcdef"

// tokenSettings is a web chat with token sign-in.
func tokenSettings(t *testing.T, extra string) string {
	t.Setenv("TEST_WEBCHAT_TOKEN", testToken)
	return "auth: token\ntoken: ${TEST_WEBCHAT_TOKEN}\nchannels: [alerts, ops]\n" + extra
}

// users are the basic-auth accounts of the conformance suite.
var users = map[string]string{
	"viewer":  "viewer-password-1",
	"U-alice": "alice-password-2",
	"U-bob":   "bob-password-3",
	"U-carol": "carol-password-4",
}

func basicSettings(t *testing.T) string {
	var b strings.Builder
	b.WriteString("auth: basic\nchannels: [alerts, ops]\nusers:\n")
	i := 0
	for name, password := range users {
		env := fmt.Sprintf("TEST_WEBCHAT_PASSWORD_%d", i)
		t.Setenv(env, password)
		fmt.Fprintf(&b, "  - name: %s\n    password: ${%s}\n", name, env)
		i++
	}
	return b.String()
}

func asUser(user string) credentials { return basic(user, users[user]) }

// TestConformance runs the shared suite with basic auth: every mention and
// click is signed in as its user. The web chat is served by the agent
// itself (Local): there is no remote API to answer 429 or 5xx. Its
// "connection" is the page's event stream: Drop cuts it, and the client
// reconnects as a browser does.
func TestConformance(t *testing.T) {
	chattest.RunConformance(t, func(t *testing.T) chattest.Setup {
		p := newPlatform(t, basicSettings(t))
		srv := serve(t, p)
		c := newClient(t, srv, p, asUser("viewer"))
		c.as = asUser
		secrets := make([]string, 0, len(users))
		for _, password := range users {
			secrets = append(secrets, password)
		}
		return chattest.Setup{
			Platform:  p,
			Fake:      c,
			Channel:   chat.Channel{Name: "alerts", ID: "alerts"},
			CanUpload: true,
			Secrets:   secrets,
			Local:     true,
			Ready:     func() bool { return p.ready() && c.Connections() > 0 },
		}
	})
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	t.Setenv("WC_TOKEN", "secret-token-value-123456")
	t.Setenv("WC_SHORT", "short")
	t.Setenv("WC_PW", "secret-password-value")
	for yaml, want := range map[string]string{
		"channels: [a]\n":                                  "settings.auth: is required: token, basic, or none",
		"auth: tokens\nchannels: [a]\n":                    `settings.auth: unknown mode "tokens" (known: token, basic, none)`,
		"auth: token\nchannels: [a]\n":                     "settings.token: is required with auth: token",
		"auth: token\ntoken: ${WC_SHORT}\nchannels: [a]\n": "settings.token: is too short: use at least 16 characters (from env WC_SHORT)",
		"auth: basic\nchannels: [a]\n":                     "settings.users: at least one user is required with auth: basic",
		"auth: basic\nusers: [{name: a}]\nchannels: [a]\n": "settings.users[0].password: is required (or passwordHash, a bcrypt hash)",
		"auth: basic\nusers: [{name: a, passwordHash: 'secret-password-value'}]\nchannels: [a]\n":            "settings.users[0].passwordHash: is not a bcrypt hash",
		"auth: basic\nusers: [{name: a, password: '${WC_PW}', passwordHash: '$2b$04$abc'}]\nchannels: [a]\n": "settings.users[0]: set password or passwordHash, not both",
		"auth: basic\nusers:\n  - name: 'a:b'\n    password: ${WC_PW}\nchannels: [a]\n":                      `settings.users[0].name: "a:b" must be`,
		"auth: none\ntoken: ${WC_TOKEN}\nchannels: [a]\n":                                                    "settings.token: is for auth: token, but auth is none",
		"auth: token\ntoken: ${WC_TOKEN}\nusers:\n  - name: a\n    password: ${WC_PW}\nchannels: [a]\n":      "settings.users: is for auth: basic, but auth is token",
		"auth: none\n":                                       "settings.channels: list at least one channel id",
		"auth: none\nchannels: [a, 'b c']\n":                 `settings.channels[1]: "b c" must be letters, digits and . _ -`,
		"auth: none\nchannels: [a, a]\n":                     `settings.channels[1]: "a" is listed twice`,
		"auth: none\nchannels: [a]\nhistory: -1\n":           "settings.history: must be between 1 and 10000, got -1",
		"auth: none\nchannels: [a]\nbotName: '@bot'\n":       `settings.botName: "@bot" must be letters`,
		"auth: none\nchannels: [a]\ncolour: blue\n":          `unknown field "colour"`,
		"auth: token\ntoken: secret-inline\nchannels: [a]\n": "inline secret values are not allowed",
	} {
		raw, err := config.RawFromYAML(yaml)
		require.NoError(t, err)
		_, err = New("web", raw, chat.Deps{})
		require.ErrorContains(t, err, want, yaml)
		require.Contains(t, err.Error(), `webchat "web"`)
		for _, secret := range []string{"secret-token-value-123456", "secret-password-value"} {
			require.NotContains(t, err.Error(), secret)
		}
	}
	raw, err := config.RawFromYAML("auth: none\nchannels: [a]\n")
	require.NoError(t, err)
	_, err = New("web", raw, chat.Deps{})
	require.NoError(t, err, "auth: none is allowed when chosen explicitly")
}

// TestAuthNoneWarns: without sign-in, Listen says plainly what that means.
func TestAuthNoneWarns(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	raw, err := config.RawFromYAML("auth: none\nchannels: [alerts]\n")
	require.NoError(t, err)
	pl, err := New("open", raw, chat.Deps{Log: newTextLogger(&mu, &logs)})
	require.NoError(t, err)
	p := pl.(*platform)
	listen(t, p, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, logs.String(), "level=WARN")
	require.Contains(t, logs.String(), "anyone who reaches the agent's port can read the channels and run their commands")
}

// TestTokenSignIn: the API needs the token (header or session cookie);
// the page signs a browser in once, from ?token= or the form, with an
// HttpOnly SameSite=Strict cookie, and takes the token out of the address.
func TestTokenSignIn(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, auth credentials, cookies ...*http.Cookie) *http.Response {
		req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
		require.NoError(t, err)
		if auth != nil {
			auth(req)
		}
		for _, ck := range cookies {
			req.AddCookie(ck)
		}
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	for _, path := range []string{"/api/session", "/api/events", "/api/files/x"} {
		require.Equal(t, http.StatusUnauthorized, get(path, nil).StatusCode, path)
		require.Equal(t, http.StatusUnauthorized, get(path, bearer("wrong-token-0123456789")).StatusCode, path)
		require.Equal(t, http.StatusUnauthorized, get(path, basic("token", testToken)).StatusCode, "basic is not the token: "+path)
	}
	status, _ := c.post("/api/messages", nil, postRequest{Channel: "alerts", Text: "kubectl get pods"})
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, http.StatusOK, get("/api/session", bearer(testToken)).StatusCode)

	// The page: a sign-in form, then a session from ?token=.
	resp := get("/", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Equal(t, http.StatusUnauthorized, get("/?token=wrong-token-0123456789", nil).StatusCode)
	resp = get("/?token="+url.QueryEscape(testToken), nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "./", resp.Header.Get("Location"), "the token leaves the address")
	session := sessionCookieOf(t, resp)
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, session.SameSite)
	require.NotContains(t, session.Value, testToken)
	require.Equal(t, http.StatusOK, get("/", nil, session).StatusCode)
	require.Equal(t, http.StatusOK, get("/api/session", nil, session).StatusCode)

	// A forged or expired cookie is refused.
	forged := *session
	forged.Value = "99999999999." + strings.Repeat("A", 43)
	require.Equal(t, http.StatusUnauthorized, get("/api/session", nil, &forged).StatusCode)
	p.auth.now = func() time.Time { return time.Now().Add(13 * time.Hour) }
	require.Equal(t, http.StatusUnauthorized, get("/api/session", nil, session).StatusCode, "the session expired")
	p.auth.now = time.Now

	// The form.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar}
	form := func(token string) *http.Response {
		resp, err := browser.PostForm(c.base+"/login", url.Values{"token": {token}})
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		return resp
	}
	resp = form("wrong-token-0123456789")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	require.Contains(t, string(body), "That token is not valid.")
	resp = form(testToken)
	require.Equal(t, http.StatusOK, resp.StatusCode, "redirected to the page, signed in")
	body, _ = io.ReadAll(resp.Body)
	require.Contains(t, string(body), `src="static/app.js"`)

	// Signing out ends the browser's session.
	resp, err = browser.Post(c.base+"/logout", "application/x-www-form-urlencoded", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "back on the sign-in form")
}

func sessionCookieOf(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			return ck
		}
	}
	t.Fatalf("no %s cookie in %v", sessionCookie, resp.Header["Set-Cookie"])
	return nil
}

// TestBasicAuth: each request carries a user's credentials; the user is
// who commands run as.
func TestBasicAuth(t *testing.T) {
	p := newPlatform(t, basicSettings(t))
	srv := serve(t, p)
	c := newClient(t, srv, p, asUser("viewer"))
	got := make(chan chat.Inbound, 1)
	listen(t, p, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
		got <- in
		return chat.Message{}
	}))
	for _, auth := range []credentials{nil, basic("U-alice", "wrong"), basic("nobody", "alice-password-2"), bearer("alice-password-2")} {
		var s session
		require.Equal(t, http.StatusUnauthorized, c.get("/api/session", auth, &s))
	}
	req, err := http.NewRequest(http.MethodGet, c.base+"/", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, `Basic realm="kubechat ops", charset="UTF-8"`, resp.Header.Get("WWW-Authenticate"))

	var s session
	require.Equal(t, http.StatusOK, c.get("/api/session", asUser("U-alice"), &s))
	require.Equal(t, identity{ID: "U-alice", Name: "U-alice"}, s.User)
	require.Equal(t, []string{"alerts", "ops"}, s.Channels)
	require.Equal(t, "test-cluster", s.Cluster)
	status, answer := c.post("/api/messages", asUser("U-alice"), postRequest{Channel: "ops", Text: "kubectl get ns"})
	require.Equal(t, http.StatusAccepted, status, answer)
	in := <-got
	require.Equal(t, "U-alice", in.UserID)
	require.Equal(t, "U-alice", in.UserName)
	require.Equal(t, "ops", in.Channel.ID)
}

// TestBasicAuthWithBcryptHash: an account may be configured with a bcrypt
// hash of its password instead of the password, as Prometheus' web
// configuration takes them.
func TestBasicAuthWithBcryptHash(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("hashed-password-9"), bcrypt.MinCost)
	require.NoError(t, err)
	p := newPlatform(t, "auth: basic\nchannels: [ops]\nusers:\n  - name: carol\n    passwordHash: '"+string(hash)+"'\n")
	srv := serve(t, p)
	c := newClient(t, srv, p, basic("carol", "hashed-password-9"))
	listen(t, p, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
	for _, auth := range []credentials{nil, basic("carol", "wrong"), basic("carol", string(hash)), basic("nobody", "hashed-password-9")} {
		var s session
		require.Equal(t, http.StatusUnauthorized, c.get("/api/session", auth, &s))
	}
	for range 2 { // the second time from the cache of matches
		var s session
		require.Equal(t, http.StatusOK, c.get("/api/session", basic("carol", "hashed-password-9"), &s))
		require.Equal(t, identity{ID: "carol", Name: "carol"}, s.User)
	}
}

// TestCrossOriginPostsRefused: a page on another site cannot make a
// signed-in browser post commands or clicks.
func TestCrossOriginPostsRefused(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	var calls sync.Map
	listen(t, p, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
		calls.Store(in.Text, true)
		return chat.Message{}
	}))
	for name, header := range map[string][]string{
		"foreign origin":   {"Origin", "https://evil.example.com"},
		"cross-site fetch": {"Sec-Fetch-Site", "cross-site"},
		"same-site fetch":  {"Sec-Fetch-Site", "same-site"},
	} {
		status, answer := c.post("/api/messages", bearer(testToken), postRequest{Channel: "alerts", Text: name}, header...)
		require.Equal(t, http.StatusForbidden, status, name)
		require.Contains(t, answer, "cross-origin request refused", name)
		status, _ = c.post("/api/actions", bearer(testToken), actionRequest{Channel: "alerts", Message: "x", Action: "y"}, header...)
		require.Equal(t, http.StatusForbidden, status, name)
	}
	login := func(origin string) int {
		req, err := http.NewRequest(http.MethodPost, c.base+"/login", strings.NewReader("token="+testToken))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusSeeOther, login(""), "a client without Origin (curl) may sign in")
	require.Equal(t, http.StatusSeeOther, login(srv.URL), "the sign-in form may")
	require.Equal(t, http.StatusForbidden, login("https://evil.example.com"), "no sign-in from another site")

	// The page's own origin is fine.
	status, answer := c.post("/api/messages", bearer(testToken), postRequest{Channel: "alerts", Text: "same origin"},
		"Origin", srv.URL, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusAccepted, status, answer)
	require.Eventually(t, func() bool { _, ok := calls.Load("same origin"); return ok }, 5*time.Second, 5*time.Millisecond)
	calls.Range(func(k, _ any) bool {
		require.Equal(t, "same origin", k, "a refused request reached the handler")
		return true
	})
}

// TestBadRequestsNameTheField: a malformed POST gets 4xx with an error
// that says what is wrong, and reaches nothing.
func TestBadRequestsNameTheField(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	reached := make(chan chat.Inbound, 10)
	listen(t, p, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
		reached <- in
		return chat.Message{}
	}))
	ref, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "with a button", Sections: []chat.Section{{
		Buttons: []chat.Button{{Label: "Run", ID: "act-1"}},
		Selects: []chat.Select{{ID: "act-ns", Options: []chat.Option{{Label: "default", Value: "default"}}}},
	}}})
	require.NoError(t, err)
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/api/messages", `{"channel": "alerts", "text": `, 400, "body: the JSON ends too early"},
		{"/api/messages", `{"channel": "alerts" "text": "x"}`, 400, "body: invalid JSON at byte 22: invalid character"},
		{"/api/messages", ``, 400, "body: is empty; expected a JSON object with channel, text, thread"},
		{"/api/messages", `["alerts"]`, 400, "body: expected a JSON object with channel, text, thread, got a array"},
		{"/api/messages", `{"channel": 5, "text": "x"}`, 400, "channel: expected a string, got a number"},
		{"/api/messages", `{"channel": "alerts", "txt": "x"}`, 400, "txt: unknown field (known: channel, text, thread)"},
		{"/api/messages", `{"channel": "alerts", "text": "x"} {}`, 400, "body: more than one JSON value"},
		{"/api/messages", `{"text": "x"}`, 400, "channel: is required"},
		{"/api/messages", `{"channel": "nowhere", "text": "x"}`, 404, `channel: unknown channel "nowhere" (known: alerts, ops)`},
		{"/api/messages", `{"channel": "alerts", "text": "  "}`, 400, "text: is required"},
		{"/api/messages", `{"channel": "alerts", "text": "@kubechat"}`, 400, "text: has no command after @kubechat"},
		{"/api/messages", `{"channel": "alerts", "text": "` + strings.Repeat("x", maxText+1) + `"}`, 400, "text: is longer than 4000 characters"},
		{"/api/messages", `{"channel": "alerts", "text": "x", "thread": "nope"}`, 404, `thread: no message "nope" in channel "alerts"`},
		{"/api/messages", `{"channel": "alerts", "text": "` + strings.Repeat("x", maxBody) + `"}`, 413, "body: larger than 64 KiB"},
		{"/api/actions", `{"channel": "alerts", "message": "` + ref.ID + `"}`, 400, "action: is required"},
		{"/api/actions", `{"channel": "alerts", "action": "act-1"}`, 400, "message: is required"},
		{"/api/actions", `{"channel": "alerts", "message": "` + ref.ID + `", "action": "act-forged"}`, 404, `action: message "` + ref.ID + `" has no action "act-forged"`},
		{"/api/actions", `{"channel": "alerts", "message": "` + ref.ID + `", "action": "act-1", "value": "x"}`, 400, "value: a button carries no value"},
		{"/api/actions", `{"channel": "alerts", "message": "` + ref.ID + `", "action": "act-ns", "value": "kube-system"}`, 400, `value: "kube-system" is not one of the select's options`},
		{"/api/actions", `{"channel": "alerts", "message": "` + ref.ID + `", "action": "act-1", "actionId": "x"}`, 400, "actionId: unknown field (known: channel, message, action, value)"},
	} {
		status, answer := c.post(tc.path, bearer(testToken), tc.body)
		require.Equal(t, tc.status, status, "%s %s: %s", tc.path, tc.body, answer)
		var e struct{ Error string }
		require.NoError(t, json.Unmarshal([]byte(answer), &e), answer)
		require.Contains(t, e.Error, tc.want, "%s %s", tc.path, tc.body)
	}
	status, answer := c.post("/api/messages", bearer(testToken), `{"channel": "alerts", "text": "x"}`, "Content-Type", "text/plain")
	require.Equal(t, http.StatusUnsupportedMediaType, status)
	require.Contains(t, answer, "Content-Type: application/json")
	select {
	case in := <-reached:
		t.Fatalf("a bad request reached the handler: %+v", in)
	case <-time.After(100 * time.Millisecond):
	}
	require.Len(t, c.messages("alerts"), 1, "a bad request shows nothing")
}

// TestMentionAndClickThreads: the mention is optional and stripped; a
// command typed in a thread and a click on a reply are answered in that
// thread.
func TestMentionAndClickThreads(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	got := make(chan chat.Inbound, 10)
	listen(t, p, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
		got <- in
		return chat.Message{Title: "reply to " + in.Text + in.ButtonID, Sections: []chat.Section{{
			Buttons: []chat.Button{{Label: "Again", ID: "again"}}}}}
	}))
	alert, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "alert"})
	require.NoError(t, err)

	status, answer := c.post("/api/messages", bearer(testToken), postRequest{Channel: "alerts", Text: "kubectl get pods"})
	require.Equal(t, http.StatusAccepted, status, answer)
	in := <-got
	require.Equal(t, "kubectl get pods", in.Text, "no mention needed")
	require.Equal(t, "token", in.UserID)
	require.Equal(t, "ops", in.Platform)

	status, answer = c.post("/api/messages", bearer(testToken), postRequest{Channel: "alerts", Text: "@KubeChat: describe pod web-1", Thread: alert.ID})
	require.Equal(t, http.StatusAccepted, status, answer)
	in = <-got
	require.Equal(t, "describe pod web-1", in.Text)
	require.Equal(t, alert.ID, in.Thread.ID, "typed in the alert's thread")

	var reply wireMessage
	require.NoError(t, c.wait(func() bool {
		for _, m := range c.msgs {
			if m.Title == "reply to describe pod web-1" {
				reply = m
				return true
			}
		}
		return false
	}))
	require.Equal(t, alert.ID, reply.Thread)
	status, answer = c.post("/api/actions", bearer(testToken), actionRequest{Channel: "alerts", Message: reply.ID, Action: "again"})
	require.Equal(t, http.StatusAccepted, status, answer)
	in = <-got
	require.Equal(t, "again", in.ButtonID)
	require.Equal(t, alert.ID, in.Thread.ID, "a click on a reply is answered in its thread")

	for text, want := range map[string]string{
		"@kubechat kubectl get po": "kubectl get po",
		"@kubechat, help":          "help",
		"@kubechatter get":         "@kubechatter get",
		"kubectl get po @kubechat": "kubectl get po @kubechat",
		"  @KUBECHAT\tversion ":    "version",
	} {
		require.Equal(t, want, stripMention(text, "kubechat"), text)
	}
}

// TestStreamReconnectGetsEverything: a page whose stream is cut reconnects
// with the last event id it got and receives every message and edit made
// meanwhile, each once.
func TestStreamReconnectGetsEverything(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	to := chat.Channel{ID: "alerts"}
	first, err := p.Post(t.Context(), to, chat.Message{Title: "before the cut"})
	require.NoError(t, err)
	require.NoError(t, c.wait(func() bool { return len(c.msgs) == 1 }))

	// Cut the stream and post while the client is away: the next stream
	// must start after the posts, so hold the client's reconnect back.
	for round := range 5 {
		c.Drop()
		for i := range 20 {
			_, err := p.Post(t.Context(), to, chat.Message{Title: fmt.Sprintf("round %d message %d", round, i)})
			require.NoError(t, err)
		}
		_, err = p.Post(t.Context(), to, chat.Message{Title: fmt.Sprintf("edited in round %d", round), Replace: &first})
		require.NoError(t, err)
	}
	c.sync()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Greater(t, c.conns, 1, "the client reconnected")
	require.Zero(t, c.resets, "a reconnect within the history needs no reset")
	require.Len(t, c.msgs, 101)
	for id, n := range c.seen {
		require.Equal(t, 1, n, "event %s arrived %d times", id, n)
	}
	require.Equal(t, "edited in round 4", c.msgs[first.ID].Title)
	require.Equal(t, 5, c.msgs[first.ID].Edits)
}

// TestHistoryBounded: a channel keeps its last settings.history messages;
// a page opened later gets those, and a page that missed messages that
// have left the history starts over (reset) rather than keep a gap.
func TestHistoryBounded(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, "history: 5\n"))
	srv := serve(t, p)
	to := chat.Channel{ID: "alerts"}
	var refs []chat.MessageRef
	for i := range 12 {
		ref, err := p.Post(t.Context(), to, chat.Message{Title: fmt.Sprintf("alert %d", i)})
		require.NoError(t, err)
		refs = append(refs, ref)
	}
	_, err := p.Post(t.Context(), chat.Channel{ID: "ops"}, chat.Message{Title: "ops keeps its own"})
	require.NoError(t, err)

	c := newClient(t, srv, p, bearer(testToken))
	c.sync()
	var titles []string
	for _, m := range c.messages("alerts") {
		titles = append(titles, m.Title)
	}
	require.Equal(t, []string{"alert 7", "alert 8", "alert 9", "alert 10", "alert 11"}, titles)
	require.Len(t, c.messages("ops"), 1)

	// An edit of a message that left the history shows as a message again.
	_, err = p.Post(t.Context(), to, chat.Message{Title: "alert 0 resolved", Level: chat.LevelSuccess, Replace: &refs[0]})
	require.NoError(t, err)
	c.sync()
	got := c.messages("alerts")
	require.Len(t, got, 6, "the page keeps what it got; a new page sees the history")
	require.Equal(t, refs[0].ID, got[5].ID)
	require.Equal(t, "alert 0 resolved", got[5].Title)
	fresh := newClient(t, srv, p, bearer(testToken))
	fresh.sync()
	got = fresh.messages("alerts")
	require.Len(t, got, 5)
	require.Equal(t, "alert 8", got[0].Title)
	require.Equal(t, "alert 0 resolved", got[4].Title)

	// A page that was away while messages it never saw left the history.
	s, backlog, reset := p.hub.subscribe(p.hub.eventID(3))
	require.True(t, reset)
	require.Len(t, backlog, 6, "the whole history: 5 alerts and 1 ops")
	p.hub.unsubscribe(s)
	s, backlog, reset = p.hub.subscribe(p.hub.last())
	require.False(t, reset)
	require.Empty(t, backlog)
	p.hub.unsubscribe(s)
	s, _, reset = p.hub.subscribe("an-earlier-process-7")
	require.True(t, reset, "an id of another process starts over")
	p.hub.unsubscribe(s)
}

// TestHistoryBoundedInBytes: big messages leave the history sooner.
func TestHistoryBoundedInBytes(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	big := strings.Repeat("x", maxChannelBytes/4)
	for range 10 {
		require.NoError(t, p.Upload(t.Context(), chat.Channel{ID: "alerts"}, chat.MessageRef{}, chat.File{Name: "out.txt", Content: big}))
	}
	p.hub.mu.Lock()
	defer p.hub.mu.Unlock()
	log := p.hub.channels["alerts"]
	require.LessOrEqual(t, log.bytes, maxChannelBytes)
	require.Len(t, log.order, 3)
}

// TestSlowStreamIsCutAndCatchesUp: a stream that falls behind is cut
// rather than buffered without bound; its page reconnects and catches up.
func TestSlowStreamIsCutAndCatchesUp(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	s, _, _ := p.hub.subscribe("")
	for i := range streamBuffer + 10 {
		_, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: fmt.Sprint(i)})
		require.NoError(t, err)
	}
	select {
	case <-s.cut:
	default:
		t.Fatal("the stream was not cut")
	}
	require.Zero(t, p.hub.streamCount())
	_, backlog, reset := p.hub.subscribe(p.hub.eventID(100))
	require.False(t, reset)
	require.Len(t, backlog, streamBuffer+10-100)
}

// TestStreamOutlivesServerTimeouts: the agent's HTTP server has read and
// write timeouts for ordinary requests (the write timeout would end a
// stream); a stream stays open past them.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	mux := http.NewServeMux()
	mux.Handle(p.HTTPPrefix()+"/", http.StripPrefix(p.HTTPPrefix(), p.HTTPHandler()))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	c := newClient(t, srv, p, bearer(testToken))
	require.NoError(t, c.wait(func() bool { return c.conns == 1 }))
	time.Sleep(700 * time.Millisecond)
	_, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "late"})
	require.NoError(t, err)
	require.NoError(t, c.wait(func() bool { return len(c.msgs) == 1 }))
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Equal(t, 1, c.conns, "the first stream is still open")
}

// TestListenEndsStreams: when Listen returns (the agent stops), live
// streams end, so that the HTTP server can shut down, and new ones are
// refused; commands are refused while Listen does not run.
func TestListenEndsStreams(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	status, answer := c.post("/api/messages", bearer(testToken), postRequest{Channel: "alerts", Text: "too early"})
	require.Equal(t, http.StatusServiceUnavailable, status, answer)
	require.Contains(t, answer, "not taking commands")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.Listen(ctx, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
	}()
	require.Eventually(t, p.ready, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, c.wait(func() bool { return c.conns > 0 }))
	cancel()
	require.NoError(t, <-done)
	require.NoError(t, c.wait(func() bool { return len(c.refused) > 0 }), "the stream ended and a new one was refused")
	c.mu.Lock()
	require.Equal(t, http.StatusServiceUnavailable, c.refused[0])
	c.mu.Unlock()
	require.Zero(t, p.hub.streamCount())
	status, _ = c.post("/api/messages", bearer(testToken), postRequest{Channel: "alerts", Text: "too late"})
	require.Equal(t, http.StatusServiceUnavailable, status)
	_, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "an alert still lands in the history"})
	require.NoError(t, err)
}

// TestTextIsData: message content travels as JSON strings and is put into
// the page as text. The page allows only its own script (CSP), and its
// script never parses content as HTML.
func TestTextIsData(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	xss := `<script>alert(1)</script><img src=x onerror="alert(2)">`
	_, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "pod " + xss, Sections: []chat.Section{{
		Text: xss, Code: xss, Fields: []chat.Field{{Name: xss, Value: xss}},
		Buttons: []chat.Button{{Label: "open", URL: "javascript:alert(3)"}, {Label: "docs", URL: "https://kubernetes.io/docs/"}},
	}}})
	require.NoError(t, err)
	c.sync()
	m := c.messages("alerts")[0]
	require.Equal(t, "pod "+xss, m.Title, "stored as it was sent: the page shows it as text")
	require.Empty(t, m.Sections[0].Buttons[0].URL, "a javascript: link never reaches the page")
	require.Equal(t, "https://kubernetes.io/docs/", m.Sections[0].Buttons[1].URL)

	for _, path := range []string{"/", "/static/app.js", "/static/style.css", "/api/session"} {
		req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
		require.NoError(t, err)
		bearer(testToken)(req)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Equal(t, contentSecurityPolicy, resp.Header.Get("Content-Security-Policy"), path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self';")
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
	}
	script, err := ui.ReadFile("ui/app.js")
	require.NoError(t, err)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		require.NotContains(t, string(script), sink)
	}
	page, err := ui.ReadFile("ui/index.html")
	require.NoError(t, err)
	require.NotContains(t, string(page), "<script>", "no inline script")
	for _, external := range []string{`src="http`, `href="http`, `src="//`, `href="//`} {
		require.NotContains(t, string(page), external, "nothing from elsewhere")
	}
}

// TestFiles: an upload is a message in its thread, its content served
// under the page, to signed-in users only.
func TestFiles(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	srv := serve(t, p)
	c := newClient(t, srv, p, bearer(testToken))
	root, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "kubectl logs"})
	require.NoError(t, err)
	require.NoError(t, p.Upload(t.Context(), chat.Channel{ID: "alerts"}, root, chat.File{Name: `logs "web".txt`, Title: "kubectl logs", Content: "line 1\nline 2\n"}))
	files := c.Files("alerts")
	require.Len(t, files, 1)
	require.Equal(t, "line 1\nline 2\n", files[0].Content)
	require.Equal(t, root.ID, files[0].Thread)
	m := c.messages("alerts")[1]
	require.Equal(t, 14, m.File.Size)
	require.Equal(t, http.StatusUnauthorized, c.get("/"+m.File.URL, nil, nil))
	req, err := http.NewRequest(http.MethodGet, c.base+"/"+m.File.URL, nil)
	require.NoError(t, err)
	bearer(testToken)(req)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="logs \"web\".txt"`, resp.Header.Get("Content-Disposition"))
	require.Equal(t, http.StatusNotFound, c.get("/api/files/"+root.ID, bearer(testToken), nil), "a message is not a file")
	require.ErrorContains(t, p.Upload(t.Context(), chat.Channel{ID: "elsewhere"}, root, chat.File{Name: "x"}), `channel "elsewhere" is not in settings.channels`)
}

// TestHealth: the web chat is healthy while Listen runs.
func TestHealth(t *testing.T) {
	tracker := health.New(0)
	raw, err := config.RawFromYAML("auth: none\nchannels: [alerts]\n")
	require.NoError(t, err)
	pl, err := New("ops", raw, chat.Deps{Health: tracker})
	require.NoError(t, err)
	p := pl.(*platform)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.Listen(ctx, chat.HandlerFunc(func(context.Context, chat.Inbound) chat.Message { return chat.Message{} }))
	}()
	require.Eventually(t, p.ready, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, tracker.Ready())
	cancel()
	require.NoError(t, <-done)
	require.Eventually(t, func() bool { return tracker.Ready() != nil }, 5*time.Second, 5*time.Millisecond)
	require.ErrorContains(t, tracker.Ready(), "platform/ops")
}

func TestPostHonoursContext(t *testing.T) {
	p := newPlatform(t, tokenSettings(t, ""))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Post(ctx, chat.Channel{ID: "alerts"}, chat.Message{Title: "x"})
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, p.hub.last())
}

// newTextLogger logs as text into b, guarded by mu.
func newTextLogger(mu *sync.Mutex, b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, b}, nil))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestPermalinkIntoThePage: with settings.url a message links to the page
// at #<channel>/<id>, which opens it (TestBrowser follows one); without,
// messages have no links.
func TestPermalinkIntoThePage(t *testing.T) {
	p := newPlatform(t, basicSettings(t)+"url: https://kubechat.example.com/chat/web/\n")
	ref, err := p.Post(t.Context(), chat.Channel{ID: "ops"}, chat.Message{Title: "Deployment shop/web is failing"})
	require.NoError(t, err)
	reply, err := p.Post(t.Context(), chat.Channel{ID: "ops"}, chat.Message{Title: "more", Thread: &ref})
	require.NoError(t, err)
	link, err := chat.Permalink(t.Context(), p, chat.ThreadRef(reply))
	require.NoError(t, err)
	require.Equal(t, "https://kubechat.example.com/chat/web/#ops/"+ref.ID, link)
	_, err = chat.Permalink(t.Context(), p, chat.MessageRef{Channel: "elsewhere", ID: ref.ID})
	require.ErrorContains(t, err, `channel "elsewhere" is not in settings.channels`)

	link, err = chat.Permalink(t.Context(), newPlatform(t, basicSettings(t)), ref)
	require.NoError(t, err)
	require.Empty(t, link, "without settings.url the agent does not know the page's address")

	raw, err := config.RawFromYAML(basicSettings(t) + "url: ftp://x\n")
	require.NoError(t, err)
	_, err = New("web", raw, chat.Deps{})
	require.ErrorContains(t, err, "settings.url")
}
