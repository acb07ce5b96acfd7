package teamstest

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// adaptiveCard is an attachments array with one Adaptive Card, as the bot posts it.
const adaptiveCard = `[{"contentType":"application/vnd.microsoft.card.adaptive","content":{` +
	`"type":"AdaptiveCard","version":"1.4","body":[{"type":"TextBlock","text":"CrashLoopBackOff"}],` +
	`"actions":[{"type":"Action.Execute","title":"Acknowledge","verb":"ack","data":{"alert":"a1"}}]}}]`

// newServer starts a Server that the test closes when it ends.
func newServer(t *testing.T) *Server {
	t.Helper()
	srv := New()
	t.Cleanup(srv.Close)
	return srv
}

// waitCtx returns a context for one wait of the test.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// do sends a request and returns the response's status, header and body.
func do(t *testing.T, method, target string, body io.Reader, header http.Header) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(waitCtx(t), method, target, body)
	require.NoError(t, err)
	for key, values := range header {
		req.Header[key] = values
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, data
}

// getJSON fetches a URL and decodes its JSON body into v.
func getJSON(t *testing.T, target string, v any) {
	t.Helper()
	status, header, body := do(t, http.MethodGet, target, nil, nil)
	require.Equal(t, http.StatusOK, status, string(body))
	require.Contains(t, header.Get("Content-Type"), "application/json")
	require.NoError(t, json.Unmarshal(body, v))
}

// requestToken posts a client credentials request to the token endpoint.
func requestToken(t *testing.T, srv *Server, form url.Values) (int, map[string]any) {
	t.Helper()
	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	status, _, body := do(t, http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()), header)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(body, &fields), string(body))
	return status, fields
}

// credentials returns the form of a correct token request.
func credentials() url.Values {
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {AppID},
		"client_secret": {AppPassword},
		"scope":         {"https://api.botframework.com/.default"},
	}
}

// accessToken gets a Bot Connector access token from the token endpoint.
func accessToken(t *testing.T, srv *Server) string {
	t.Helper()
	status, fields := requestToken(t, srv, credentials())
	require.Equal(t, http.StatusOK, status, fields)
	token, _ := fields["access_token"].(string)
	require.NotEmpty(t, token)
	return token
}

// connector calls the Connector REST API at path, relative to ServiceURL,
// with a JSON body (a string is sent as is) and the access token ("" for none).
func connector(t *testing.T, srv *Server, token, method, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		reader = strings.NewReader(string(data))
	}
	header := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	return do(t, method, srv.ServiceURL()+path, reader, header)
}

// decodeObject decodes a JSON object response.
func decodeObject(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var fields map[string]any
	require.NoError(t, json.Unmarshal(body, &fields), string(body))
	return fields
}

// errorCode returns the code of a Bot Connector error response.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var resp struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &resp), string(body))
	require.NotEmpty(t, resp.Error.Message, string(body))
	return resp.Error.Code
}

// textMessage returns a message activity with the text.
func textMessage(text string) map[string]any {
	return map[string]any{"type": "message", "text": text}
}

// createPost makes a new top-level post in the channel with v3/conversations
// and returns the conversation id and activity id it answered.
func createPost(t *testing.T, srv *Server, token, channelID string, activity map[string]any) (conversation, activityID string) {
	t.Helper()
	status, _, body := connector(t, srv, token, http.MethodPost, "v3/conversations", map[string]any{
		"isGroup": true,
		"channelData": map[string]any{
			"channel": map[string]any{"id": channelID},
			"tenant":  map[string]any{"id": TenantID},
		},
		"activity": activity,
	})
	require.Equal(t, http.StatusCreated, status, string(body))
	var resp struct {
		ID         string `json:"id"`
		ActivityID string `json:"activityId"`
	}
	require.NoError(t, json.Unmarshal(body, &resp))
	require.Equal(t, channelID+";messageid="+resp.ActivityID, resp.ID)
	return resp.ID, resp.ActivityID
}

// fetchKeys follows the OpenID metadata to the JWKS, as a bot does, and
// returns the RS256 signing keys endorsed for msteams, by kid.
func fetchKeys(t *testing.T, srv *Server) map[string]*rsa.PublicKey {
	t.Helper()
	var meta struct {
		Issuer   string   `json:"issuer"`
		JWKSURI  string   `json:"jwks_uri"`
		IDAlgs   []string `json:"id_token_signing_alg_values_supported"`
		AuthAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	getJSON(t, srv.OpenIDURL(), &meta)
	require.Equal(t, Issuer, meta.Issuer)
	require.Equal(t, srv.JWKSURL(), meta.JWKSURI)
	require.Equal(t, []string{"RS256"}, meta.IDAlgs)
	require.Equal(t, []string{"RS256"}, meta.AuthAlgs)

	var set struct {
		Keys []struct {
			Kty          string   `json:"kty"`
			Use          string   `json:"use"`
			Kid          string   `json:"kid"`
			N            string   `json:"n"`
			E            string   `json:"e"`
			Alg          string   `json:"alg"`
			Endorsements []string `json:"endorsements"`
		} `json:"keys"`
	}
	getJSON(t, meta.JWKSURI, &set)
	keys := make(map[string]*rsa.PublicKey)
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Use != "sig" || k.Alg != "RS256" || !slices.Contains(k.Endorsements, "msteams") {
			continue
		}
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		require.NoError(t, err)
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		require.NoError(t, err)
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	require.Len(t, keys, 1)
	require.Contains(t, keys, "fake-key-1")
	return keys
}

// validate checks an inbound token as a bot must: RS256, signed by a key of
// the JWKS found by kid, issuer, audience and expiry.
func validate(token string, keys map[string]*rsa.PublicKey) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		key, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("key %q is not in the JWKS", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(AppID),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Minute),
	)
	if err != nil {
		return nil, fmt.Errorf("validate token: %w", err)
	}
	return claims, nil
}

// inbound is the part of an inbound activity the tests check.
type inbound struct {
	Type       string    `json:"type"`
	Name       string    `json:"name"`
	ID         string    `json:"id"`
	Timestamp  time.Time `json:"timestamp"`
	ServiceURL string    `json:"serviceUrl"`
	ChannelID  string    `json:"channelId"`
	From       struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		AADObjectID string `json:"aadObjectId"`
	} `json:"from"`
	Conversation struct {
		ID               string `json:"id"`
		ConversationType string `json:"conversationType"`
		IsGroup          bool   `json:"isGroup"`
		TenantID         string `json:"tenantId"`
	} `json:"conversation"`
	Recipient struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"recipient"`
	Text     string `json:"text"`
	Entities []struct {
		Type      string `json:"type"`
		Text      string `json:"text"`
		Mentioned struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"mentioned"`
	} `json:"entities"`
	ChannelData struct {
		TeamsChannelID string `json:"teamsChannelId"`
		TeamsTeamID    string `json:"teamsTeamId"`
		Channel        struct {
			ID string `json:"id"`
		} `json:"channel"`
		Team struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"team"`
		Tenant struct {
			ID string `json:"id"`
		} `json:"tenant"`
		EventType string `json:"eventType"`
	} `json:"channelData"`
	ReplyToID string `json:"replyToId"`
	Value     struct {
		Action struct {
			Type string         `json:"type"`
			Verb string         `json:"verb"`
			Data map[string]any `json:"data"`
		} `json:"action"`
		Trigger string `json:"trigger"`
	} `json:"value"`
	MembersAdded []struct {
		ID string `json:"id"`
	} `json:"membersAdded"`
	Locale string `json:"locale"`
}

// invokeResponse is what the test bot answers invokes with.
const invokeResponse = `{"statusCode":200,"type":"application/vnd.microsoft.activity.message","value":"Acknowledged"}`

// bot is a bot endpoint that authenticates activities as a real bot must
// and keeps the ones it accepts.
type bot struct {
	keys map[string]*rsa.PublicKey

	mu       sync.Mutex
	accepted []inbound
	rejected []error
}

// startBot starts a bot endpoint and points srv at it.
func startBot(t *testing.T, srv *Server) *bot {
	t.Helper()
	b := &bot{keys: fetchKeys(t, srv)}
	endpoint := httptest.NewServer(b)
	t.Cleanup(endpoint.Close)
	srv.SetBotEndpoint(endpoint.URL + "/teams/ops-teams/api/messages")
	return b
}

// ServeHTTP authenticates and keeps one activity. It answers 401 when the
// token is bad or its serviceurl claim is not the activity's serviceUrl.
func (b *bot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var act inbound
	if err := json.Unmarshal(body, &act); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims, err := validate(token, b.keys)
	switch {
	case !ok:
		err = errors.New("no bearer token")
	case err == nil && claims["serviceurl"] != act.ServiceURL:
		err = fmt.Errorf("serviceurl claim %v is not the activity's %s", claims["serviceurl"], act.ServiceURL)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.rejected = append(b.rejected, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	b.accepted = append(b.accepted, act)
	if act.Type == "invoke" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, invokeResponse)
	}
}

// last returns the activity the bot accepted last.
func (b *bot) last(t *testing.T) inbound {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.NotEmpty(t, b.accepted, "the bot accepted no activity; rejected: %v", b.rejected)
	return b.accepted[len(b.accepted)-1]
}

// requireTeamsShape checks the fields every inbound Teams channel activity has.
func requireTeamsShape(t *testing.T, srv *Server, act inbound, channelID, userID string) {
	t.Helper()
	require.NotEmpty(t, act.ID)
	require.WithinDuration(t, time.Now(), act.Timestamp, time.Minute)
	require.Equal(t, srv.ServiceURL(), act.ServiceURL)
	require.Equal(t, "msteams", act.ChannelID)
	require.Equal(t, "29:"+userID, act.From.ID)
	require.Equal(t, "User "+userID, act.From.Name)
	require.NotEmpty(t, act.From.AADObjectID)
	require.Equal(t, "channel", act.Conversation.ConversationType)
	require.True(t, act.Conversation.IsGroup)
	require.Equal(t, TenantID, act.Conversation.TenantID)
	require.Equal(t, "28:"+AppID, act.Recipient.ID)
	require.Equal(t, BotName, act.Recipient.Name)
	require.Equal(t, channelID, act.ChannelData.TeamsChannelID)
	require.Equal(t, srv.TeamID(), act.ChannelData.TeamsTeamID)
	require.Equal(t, channelID, act.ChannelData.Channel.ID)
	require.Equal(t, srv.TeamID(), act.ChannelData.Team.ID)
	require.Equal(t, TenantID, act.ChannelData.Tenant.ID)
	require.Equal(t, "en-US", act.Locale)
}

func TestChannels(t *testing.T) {
	srv := newServer(t)
	alerts := srv.ChannelID("alerts")
	require.Equal(t, "19:alerts0000@thread.tacv2", alerts)
	require.Equal(t, srv.TeamID(), srv.ChannelID("General"), "the General channel's id is the team id")
	require.Empty(t, srv.ChannelID("nope"))

	deploys := srv.AddChannel("Deploys")
	require.Regexp(t, `^19:deploys\d{4}@thread\.tacv2$`, deploys)
	require.Equal(t, deploys, srv.AddChannel("Deploys"), "adding a name twice returns the same channel")
	require.Equal(t, deploys, srv.ChannelID("Deploys"))
	require.Empty(t, srv.AddChannel(""))

	token := accessToken(t, srv)
	status, _, body := connector(t, srv, token, http.MethodGet, "v3/teams/"+url.PathEscape(srv.TeamID())+"/conversations", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	require.JSONEq(t, fmt.Sprintf(`{"conversations":[{"id":%q,"name":"alerts"},{"id":%q},{"id":%q,"name":"Deploys"}]}`,
		alerts, srv.TeamID(), deploys), string(body))

	status, _, body = connector(t, srv, token, http.MethodGet, "v3/teams/"+url.QueryEscape(srv.TeamID()), nil)
	require.Equal(t, http.StatusOK, status, string(body))
	require.Equal(t, "Platform", decodeObject(t, body)["name"])
}

func TestInboundTokensValidateAgainstOpenIDMetadata(t *testing.T) {
	srv := newServer(t)
	keys := fetchKeys(t, srv)
	serviceURL := srv.ServiceURL()

	claims, err := validate(srv.Token(serviceURL), keys)
	require.NoError(t, err)
	require.Equal(t, serviceURL, claims["serviceurl"])
	require.Equal(t, AppID, claims["aud"], "aud is a plain string, as in Bot Framework tokens")
	nbf, err := claims.GetNotBefore()
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(-time.Minute), nbf.Time, 5*time.Second)
	exp, err := claims.GetExpirationTime()
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Hour), exp.Time, 5*time.Second)

	parsed, _, err := jwt.NewParser().ParseUnverified(srv.Token(serviceURL), jwt.MapClaims{})
	require.NoError(t, err)
	require.Equal(t, "RS256", parsed.Header["alg"])
	require.Equal(t, "fake-key-1", parsed.Header["kid"])

	_, err = validate(srv.TokenWith(serviceURL, WithUnknownKey()), keys)
	require.ErrorIs(t, err, jwt.ErrTokenUnverifiable)
	require.ErrorContains(t, err, `"unknown-key" is not in the JWKS`)

	_, err = validate(srv.TokenWith(serviceURL, WithExpiry(time.Now().Add(-time.Hour))), keys)
	require.ErrorIs(t, err, jwt.ErrTokenExpired)

	_, err = validate(srv.TokenWith(serviceURL, WithAudience("someone-else")), keys)
	require.ErrorIs(t, err, jwt.ErrTokenInvalidAudience)

	_, err = validate(srv.TokenWith(serviceURL, WithIssuer("https://sts.windows.net/evil/")), keys)
	require.ErrorIs(t, err, jwt.ErrTokenInvalidIssuer)

	claims, err = validate(srv.TokenWith(serviceURL, WithServiceURL("https://evil.example/")), keys)
	require.NoError(t, err, "only the serviceurl claim differs; the bot must compare it")
	require.Equal(t, "https://evil.example/", claims["serviceurl"])

	other := New()
	defer other.Close()
	_, err = validate(other.Token(serviceURL), keys)
	require.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid, "each server has its own key")
}

func TestTokenEndpoint(t *testing.T) {
	srv := newServer(t)

	status, fields := requestToken(t, srv, credentials())
	require.Equal(t, http.StatusOK, status, fields)
	require.Equal(t, "Bearer", fields["token_type"])
	require.EqualValues(t, 3600, fields["expires_in"])
	require.EqualValues(t, 3600, fields["ext_expires_in"])
	require.NotEmpty(t, fields["access_token"])
	require.Equal(t, 1, srv.TokenRequests())

	refused := []struct {
		name   string
		change func(url.Values)
		status int
		code   string
	}{
		{"wrong secret", func(f url.Values) { f.Set("client_secret", "guess") }, http.StatusUnauthorized, "invalid_client"},
		{"wrong client", func(f url.Values) { f.Set("client_id", "someone-else") }, http.StatusUnauthorized, "invalid_client"},
		{"no secret", func(f url.Values) { f.Del("client_secret") }, http.StatusBadRequest, "invalid_request"},
		{"no grant", func(f url.Values) { f.Del("grant_type") }, http.StatusBadRequest, "invalid_request"},
		{"no scope", func(f url.Values) { f.Del("scope") }, http.StatusBadRequest, "invalid_request"},
		{"other grant", func(f url.Values) { f.Set("grant_type", "password") }, http.StatusBadRequest, "unsupported_grant_type"},
		{"other scope", func(f url.Values) { f.Set("scope", "https://graph.microsoft.com/.default") }, http.StatusBadRequest, "invalid_scope"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			form := credentials()
			tc.change(form)
			status, fields := requestToken(t, srv, form)
			require.Equal(t, tc.status, status, fields)
			require.Equal(t, tc.code, fields["error"])
			require.NotContains(t, fields, "access_token")
		})
	}
	require.Equal(t, 1, srv.TokenRequests(), "refused requests issue no token")

	// client_secret_basic works too, at the single-tenant path as well.
	form := credentials()
	form.Del("client_id")
	form.Del("client_secret")
	req, err := http.NewRequestWithContext(waitCtx(t), http.MethodPost,
		strings.Replace(srv.TokenURL(), "botframework.com", TenantID, 1), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(AppID, AppPassword)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 2, srv.TokenRequests())

	status, _, _ = do(t, http.MethodGet, srv.TokenURL(), nil, nil)
	require.Equal(t, http.StatusMethodNotAllowed, status)
}

func TestConnectorPostsRepliesAndUpdates(t *testing.T) {
	srv := newServer(t)
	token := accessToken(t, srv)
	alerts := srv.ChannelID("alerts")

	// A new top-level post, the root of a thread.
	thread, rootID := createPost(t, srv, token, alerts, textMessage("Pod api-0 is crashlooping"))

	// A reply in the thread through its conversation id, fully escaped.
	status, _, body := connector(t, srv, token, http.MethodPost,
		"v3/conversations/"+url.QueryEscape(thread)+"/activities", textMessage("logs attached"))
	require.Equal(t, http.StatusCreated, status, string(body))
	reply1 := decodeObject(t, body)["id"].(string)

	// A reply to an activity, with the conversation id not escaped at all;
	// replying to a reply lands in the same thread.
	status, _, body = connector(t, srv, token, http.MethodPost,
		"v3/conversations/"+alerts+"/activities/"+reply1, textMessage("resolved"))
	require.Equal(t, http.StatusCreated, status, string(body))
	reply2 := decodeObject(t, body)["id"].(string)

	// A plain channel id makes another top-level post.
	status, _, body = connector(t, srv, token, http.MethodPost,
		"v3/conversations/"+url.PathEscape(alerts)+"/activities",
		map[string]any{"type": "message", "text": "", "attachments": json.RawMessage(adaptiveCard)})
	require.Equal(t, http.StatusCreated, status, string(body))
	cardID := decodeObject(t, body)["id"].(string)

	acts := srv.Activities(alerts)
	require.Len(t, acts, 4)
	bot := "28:" + AppID
	require.Equal(t, Activity{ID: rootID, Conversation: alerts, Channel: alerts, From: bot, Text: "Pod api-0 is crashlooping"}, acts[0])
	require.Equal(t, Activity{ID: reply1, Conversation: thread, Channel: alerts, ThreadRoot: rootID, From: bot, Text: "logs attached"}, acts[1])
	require.Equal(t, Activity{ID: reply2, Conversation: thread, Channel: alerts, ThreadRoot: rootID, ReplyToID: reply1, From: bot, Text: "resolved"}, acts[2])
	require.Equal(t, cardID, acts[3].ID)
	require.Empty(t, acts[3].ThreadRoot)
	require.JSONEq(t, adaptiveCard, string(acts[3].Attachments))
	require.Less(t, rootID, reply1, "ids increase")

	// An update replaces text and attachments.
	status, _, body = connector(t, srv, token, http.MethodPut,
		"v3/conversations/"+url.QueryEscape(thread)+"/activities/"+rootID,
		map[string]any{"type": "message", "text": "Pod api-0 recovered", "attachments": json.RawMessage(adaptiveCard)})
	require.Equal(t, http.StatusOK, status, string(body))
	require.Equal(t, rootID, decodeObject(t, body)["id"])
	updated := srv.Activities(alerts)[0]
	require.Equal(t, "Pod api-0 recovered", updated.Text)
	require.JSONEq(t, adaptiveCard, string(updated.Attachments))
	require.Equal(t, 1, updated.Edits)

	require.Empty(t, srv.Activities(srv.ChannelID("General")))
}

func TestConnectorErrors(t *testing.T) {
	srv := newServer(t)
	token := accessToken(t, srv)
	alerts := srv.ChannelID("alerts")
	_, rootID := createPost(t, srv, token, alerts, textMessage("root"))
	unknownThread := url.QueryEscape(alerts + ";messageid=1")

	cases := []struct {
		name   string
		token  string
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"no token", "", http.MethodPost, "v3/conversations/" + alerts + "/activities", textMessage("x"), http.StatusUnauthorized, "Unauthorized"},
		{"unknown token", "not-issued", http.MethodPost, "v3/conversations/" + alerts + "/activities", textMessage("x"), http.StatusUnauthorized, "Unauthorized"},
		{"unknown channel", token, http.MethodPost, "v3/conversations/19:nope@thread.tacv2/activities", textMessage("x"), http.StatusNotFound, "ConversationNotFound"},
		{"unknown thread", token, http.MethodPost, "v3/conversations/" + unknownThread + "/activities", textMessage("x"), http.StatusNotFound, "ConversationNotFound"},
		{"create in unknown channel", token, http.MethodPost, "v3/conversations",
			map[string]any{"isGroup": true, "channelData": map[string]any{"channel": map[string]any{"id": "19:nope@thread.tacv2"}}, "activity": textMessage("x")},
			http.StatusNotFound, "ConversationNotFound"},
		{"update unknown activity", token, http.MethodPut, "v3/conversations/" + alerts + "/activities/42", textMessage("x"), http.StatusNotFound, "NotFound"},
		{"reply to unknown activity", token, http.MethodPost, "v3/conversations/" + alerts + "/activities/42", textMessage("x"), http.StatusNotFound, "NotFound"},
		{"malformed JSON", token, http.MethodPost, "v3/conversations/" + alerts + "/activities", `{"type":`, http.StatusBadRequest, "BadArgument"},
		{"malformed update", token, http.MethodPut, "v3/conversations/" + alerts + "/activities/" + rootID, `[`, http.StatusBadRequest, "BadArgument"},
		{"no type", token, http.MethodPost, "v3/conversations/" + alerts + "/activities", `{"text":"x"}`, http.StatusBadRequest, "BadArgument"},
		{"empty message", token, http.MethodPost, "v3/conversations/" + alerts + "/activities", textMessage(""), http.StatusBadRequest, "BadArgument"},
		{"bad card", token, http.MethodPost, "v3/conversations/" + alerts + "/activities",
			`{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":"nope"}]}`,
			http.StatusBadRequest, "BadArgument"},
		{"unknown resource", token, http.MethodGet, "v3/bots", nil, http.StatusNotFound, "NotFound"},
		{"wrong method", token, http.MethodDelete, "v3/conversations", nil, http.StatusMethodNotAllowed, "MethodNotAllowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := connector(t, srv, tc.token, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, status, string(body))
			require.Equal(t, tc.code, errorCode(t, body))
		})
	}
	require.Len(t, srv.Activities(alerts), 1, "failed calls post nothing")
	require.Equal(t, 1+len(cases), srv.Calls())

	// Users' messages cannot be updated by the bot.
	b := startBot(t, srv)
	userMsg, _, err := srv.Mention(alerts, "alice", "hi")
	require.NoError(t, err)
	b.last(t)
	status, _, body := connector(t, srv, token, http.MethodPut, "v3/conversations/"+alerts+"/activities/"+userMsg, textMessage("x"))
	require.Equal(t, http.StatusForbidden, status, string(body))
	require.Equal(t, "Forbidden", errorCode(t, body))
}

func TestFailNextAndSetDown(t *testing.T) {
	srv := newServer(t)
	token := accessToken(t, srv)
	path := "v3/conversations/" + srv.ChannelID("alerts") + "/activities"

	srv.FailNext(2, http.StatusTooManyRequests, 1500*time.Millisecond)
	for range 2 {
		status, header, body := connector(t, srv, token, http.MethodPost, path, textMessage("x"))
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "2", header.Get("Retry-After"), "rounded up to whole seconds")
		require.Equal(t, "Throttled", errorCode(t, body))
	}
	status, _, _ := connector(t, srv, token, http.MethodPost, path, textMessage("x"))
	require.Equal(t, http.StatusCreated, status)

	srv.FailNext(1, http.StatusTooManyRequests, 10*time.Millisecond)
	status, header, _ := connector(t, srv, token, http.MethodPost, path, textMessage("x"))
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "1", header.Get("Retry-After"))

	srv.FailNext(1, http.StatusBadGateway, 0)
	status, header, body := connector(t, srv, token, http.MethodPost, path, textMessage("x"))
	require.Equal(t, http.StatusBadGateway, status)
	require.Empty(t, header.Get("Retry-After"))
	require.Equal(t, "ServiceError", errorCode(t, body))

	srv.FailNext(5, http.StatusInternalServerError, 0)
	srv.FailNext(0, 0, 0)
	status, _, _ = connector(t, srv, token, http.MethodPost, path, textMessage("x"))
	require.Equal(t, http.StatusCreated, status, "FailNext(0, ...) cancels pending failures")

	srv.SetDown(true)
	status, _, body = connector(t, srv, token, http.MethodPost, path, textMessage("x"))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "ServiceUnavailable", errorCode(t, body))
	status, _ = requestToken(t, srv, credentials())
	require.Equal(t, http.StatusOK, status, "the token endpoint stays up")
	srv.SetDown(false)
	status, _, _ = connector(t, srv, token, http.MethodPost, path, textMessage("x"))
	require.Equal(t, http.StatusCreated, status)

	require.Equal(t, 8, srv.Calls())
	require.Len(t, srv.Activities(srv.ChannelID("alerts")), 3)
}

func TestMention(t *testing.T) {
	srv := newServer(t)
	b := startBot(t, srv)
	alerts := srv.ChannelID("alerts")

	id, status, err := srv.Mention(alerts, "alice", "get pods -n shop")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	act := b.last(t)
	requireTeamsShape(t, srv, act, alerts, "alice")
	require.Equal(t, "message", act.Type)
	require.Equal(t, id, act.ID)
	require.Equal(t, alerts+";messageid="+id, act.Conversation.ID, "a new thread's conversation")
	require.Equal(t, "<at>kubechat</at> get pods -n shop", act.Text)
	require.NotEmpty(t, act.Entities)
	mention := act.Entities[0]
	require.Equal(t, "mention", mention.Type)
	require.Equal(t, "<at>kubechat</at>", mention.Text)
	require.Equal(t, "28:"+AppID, mention.Mentioned.ID)
	require.Equal(t, BotName, mention.Mentioned.Name)
	require.Empty(t, act.ReplyToID)

	acts, err := srv.WaitActivities(waitCtx(t), alerts, 1)
	require.NoError(t, err)
	require.Equal(t, []Activity{{
		ID: id, Conversation: alerts, Channel: alerts, From: "29:alice", Text: "<at>kubechat</at> get pods -n shop",
	}}, acts)

	// The bot answers in the mention's thread.
	token := accessToken(t, srv)
	status, _, body := connector(t, srv, token, http.MethodPost,
		"v3/conversations/"+url.QueryEscape(act.Conversation.ID)+"/activities/"+act.ID, textMessage("3 pods"))
	require.Equal(t, http.StatusCreated, status, string(body))
	acts = srv.Activities(alerts)
	require.Len(t, acts, 2)
	require.Equal(t, id, acts[1].ThreadRoot)

	_, _, err = srv.Mention("19:nope@thread.tacv2", "alice", "x")
	require.ErrorIs(t, err, errUnknownChan)
	require.Len(t, srv.Activities(alerts), 2)
}

func TestInstall(t *testing.T) {
	srv := newServer(t)
	b := startBot(t, srv)

	status, err := srv.Install()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	act := b.last(t)
	requireTeamsShape(t, srv, act, srv.TeamID(), "installer")
	require.Equal(t, "conversationUpdate", act.Type)
	require.Equal(t, srv.TeamID(), act.Conversation.ID, "the General channel")
	require.Equal(t, "teamMemberAdded", act.ChannelData.EventType)
	require.Equal(t, "Platform", act.ChannelData.Team.Name)
	require.Len(t, act.MembersAdded, 1)
	require.Equal(t, "28:"+AppID, act.MembersAdded[0].ID)
}

func TestExecute(t *testing.T) {
	srv := newServer(t)
	b := startBot(t, srv)
	token := accessToken(t, srv)
	alerts := srv.ChannelID("alerts")
	card := map[string]any{"type": "message", "attachments": json.RawMessage(adaptiveCard)}

	// A card posted as a new thread.
	thread, cardID := createPost(t, srv, token, alerts, card)
	status, body, err := srv.Execute(alerts, cardID, "bob", "ack", map[string]any{"alert": "a1"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, invokeResponse, string(body))

	act := b.last(t)
	requireTeamsShape(t, srv, act, alerts, "bob")
	require.Equal(t, "invoke", act.Type)
	require.Equal(t, "adaptiveCard/action", act.Name)
	require.Equal(t, cardID, act.ReplyToID)
	require.Equal(t, thread, act.Conversation.ID)
	require.Equal(t, "Action.Execute", act.Value.Action.Type)
	require.Equal(t, "ack", act.Value.Action.Verb)
	require.Equal(t, map[string]any{"alert": "a1"}, act.Value.Action.Data)
	require.Equal(t, "manual", act.Value.Trigger)

	// A card posted as a reply: the conversation is its thread's.
	status, _, respBody := connector(t, srv, token, http.MethodPost, "v3/conversations/"+url.QueryEscape(thread)+"/activities", card)
	require.Equal(t, http.StatusCreated, status, string(respBody))
	replyCard := decodeObject(t, respBody)["id"].(string)
	status, _, err = srv.Execute(alerts, replyCard, "bob", "silence", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	act = b.last(t)
	require.Equal(t, thread, act.Conversation.ID)
	require.Equal(t, replyCard, act.ReplyToID)
	require.Nil(t, act.Value.Action.Data)

	_, _, err = srv.Execute(alerts, "42", "bob", "ack", nil)
	require.ErrorIs(t, err, errUnknownAct)
	_, _, err = srv.Execute(alerts, cardID, "bob", "ack", map[string]any{"bad": func() {}})
	require.Error(t, err, "data that is not JSON is an error, not a panic")
}

func TestPostWithBadTokens(t *testing.T) {
	srv := newServer(t)
	b := startBot(t, srv)
	activity, err := json.Marshal(map[string]any{"type": "message", "id": "1", "serviceUrl": srv.ServiceURL(), "text": "hi"})
	require.NoError(t, err)
	serviceURL := srv.ServiceURL()

	cases := []struct {
		name          string
		authorization string
		status        int
	}{
		{"valid", "Bearer " + srv.Token(serviceURL), http.StatusOK},
		{"no header", "", http.StatusUnauthorized},
		{"unknown key", "Bearer " + srv.TokenWith(serviceURL, WithUnknownKey()), http.StatusUnauthorized},
		{"expired", "Bearer " + srv.TokenWith(serviceURL, WithExpiry(time.Now().Add(-2*time.Hour))), http.StatusUnauthorized},
		{"other audience", "Bearer " + srv.TokenWith(serviceURL, WithAudience("other-bot")), http.StatusUnauthorized},
		{"other issuer", "Bearer " + srv.TokenWith(serviceURL, WithIssuer("https://evil.example")), http.StatusUnauthorized},
		{"other service URL", "Bearer " + srv.TokenWith(serviceURL, WithServiceURL("https://evil.example/")), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, err := srv.Post(activity, tc.authorization)
			require.NoError(t, err)
			require.Equal(t, tc.status, status)
		})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Len(t, b.accepted, 1)
	require.Len(t, b.rejected, len(cases)-1)
}

func TestWaitActivities(t *testing.T) {
	srv := newServer(t)
	token := accessToken(t, srv)
	alerts := srv.ChannelID("alerts")

	done := make(chan error, 1)
	go func() {
		_, err := srv.WaitActivities(waitCtx(t), alerts, 2)
		done <- err
	}()
	createPost(t, srv, token, alerts, textMessage("one"))
	createPost(t, srv, token, alerts, textMessage("two"))
	require.NoError(t, <-done)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	acts, err := srv.WaitActivities(ctx, alerts, 3)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, acts, 2)
}

func TestInboundNeedsEndpointAndOpenServer(t *testing.T) {
	srv := New()
	_, _, err := srv.Mention(srv.ChannelID("alerts"), "alice", "hi")
	require.ErrorIs(t, err, errNoEndpoint)
	require.Empty(t, srv.Activities(srv.ChannelID("alerts")), "a failed mention posts nothing")
	_, err = srv.Install()
	require.ErrorIs(t, err, errNoEndpoint)

	srv.SetBotEndpoint("http://127.0.0.1:1/api/messages")
	srv.Close()
	srv.Close()
	_, _, err = srv.Mention(srv.ChannelID("alerts"), "alice", "hi")
	require.ErrorIs(t, err, errClosed)
	_, err = srv.WaitActivities(t.Context(), srv.ChannelID("alerts"), 1)
	require.ErrorIs(t, err, errClosed)
}

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t)
	b := startBot(t, srv)
	token := accessToken(t, srv)
	alerts := srv.ChannelID("alerts")

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			// Not connector: require must not stop the test from another goroutine.
			body := strings.NewReader(fmt.Sprintf(`{"type":"message","text":"post %d"}`, i))
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.ServiceURL()+"v3/conversations/"+alerts+"/activities", body)
			if err != nil {
				t.Errorf("post %d: %v", i, err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("post %d: %v", i, err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("post %d: status %d", i, resp.StatusCode)
			}
		})
		wg.Go(func() {
			if _, status, err := srv.Mention(alerts, fmt.Sprint("user", i), "hi"); err != nil || status != http.StatusOK {
				t.Errorf("mention %d: status %d, %v", i, status, err)
			}
		})
	}
	wg.Wait()
	acts, err := srv.WaitActivities(waitCtx(t), alerts, 16)
	require.NoError(t, err)
	require.Len(t, acts, 16)
	seen := make(map[string]bool)
	for _, a := range acts {
		require.False(t, seen[a.ID], "duplicate id %s", a.ID)
		seen[a.ID] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Len(t, b.accepted, 8)
}
