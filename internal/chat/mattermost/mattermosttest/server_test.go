package mattermosttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost/server/public/model"
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

// newClient returns a Client4 of the bot.
func newClient(srv *Server) *model.Client4 {
	client := model.NewAPIv4Client(srv.URL())
	client.SetToken(Token)
	return client
}

// waitCtx returns a context for one wait of the test.
func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// asAppError returns err as a *model.AppError, failing the test if it is not one.
func asAppError(t *testing.T, err error) *model.AppError {
	t.Helper()
	var appErr *model.AppError
	require.ErrorAs(t, err, &appErr)
	return appErr
}

// startWebSocket connects the real websocket client, starts its Listen
// loop and returns it once the server said hello.
func startWebSocket(t *testing.T, srv *Server) *model.WebSocketClient {
	t.Helper()
	ws, err := model.NewWebSocketClient4(srv.WebSocketURL(), Token)
	require.NoError(t, err)
	ws.Listen()
	t.Cleanup(ws.Close)
	hello := nextEvent(t, ws, model.WebsocketEventHello)
	require.Equal(t, int64(0), hello.GetSequence())
	return ws
}

// nextEvent returns the client's next event of the wanted type, skipping others.
func nextEvent(t *testing.T, ws *model.WebSocketClient, want model.WebsocketEventType) *model.WebSocketEvent {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-ws.EventChannel:
			if !ok {
				t.Fatalf("event channel closed while waiting for %s: %v", want, ws.ListenError)
			}
			if ev.EventType() == want {
				return ev
			}
			t.Logf("skipping websocket event %s", ev.EventType())
		case <-timeout:
			t.Fatalf("no %s event within %s", want, waitTimeout)
		}
	}
}

// eventPost decodes the post of a posted or post_edited event, as
// model.PostFromJson used to.
func eventPost(t *testing.T, ev *model.WebSocketEvent) *model.Post {
	t.Helper()
	data, ok := ev.GetData()["post"].(string)
	require.True(t, ok, "post is a JSON string: %#v", ev.GetData()["post"])
	var p model.Post
	require.NoError(t, json.Unmarshal([]byte(data), &p))
	return &p
}

// dialRaw opens a bare gorilla websocket to the server.
func dialRaw(t *testing.T, srv *Server, header http.Header) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(srv.WebSocketURL()+"/api/v4/websocket", header)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	t.Cleanup(func() { _ = ws.Close() })
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitTimeout)))
	return ws
}

// readRaw reads the next JSON message of a bare websocket.
func readRaw(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	var msg map[string]any
	require.NoError(t, ws.ReadJSON(&msg))
	return msg
}

// alertPost returns a post with an attachment holding a button and a menu
// whose integration is url.
func alertPost(channelID, url string) *model.Post {
	p := &model.Post{ChannelId: channelID, Message: "pod crashlooping"}
	p.AddProp("from_bot", "true")
	p.AddProp("attachments", []*model.MessageAttachment{{
		Text: "default/web",
		Actions: []*model.PostAction{
			{
				Id: "ack", Type: model.PostActionTypeButton, Name: "Acknowledge",
				Integration: &model.PostActionIntegration{URL: url, Context: map[string]any{"alert": "a1", "count": 12345678901234}},
			},
			{
				Id: "silence", Type: model.PostActionTypeSelect, Name: "Silence for",
				Options:     []*model.PostActionOptions{{Text: "1h", Value: "1h"}, {Text: "1d", Value: "1d"}},
				Integration: &model.PostActionIntegration{URL: url},
			},
			{Id: "noop", Type: model.PostActionTypeButton, Name: "No integration"},
		},
	}})
	return p
}

// integration is an httptest server playing the bot's action endpoint.
type integration struct {
	*httptest.Server
	requests chan *http.Request
	bodies   chan model.PostActionIntegrationRequest
	status   atomic.Int32
	answer   atomic.Value // []byte
}

// newIntegration starts an integration that records the requests and
// answers with status and answer.
func newIntegration(t *testing.T) *integration {
	t.Helper()
	in := &integration{requests: make(chan *http.Request, 10), bodies: make(chan model.PostActionIntegrationRequest, 10)}
	in.status.Store(http.StatusOK)
	in.answer.Store([]byte(`{}`))
	in.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req model.PostActionIntegrationRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in.requests <- r
		in.bodies <- req
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(in.status.Load()))
		_, _ = w.Write(in.answer.Load().([]byte))
	}))
	t.Cleanup(in.Close)
	return in
}

func TestUsersTeamsAndChannels(t *testing.T) {
	srv := newServer(t)
	client := newClient(srv)
	ctx := waitCtx(t)

	me, resp, err := client.GetMe(ctx, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, serverVersion, resp.ServerVersion)
	require.NotEmpty(t, resp.RequestId)
	require.Equal(t, BotUserID, me.Id)
	require.Equal(t, BotName, me.Username)
	require.True(t, me.IsBot)
	require.True(t, model.IsValidId(BotUserID))
	require.True(t, model.IsValidId(TeamID))

	status, _, err := client.GetPing(ctx)
	require.NoError(t, err)
	require.Equal(t, "OK", status)

	teams, _, err := client.GetTeamsForUser(ctx, "me", "")
	require.NoError(t, err)
	require.Len(t, teams, 1)
	require.Equal(t, TeamID, teams[0].Id)
	require.Equal(t, TeamName, teams[0].Name)
	team, _, err := client.GetTeamByName(ctx, TeamName, "")
	require.NoError(t, err)
	require.Equal(t, TeamID, team.Id)

	for _, name := range []string{"alerts", "town-square"} {
		id := srv.ChannelID(name)
		require.True(t, model.IsValidId(id), id)
		require.Equal(t, strings.ToLower(id), id)
		ch, _, err := client.GetChannelByNameForTeamName(ctx, name, TeamName, "")
		require.NoError(t, err)
		require.Equal(t, id, ch.Id)
		require.Equal(t, name, ch.Name)
		require.Equal(t, TeamID, ch.TeamId)
		require.Equal(t, model.ChannelTypeOpen, ch.Type)
		byID, _, err := client.GetChannel(ctx, id)
		require.NoError(t, err)
		require.Equal(t, name, byID.Name)
	}
	require.Empty(t, srv.ChannelID("nope"))

	_, resp, err = client.GetChannelByNameForTeamName(ctx, "nope", TeamName, "")
	appErr := asAppError(t, err)
	require.Equal(t, http.StatusNotFound, appErr.StatusCode)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "app.channel.get_by_name.missing.app_error", appErr.Id)
	_, _, err = client.GetChannel(ctx, strings.Repeat("z", 26))
	require.Equal(t, "app.channel.get.existing.app_error", asAppError(t, err).Id)
	_, _, err = client.GetChannel(ctx, "short")
	require.Equal(t, http.StatusBadRequest, asAppError(t, err).StatusCode)

	cfg, _, err := client.GetClientConfig(ctx, "")
	require.NoError(t, err)
	require.Equal(t, "16383", cfg["MaxPostSize"])
	require.Equal(t, srv.MaxPostSize(), model.PostMessageMaxRunesV2)
	r, err := client.DoAPIGet(ctx, "/config/client?format=old", "")
	require.NoError(t, err)
	require.NoError(t, r.Body.Close())

	_, err = client.DoAPIGet(ctx, "/no/such/route", "")
	appErr = asAppError(t, err)
	require.Equal(t, "api.context.404.app_error", appErr.Id)
	require.Equal(t, "Sorry, we could not find the page.", appErr.Message)
	require.Equal(t, http.StatusNotFound, appErr.StatusCode)

	bad := model.NewAPIv4Client(srv.URL())
	bad.SetToken("wrong")
	_, resp, err = bad.GetMe(ctx, "")
	appErr = asAppError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, "api.context.session_expired.app_error", appErr.Id)
	require.Equal(t, "Invalid or expired session, please login again.", appErr.Message)
	require.Equal(t, http.StatusUnauthorized, appErr.StatusCode)
	_, _, err = bad.GetPing(ctx) // ping needs no session
	require.NoError(t, err)

	user, _, err := client.GetUser(ctx, BotUserID, "")
	require.NoError(t, err)
	require.Equal(t, BotName, user.Username)
	_, _, err = client.GetUser(ctx, "unknownuser0000000000000x", "")
	require.Equal(t, http.StatusNotFound, asAppError(t, err).StatusCode)
}

func TestCreatePatchAndUpdatePosts(t *testing.T) {
	srv := newServer(t)
	client := newClient(srv)
	ctx := waitCtx(t)
	alerts := srv.ChannelID("alerts")

	created, resp, err := client.CreatePost(ctx, alertPost(alerts, "http://127.0.0.1:1/hook"))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.True(t, model.IsValidId(created.Id))
	require.Equal(t, BotUserID, created.UserId)
	require.Equal(t, alerts, created.ChannelId)
	require.NotZero(t, created.CreateAt)
	require.Equal(t, "pod crashlooping", created.Message)
	actions := created.Attachments()[0].Actions
	require.Len(t, actions, 3)
	require.Equal(t, "ack", actions[0].Id)
	require.Nil(t, actions[0].Integration, "Mattermost never sends integrations to clients")
	require.Equal(t, "noop", actions[2].Id)

	posts := srv.Posts(alerts)
	require.Len(t, posts, 1)
	require.Equal(t, created.Id, posts[0].ID)
	require.Equal(t, BotUserID, posts[0].UserID)
	require.Contains(t, string(posts[0].Props), `"url":"http://127.0.0.1:1/hook"`)
	require.Contains(t, string(posts[0].Props), `"count":12345678901234`)
	require.Zero(t, posts[0].Edits)

	unnamed := &model.Post{ChannelId: srv.ChannelID("town-square"), Message: "actions without ids"}
	unnamed.AddProp("attachments", []*model.MessageAttachment{{Actions: []*model.PostAction{{Type: "button", Name: "Go"}}}})
	named, _, err := client.CreatePost(ctx, unnamed)
	require.NoError(t, err)
	generated := named.Attachments()[0].Actions[0].Id
	require.True(t, model.IsValidId(generated), "Mattermost gives actions without an id one: %q", generated)
	require.Contains(t, string(srv.Posts(named.ChannelId)[0].Props), generated)

	reply, _, err := client.CreatePost(ctx, &model.Post{ChannelId: alerts, RootId: created.Id, Message: "details"})
	require.NoError(t, err)
	require.Equal(t, created.Id, reply.RootId)
	got, _, err := client.GetPost(ctx, created.Id, "")
	require.NoError(t, err)
	require.Equal(t, int64(1), got.ReplyCount)

	_, _, err = client.CreatePost(ctx, &model.Post{ChannelId: alerts, RootId: reply.Id, Message: "reply to a reply"})
	require.Equal(t, "api.post.create_post.root_id.app_error", asAppError(t, err).Id)

	message := "patched"
	patched, _, err := client.PatchPost(ctx, created.Id, &model.PostPatch{Message: &message})
	require.NoError(t, err)
	require.Equal(t, "patched", patched.Message)
	require.NotZero(t, patched.EditAt)
	require.Len(t, patched.Attachments(), 1, "a patch without props keeps them")
	props := model.StringInterface{"attachments": []any{}}
	patched, _, err = client.PatchPost(ctx, created.Id, &model.PostPatch{Props: &props})
	require.NoError(t, err)
	require.Empty(t, patched.Attachments())
	posts = srv.Posts(alerts)
	require.Equal(t, 2, posts[0].Edits)
	require.JSONEq(t, `{"attachments":[]}`, string(posts[0].Props))

	update := &model.Post{Id: created.Id, ChannelId: alerts, Message: "updated"}
	updated, _, err := client.UpdatePost(ctx, created.Id, update)
	require.NoError(t, err)
	require.Equal(t, "updated", updated.Message)
	require.Nil(t, srv.Posts(alerts)[0].Props, "UpdatePost without props clears them")
	_, _, err = client.UpdatePost(ctx, created.Id, &model.Post{Message: "no id"})
	appErr := asAppError(t, err)
	require.Equal(t, http.StatusBadRequest, appErr.StatusCode)
	require.Equal(t, "api.context.invalid_body_param.app_error", appErr.Id)

	_, _, err = client.PatchPost(ctx, strings.Repeat("x", 26), &model.PostPatch{Message: &message})
	require.Equal(t, http.StatusForbidden, asAppError(t, err).StatusCode)
	_, _, err = client.GetPost(ctx, strings.Repeat("x", 26), "")
	require.Equal(t, http.StatusNotFound, asAppError(t, err).StatusCode)

	_, _, err = client.CreatePost(ctx, &model.Post{ChannelId: alerts, Message: strings.Repeat("é", srv.MaxPostSize())})
	require.NoError(t, err)
	_, resp, err = client.CreatePost(ctx, &model.Post{ChannelId: alerts, Message: strings.Repeat("é", srv.MaxPostSize()+1)})
	appErr = asAppError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "model.post.is_valid.message_length.app_error", appErr.Id)

	_, _, err = client.CreatePost(ctx, &model.Post{ChannelId: strings.Repeat("q", 26), Message: "x"})
	appErr = asAppError(t, err)
	require.Equal(t, http.StatusForbidden, appErr.StatusCode)
	require.Equal(t, "api.context.permissions.app_error", appErr.Id)
	require.Len(t, srv.Posts(alerts), 3)
}

func TestUploadFilesAndAttach(t *testing.T) {
	srv := newServer(t)
	client := newClient(srv)
	ctx := waitCtx(t)
	alerts, square := srv.ChannelID("alerts"), srv.ChannelID("town-square")

	uploaded, resp, err := client.UploadFile(ctx, []byte("line 1\nline 2\n"), alerts, "pod.log")
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Len(t, uploaded.FileInfos, 1)
	info := uploaded.FileInfos[0]
	require.True(t, model.IsValidId(info.Id))
	require.Equal(t, "pod.log", info.Name)
	require.Equal(t, int64(14), info.Size)
	require.Equal(t, alerts, info.ChannelId)
	require.Empty(t, uploaded.ClientIds)

	raw, _, err := client.UploadFileAsRequestBody(ctx, []byte("{}"), alerts, "values.json")
	require.NoError(t, err)
	require.Equal(t, "values.json", raw.FileInfos[0].Name)
	require.Equal(t, "application/json", raw.FileInfos[0].MimeType)

	elsewhere, _, err := client.UploadFile(ctx, []byte("x"), square, "other.txt")
	require.NoError(t, err)

	fileIDs := []string{info.Id, raw.FileInfos[0].Id, elsewhere.FileInfos[0].Id, "nosuchfile0000000000000000"}
	p, _, err := client.CreatePost(ctx, &model.Post{ChannelId: alerts, Message: "logs", FileIds: fileIDs})
	require.NoError(t, err)
	require.Equal(t, model.StringArray{info.Id, raw.FileInfos[0].Id}, p.FileIds, "files of other channels and unknown ids are dropped")
	require.Equal(t, []string{info.Id, raw.FileInfos[0].Id}, srv.Posts(alerts)[0].FileIDs)

	files := srv.Files()
	require.Len(t, files, 3)
	require.Equal(t, File{ID: info.Id, Name: "pod.log", Content: "line 1\nline 2\n", ChannelID: alerts}, files[0])

	_, _, err = client.UploadFile(ctx, []byte("x"), strings.Repeat("q", 26), "x.txt")
	require.Equal(t, http.StatusForbidden, asAppError(t, err).StatusCode)
}

func TestFailNextAndSetDown(t *testing.T) {
	srv := newServer(t)
	client := newClient(srv)
	ctx := waitCtx(t)
	alerts := srv.ChannelID("alerts")

	// Mattermost's rate limiter answers 429 in plain text, which Client4
	// cannot decode as an AppError: the status and headers are on the Response.
	srv.FailNext(1, http.StatusTooManyRequests, 1500*time.Millisecond)
	_, resp, err := client.CreatePost(ctx, &model.Post{ChannelId: alerts, Message: "x"})
	require.Error(t, err)
	var appErr *model.AppError
	require.False(t, errors.As(err, &appErr))
	require.Contains(t, err.Error(), "limit exceeded")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "2", resp.Header.Get("Retry-After"))
	require.Equal(t, "0", resp.Header.Get("X-Ratelimit-Remaining"))
	require.Equal(t, "2", resp.Header.Get("X-Ratelimit-Reset"))
	_, _, err = client.CreatePost(ctx, &model.Post{ChannelId: alerts, Message: "x"})
	require.NoError(t, err)

	srv.FailNext(2, http.StatusServiceUnavailable, 0)
	for range 2 {
		_, resp, err = client.GetMe(ctx, "")
		appErr = asAppError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, appErr.StatusCode)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.Equal(t, "api.context.server_busy.app_error", appErr.Id)
	}
	_, _, err = client.GetMe(ctx, "")
	require.NoError(t, err)

	srv.FailNext(5, 42, 0) // not an HTTP error status: taken as 500
	_, _, err = client.GetMe(ctx, "")
	require.Equal(t, http.StatusInternalServerError, asAppError(t, err).StatusCode)
	srv.FailNext(0, 0, 0)
	_, _, err = client.GetMe(ctx, "")
	require.NoError(t, err)

	srv.SetDown(true)
	_, resp, err = client.GetMe(ctx, "")
	require.Error(t, err)
	require.False(t, errors.As(err, &appErr))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	_, err = model.NewWebSocketClient4(srv.WebSocketURL(), Token)
	require.Equal(t, "model.websocket_client.connect_fail.app_error", asAppError(t, err).Id)
	srv.SetDown(false)
	_, _, err = client.GetMe(ctx, "")
	require.NoError(t, err)
	require.Equal(t, 9, srv.Calls())

	srv.Close()
	_, resp, err = client.GetMe(ctx, "")
	require.Error(t, err)
	require.Nil(t, resp, "a transport error leaves no Response")
}

func TestWebSocketEvents(t *testing.T) {
	srv := newServer(t)
	client := newClient(srv)
	ws := startWebSocket(t, srv)
	require.Equal(t, 1, srv.Connections())
	require.Equal(t, 1, srv.Connected())
	ctx := waitCtx(t)
	alerts := srv.ChannelID("alerts")

	select {
	case resp := <-ws.ResponseChannel:
		require.Equal(t, model.StatusOk, resp.Status)
		require.Equal(t, int64(1), resp.SeqReply, "the authentication challenge")
	case <-ctx.Done():
		t.Fatal("no response to the authentication challenge")
	}

	postID, err := srv.Mention(alerts, "alice", "status of default/web")
	require.NoError(t, err)
	ev := nextEvent(t, ws, model.WebsocketEventPosted)
	require.Equal(t, int64(1), ev.GetSequence())
	require.Equal(t, alerts, ev.GetBroadcast().ChannelId)
	data := ev.GetData()
	require.Equal(t, "O", data["channel_type"])
	require.Equal(t, "alerts", data["channel_name"])
	require.Equal(t, "@alice", data["sender_name"])
	require.Equal(t, TeamID, data["team_id"])
	var mentions []string
	require.NoError(t, json.Unmarshal([]byte(data["mentions"].(string)), &mentions))
	require.Equal(t, []string{BotUserID}, mentions)
	p := eventPost(t, ev)
	require.Equal(t, postID, p.Id)
	require.Equal(t, "alice", p.UserId)
	require.Equal(t, "@kubechat status of default/web", p.Message)
	require.Empty(t, p.RootId)

	replyID, err := srv.MentionInThread(alerts, postID, "alice", "and now?")
	require.NoError(t, err)
	ev = nextEvent(t, ws, model.WebsocketEventPosted)
	require.Equal(t, int64(2), ev.GetSequence())
	p = eventPost(t, ev)
	require.Equal(t, replyID, p.Id)
	require.Equal(t, postID, p.RootId)
	_, err = srv.MentionInThread(alerts, replyID, "alice", "reply to a reply")
	require.Error(t, err)

	// The bot's own posts come back as posted events too.
	created, _, err := client.CreatePost(ctx, &model.Post{ChannelId: alerts, RootId: postID, Message: "web is fine"})
	require.NoError(t, err)
	ev = nextEvent(t, ws, model.WebsocketEventPosted)
	require.Equal(t, BotUserID, eventPost(t, ev).UserId)
	require.Nil(t, ev.GetData()["mentions"])
	message := "web is fine, really"
	_, _, err = client.PatchPost(ctx, created.Id, &model.PostPatch{Message: &message})
	require.NoError(t, err)
	ev = nextEvent(t, ws, model.WebsocketEventPostEdited)
	require.Equal(t, message, eventPost(t, ev).Message)

	channelID, dmID, err := srv.DirectMessage("bob", "hello")
	require.NoError(t, err)
	ev = nextEvent(t, ws, model.WebsocketEventPosted)
	require.Equal(t, "D", ev.GetData()["channel_type"])
	require.Equal(t, "bob__"+BotUserID, ev.GetData()["channel_name"])
	require.Equal(t, "", ev.GetData()["team_id"])
	require.NotNil(t, ev.GetData()["mentions"])
	p = eventPost(t, ev)
	require.Equal(t, dmID, p.Id)
	require.Equal(t, channelID, p.ChannelId)
	require.Equal(t, "hello", p.Message)
	require.Equal(t, channelID, srv.ChannelID("bob__"+BotUserID))
	dm, _, err := client.GetChannel(ctx, channelID)
	require.NoError(t, err)
	require.Equal(t, model.ChannelTypeDirect, dm.Type)
	again, resp, err := client.CreateDirectChannel(ctx, BotUserID, "bob")
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, channelID, again.Id)
	_, _, err = client.CreateDirectChannel(ctx, "bob", "carol")
	require.Equal(t, http.StatusForbidden, asAppError(t, err).StatusCode)

	require.Len(t, srv.Posts(alerts), 3)
	require.Len(t, srv.Posts(channelID), 1)

	ws.UserTyping(alerts, "")
	select {
	case resp := <-ws.ResponseChannel:
		require.Equal(t, model.StatusOk, resp.Status)
		require.Equal(t, int64(2), resp.SeqReply)
	case <-ctx.Done():
		t.Fatal("no response to user_typing")
	}

	_, err = srv.Mention(strings.Repeat("q", 26), "alice", "x")
	require.Error(t, err)
	_, err = srv.Mention(alerts, "", "x")
	require.Error(t, err)
	_, err = srv.MentionInThread(srv.ChannelID("town-square"), postID, "alice", "wrong channel")
	require.Error(t, err)
}

func TestWebSocketProtocol(t *testing.T) {
	srv := newServer(t)
	srv.pingInterval = 20 * time.Millisecond
	srv.authTimeout = 200 * time.Millisecond

	// With the token in the Authorization header, hello comes at once and
	// a later challenge is ignored.
	header := http.Header{"Authorization": []string{"Bearer " + Token}}
	ws := dialRaw(t, srv, header)
	var pings atomic.Int32
	ws.SetPingHandler(func(data string) error {
		pings.Add(1)
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	hello := readRaw(t, ws)
	require.Equal(t, "hello", hello["event"])
	require.Equal(t, float64(0), hello["seq"])
	helloData := hello["data"].(map[string]any)
	require.Equal(t, serverVersion, helloData["server_version"])
	require.True(t, model.IsValidId(helloData["connection_id"].(string)))
	require.Equal(t, BotUserID, hello["broadcast"].(map[string]any)["user_id"])
	require.NoError(t, ws.WriteJSON(map[string]any{"seq": 1, "action": "authentication_challenge", "data": map[string]any{"token": Token}}))
	require.NoError(t, ws.WriteJSON(map[string]any{"seq": 2, "action": "ping"}))
	pong := readRaw(t, ws)
	require.Equal(t, "OK", pong["status"])
	require.Equal(t, float64(2), pong["seq_reply"])
	require.Equal(t, "pong", pong["data"].(map[string]any)["text"])
	require.NoError(t, ws.WriteJSON(map[string]any{"seq": 3, "action": "no_such_action"}))
	failed := readRaw(t, ws)
	require.Equal(t, "FAIL", failed["status"])
	require.Equal(t, "api.web_socket_router.bad_action.app_error", failed["error"].(map[string]any)["id"])
	require.NoError(t, ws.WriteJSON(map[string]any{"seq": 0, "action": "ping"}))
	require.Equal(t, "FAIL", readRaw(t, ws)["status"])
	go func() { // the ping handler runs while reading
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return pings.Load() >= 2 }, waitTimeout, 10*time.Millisecond)

	// Without the header, actions before the challenge fail, and a wrong
	// token closes the websocket.
	anon := dialRaw(t, srv, nil)
	require.NoError(t, anon.WriteJSON(map[string]any{"seq": 1, "action": "ping"}))
	unauth := readRaw(t, anon)
	require.Equal(t, "FAIL", unauth["status"])
	require.Equal(t, float64(http.StatusUnauthorized), unauth["error"].(map[string]any)["status_code"])
	require.NoError(t, anon.WriteJSON(map[string]any{"seq": 2, "action": "authentication_challenge", "data": map[string]any{"token": "wrong"}}))
	_, _, err := anon.ReadMessage()
	require.Error(t, err)

	// A websocket that never authenticates is closed after the auth timeout.
	idle := dialRaw(t, srv, nil)
	_, _, err = idle.ReadMessage()
	require.Error(t, err)

	// Undecodable and oversized messages close the websocket.
	garbled := dialRaw(t, srv, header)
	require.Equal(t, "hello", readRaw(t, garbled)["event"])
	require.NoError(t, garbled.WriteMessage(websocket.TextMessage, []byte("{not json")))
	_, _, err = garbled.ReadMessage()
	require.Error(t, err)
	big := dialRaw(t, srv, header)
	require.Equal(t, "hello", readRaw(t, big)["event"])
	require.NoError(t, big.WriteMessage(websocket.TextMessage, []byte(`{"seq":1,"action":"ping","data":{"x":"`+strings.Repeat("x", maxSocketMessageBytes)+`"}}`)))
	_, _, err = big.ReadMessage()
	require.Error(t, err)

	require.Equal(t, 3, srv.Connections())
	require.Eventually(t, func() bool { return srv.Connected() == 1 }, waitTimeout, 10*time.Millisecond)
}

func TestClick(t *testing.T) {
	srv := newServer(t)
	client := newClient(srv)
	ws := startWebSocket(t, srv)
	ctx := waitCtx(t)
	alerts := srv.ChannelID("alerts")
	hook := newIntegration(t)

	created, _, err := client.CreatePost(ctx, alertPost(alerts, hook.URL+"/actions"))
	require.NoError(t, err)

	update := &model.Post{Message: "acknowledged by @alice"}
	update.AddProp("attachments", []*model.MessageAttachment{{Text: "acked"}})
	update.AddProp("from_bot", "false")
	update.AddProp("override_username", "impostor")
	answer, err := json.Marshal(model.PostActionIntegrationResponse{Update: update, EphemeralText: "done"})
	require.NoError(t, err)
	hook.answer.Store(answer)

	status, body, err := srv.Click(created.Id, "alice", "ack", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, string(answer), string(body))
	r := <-hook.requests
	require.Equal(t, "/actions", r.URL.Path)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	req := <-hook.bodies
	require.Equal(t, "alice", req.UserId)
	require.Equal(t, "alice", req.UserName)
	require.Equal(t, alerts, req.ChannelId)
	require.Equal(t, "alerts", req.ChannelName)
	require.Equal(t, TeamID, req.TeamId)
	require.Equal(t, TeamName, req.TeamName)
	require.Equal(t, created.Id, req.PostId)
	require.NotEmpty(t, req.TriggerId)
	require.Equal(t, model.PostActionTypeButton, req.Type)
	require.Empty(t, req.DataSource)
	require.Equal(t, map[string]any{"alert": "a1", "count": float64(12345678901234)}, req.Context)

	posts := srv.Posts(alerts)
	require.Equal(t, "acknowledged by @alice", posts[0].Message)
	require.Equal(t, 1, posts[0].Edits)
	var props map[string]any
	require.NoError(t, json.Unmarshal(posts[0].Props, &props))
	require.Equal(t, "true", props["from_bot"], "retained from the original post")
	require.NotContains(t, props, "override_username", "absent from the original post")
	ev := nextEvent(t, ws, model.WebsocketEventPostEdited)
	require.Equal(t, "acknowledged by @alice", eventPost(t, ev).Message)

	// A menu: the chosen option goes into the context; no update keeps the post.
	hook.answer.Store([]byte(`{"ephemeral_text":"silenced"}`))
	created, _, err = client.CreatePost(ctx, alertPost(alerts, hook.URL))
	require.NoError(t, err)
	status, _, err = srv.Click(created.Id, "alice", "silence", "1h")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	req = <-hook.bodies
	<-hook.requests
	require.Equal(t, model.PostActionTypeSelect, req.Type)
	require.Equal(t, map[string]any{"selected_option": "1h"}, req.Context)
	require.Zero(t, srv.Posts(alerts)[1].Edits)

	// An update without props keeps the post's props.
	hook.answer.Store([]byte(`{"update":{"message":"only text"}}`))
	_, _, err = srv.Click(created.Id, "alice", "ack", "")
	require.NoError(t, err)
	<-hook.bodies
	<-hook.requests
	require.Equal(t, "only text", srv.Posts(alerts)[1].Message)
	require.Contains(t, string(srv.Posts(alerts)[1].Props), hook.URL)

	// The integration's failure is returned and applies nothing.
	hook.status.Store(http.StatusInternalServerError)
	hook.answer.Store([]byte(`{"update":{"message":"nope"}}`))
	status, body, err = srv.Click(created.Id, "alice", "ack", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, status)
	require.Contains(t, string(body), "nope")
	<-hook.bodies
	<-hook.requests
	require.Equal(t, "only text", srv.Posts(alerts)[1].Message)

	hook.status.Store(http.StatusOK)
	hook.answer.Store([]byte(`not json`))
	_, _, err = srv.Click(created.Id, "alice", "ack", "")
	require.Error(t, err)
	<-hook.bodies
	<-hook.requests

	for _, bad := range []struct{ post, action string }{
		{created.Id, "no_such"}, // not alphanumeric: Mattermost's route 404s
		{created.Id, "missing"}, // no such action
		{created.Id, "noop"},    // no integration
		{"nosuchpost000000000000000x", "ack"},
	} {
		_, _, err = srv.Click(bad.post, "alice", bad.action, "")
		require.Error(t, err, bad)
	}
}

func TestDropAndReconnect(t *testing.T) {
	srv := newServer(t)
	ws := startWebSocket(t, srv)
	alerts := srv.ChannelID("alerts")

	srv.Drop()
	require.Equal(t, 0, srv.Connected())
	timeout := time.After(waitTimeout)
	for open := true; open; {
		select {
		case _, open = <-ws.EventChannel:
		case <-timeout:
			t.Fatal("EventChannel not closed after Drop")
		}
	}
	require.NotNil(t, ws.ListenError)
	require.Equal(t, "model.websocket_client.connect_fail.app_error", ws.ListenError.Id)
	t.Logf("ListenError after Drop: %v", ws.ListenError)
	_, ok := <-ws.ResponseChannel
	for ok {
		_, ok = <-ws.ResponseChannel
	}

	_, err := srv.Mention(alerts, "alice", "anyone?")
	require.ErrorIs(t, err, errNotConnected)
	_, _, err = srv.DirectMessage("alice", "anyone?")
	require.ErrorIs(t, err, errNotConnected)
	require.Empty(t, srv.Posts(alerts))
	require.Empty(t, srv.ChannelID("alice__"+BotUserID))

	again := startWebSocket(t, srv)
	require.NoError(t, srv.WaitConnected(waitCtx(t), 2))
	_, err = srv.Mention(alerts, "alice", "back?")
	require.NoError(t, err)
	require.Equal(t, "@kubechat back?", eventPost(t, nextEvent(t, again, model.WebsocketEventPosted)).Message)
}

func TestCloseEndsWebSocketsAndWaits(t *testing.T) {
	srv := New()
	ws := startWebSocket(t, srv)
	ctx := waitCtx(t)
	waited := make(chan error, 1)
	go func() {
		_, err := srv.WaitPosts(ctx, srv.ChannelID("alerts"), 1)
		waited <- err
	}()
	srv.Close()
	srv.Close()
	for range ws.EventChannel {
	}
	require.NotNil(t, ws.ListenError)
	require.True(t, websocket.IsCloseError(errors.Unwrap(ws.ListenError), websocket.CloseGoingAway), "%v", ws.ListenError)
	require.Error(t, <-waited)
	_, err := srv.Mention(srv.ChannelID("alerts"), "alice", "x")
	require.Error(t, err)
}

func TestWaitPosts(t *testing.T) {
	srv := newServer(t)
	client := newClient(srv)
	alerts := srv.ChannelID("alerts")
	go func() {
		for i := range 3 {
			_, _, _ = client.CreatePost(context.Background(), &model.Post{ChannelId: alerts, Message: fmt.Sprint(i)})
		}
	}()
	posts, err := srv.WaitPosts(waitCtx(t), alerts, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"0", "1", "2"}, []string{posts[0].Message, posts[1].Message, posts[2].Message})

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	posts, err = srv.WaitPosts(short, alerts, 4)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, posts, 3)
}

func TestMalformedRequests(t *testing.T) {
	srv := newServer(t)
	alerts := srv.ChannelID("alerts")
	do := func(method, path, contentType, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+Token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var out map[string]any
		_ = json.Unmarshal(data, &out)
		return resp.StatusCode, out
	}
	for _, tc := range []struct {
		method, path, contentType, body string
		status                          int
		id                              string
	}{
		{"POST", "/api/v4/posts", "", "{", 400, "api.context.invalid_body_param.app_error"},
		{"POST", "/api/v4/posts", "", `{"channel_id":"` + alerts + `","props":[1]}`, 400, "api.context.invalid_body_param.app_error"},
		{"POST", "/api/v4/posts", "", `{"channel_id":"` + alerts + `","type":"bogus"}`, 400, "model.post.is_valid.type.app_error"},
		{"POST", "/api/v4/posts", "", `{"channel_id":"` + alerts + `","root_id":"nosuchroot"}`, 400, "api.post.create_post.root_id.app_error"},
		{"PUT", "/api/v4/posts/short/patch", "", `{}`, 400, "api.context.invalid_url_param.app_error"},
		{"DELETE", "/api/v4/posts", "", "", 404, "api.context.404.app_error"},
		{"GET", "/api/v4/users/me/", "", "", 404, "api.context.404.app_error"},
		{"GET", "/elsewhere", "", "", 404, "api.context.404.app_error"},
		{"GET", "/api/v4/config/client?format=new", "", "", 400, "api.context.invalid_url_param.app_error"},
		{"POST", "/api/v4/channels/direct", "", `["` + BotUserID + `"]`, 400, "api.context.invalid_body_param.app_error"},
		{"POST", "/api/v4/files", "multipart/form-data; boundary=x", "garbage", 400, "api.file.upload_file.bad_parse.app_error"},
		{"POST", "/api/v4/files?channel_id=" + alerts, "text/plain", "no filename", 400, "api.context.invalid_url_param.app_error"},
		{"POST", "/api/v4/files?filename=a.txt", "text/plain", "no channel", 400, "api.context.invalid_url_param.app_error"},
		{"POST", "/api/v4/files", "multipart/form-data; boundary=x", "--x--\r\n", 400, "api.context.invalid_url_param.app_error"},
	} {
		status, body := do(tc.method, tc.path, tc.contentType, tc.body)
		require.Equal(t, tc.status, status, "%s %s %s", tc.method, tc.path, tc.body)
		require.Equal(t, tc.id, body["id"], "%s %s %s", tc.method, tc.path, tc.body)
		require.Equal(t, float64(tc.status), body["status_code"])
	}
	require.Empty(t, srv.Posts(alerts))
	require.Empty(t, srv.Files())
}

func TestConcurrentUse(t *testing.T) {
	srv := newServer(t)
	ws := startWebSocket(t, srv)
	client := newClient(srv)
	alerts := srv.ChannelID("alerts")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 10 {
				_, _, err := client.CreatePost(context.Background(), &model.Post{ChannelId: alerts, Message: fmt.Sprint(i, j)})
				if err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				if _, err := srv.Mention(alerts, "alice", "hi"); err != nil {
					t.Error(err)
				}
				_ = srv.Posts(alerts)
				_ = srv.Connected()
			}
		})
	}
	received := 0
	timeout := time.After(waitTimeout)
	for received < 80 {
		select {
		case ev := <-ws.EventChannel:
			if ev.EventType() == model.WebsocketEventPosted {
				received++
			}
		case <-timeout:
			t.Fatalf("received %d of 80 posted events", received)
		}
	}
	wg.Wait()
	require.Len(t, srv.Posts(alerts), 80)
}
