// Package mattermosttest is a fake Mattermost server on loopback for tests.
//
// The real Client4 and WebSocketClient of
// github.com/mattermost/mattermost/server/public/model run against it
// unchanged: model.NewAPIv4Client(srv.URL()) with client.SetToken(Token), and
// model.NewWebSocketClient4(srv.WebSocketURL(), Token). The Server serves the
// REST API v4 routes a chat bot uses (users/me, system/ping, teams, channels,
// direct channels, posts with create, get, update and patch, file uploads and
// the client config), keeps the posts and files it was sent, and drives the
// websocket: it authenticates the client, says hello, answers its actions,
// pings it, and broadcasts posted and post_edited events. Mention,
// MentionInThread and DirectMessage inject users' posts, and Click plays a
// user pressing an interactive message button or menu: the server calls the
// action's integration URL the way Mattermost does and applies the update
// the integration answers with.
//
// Payloads follow what Mattermost 10 sends (the JSON of the public model
// package); errors are Mattermost's AppError JSON
// {"id","message","detailed_error","request_id","status_code"}, except where
// Mattermost itself answers in plain text. Faults can be injected into the
// REST calls, not into websocket upgrades: failures of the next calls
// (FailNext), a 429 as Mattermost's rate limiter answers ("limit exceeded",
// with Retry-After, X-Ratelimit-Limit, -Remaining: 0 and -Reset headers);
// and an outage (SetDown), when every call and upgrade gets a plain-text
// 503 as from a proxy in front of a Mattermost that is down, while open
// websockets stay open. Drop cuts them: a model.WebSocketClient then sees
// an abnormal closure (1006), sets ListenError, closes EventChannel and
// ResponseChannel and is done; it never reconnects by itself.
//
// Like Mattermost, the server never sends an action's "integration" (URL and
// context) back to the client: posts in REST answers and websocket events
// carry the actions without it, while Posts shows the props as stored.
// Actions posted without an "id" get one, as Mattermost gives them.
package mattermosttest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

const (
	// Token is the bot's personal access token, the only token the server
	// accepts. A REST call with any other token, or none, gets HTTP 401 and
	// Mattermost's AppError "api.context.session_expired.app_error".
	Token = "kubechat-test-token"
	// BotUserID is the bot user's id, 26 lowercase letters and digits like
	// every Mattermost id.
	BotUserID = "kubechatbotuserid000000001"
	// BotName is the bot user's username; mentions of the bot read "@kubechat".
	BotName = "kubechat"
	// TeamID is the id of the only team, which holds the seeded channels.
	TeamID = "kubechatteamid000000000001"
	// TeamName is the name (URL slug) of the only team.
	TeamName = "platform"
)

const (
	serverVersion = "10.0.0"
	// maxPostRunes and maxPropsRunes are Mattermost's limits on a post's
	// message and on its props as JSON, in runes (model.PostMessageMaxRunesV2,
	// model.PostPropsMaxRunes).
	maxPostRunes, maxPropsRunes = 16383, 800000
	maxBodyBytes                = 16 << 20
	// maxIntegrationResponseBytes bounds what Click reads of an integration's answer.
	maxIntegrationResponseBytes = 1 << 20
	idLen                       = 26 // of every Mattermost id
	// channelOpen and channelDirect are channel types, as Mattermost spells them.
	channelOpen, channelDirect = "O", "D"
)

// retainPropKeys are the props Mattermost keeps from the original post when
// an integration's update replaces them (model.PostActionRetainPropKeys).
var retainPropKeys = []string{"from_webhook", "from_bot", "from_plugin", "override_username", "override_icon_url"}

type object = map[string]any

// errNotConnected is returned when a user event is injected while no
// authenticated websocket is open.
var errNotConnected = errors.New("no authenticated websocket connected")

// Server is a fake Mattermost server on loopback. Create it with New and
// release it with Close. All its methods are safe for concurrent use.
type Server struct {
	*fake.Server[post, *wsConn]
	mux      *http.ServeMux
	requests atomic.Int64 // source of X-Request-Id values
	clock    fake.Monotonic

	// pingInterval is how often every websocket is pinged and authTimeout
	// how long a websocket may stay unauthenticated. Tests of this package
	// may change them before any websocket connects.
	pingInterval, authTimeout time.Duration

	mu    sync.Mutex        // serializes changes; guards what follows and the websockets' event numbers
	seq   int               // source of ids
	users map[string]string // usernames by user id
}

// Post is one post as the server now holds it, edits applied.
type Post struct {
	// ID is the post's id.
	ID string
	// ChannelID is the id of the channel the post is in.
	ChannelID string
	// RootID is the id of the thread's root post, or "" for a root post.
	RootID string
	// Message is the post's text.
	Message string
	// UserID is the id of the post's author: BotUserID for the bot's posts.
	UserID string
	// Props are the post's props as posted or last replaced, compact JSON, or
	// nil for none. Message attachments, and the actions in them with their
	// integrations, live here under "attachments".
	Props json.RawMessage
	// FileIDs are the ids of the files attached to the post.
	FileIDs []string
	// Edits counts the successful updates of the post: REST patches and
	// updates, and the updates integrations answered Click with.
	Edits int
}

// post is what the server keeps of a post beyond what every fake keeps;
// times are in Unix milliseconds.
type post struct {
	props                      json.RawMessage
	typ, pendingID             string
	pinned                     bool
	createAt, updateAt, editAt int64
}

// File is one uploaded file.
type File struct {
	// ID is the file's id, for a post's file_ids.
	ID string
	// Name is the file's name as uploaded.
	Name string
	// Content is the file's content.
	Content string
	// ChannelID is the id of the channel the file was uploaded to.
	ChannelID string
}

// New starts a fake Mattermost server whose team holds the channels
// "alerts" and "town-square", both joined by the bot.
func New() *Server {
	s := &Server{
		Server:       fake.NewServer[post, *wsConn](sendQueueSize),
		pingInterval: defaultPingInterval, authTimeout: defaultAuthTimeout,
		users: map[string]string{BotUserID: BotName},
	}
	for _, name := range []string{"alerts", "town-square"} {
		s.Store.AddChannel(fake.Channel{ID: s.newIDLocked("channel"), Name: name})
	}
	s.mux = http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		public  bool // served without a token
		serve   func(*http.Request) (int, any)
	}{
		{"GET /api/v4/system/ping", true, func(*http.Request) (int, any) { return http.StatusOK, object{"status": "OK"} }},
		{"GET /api/v4/config/client", true, s.clientConfig},
		{"GET /api/v4/users/{user_id}", false, s.getUser},
		{"GET /api/v4/users/{user_id}/teams", false, s.getTeamsForUser},
		{"GET /api/v4/teams/{team_id}", false, s.getTeam},
		{"GET /api/v4/teams/name/{team_name}", false, s.getTeam},
		{"GET /api/v4/teams/name/{team_name}/channels/name/{channel_name}", false, s.getChannel},
		{"GET /api/v4/channels/{channel_id}", false, s.getChannel},
		{"POST /api/v4/channels/direct", false, s.createDirectChannel},
		{"POST /api/v4/posts", false, s.createPost},
		{"GET /api/v4/posts/{post_id}", false, s.getPost},
		{"PUT /api/v4/posts/{post_id}", false, s.updatePost},
		{"PUT /api/v4/posts/{post_id}/patch", false, s.patchPost},
		{"POST /api/v4/files", false, s.uploadFiles},
	} {
		s.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			var status int
			var body any = errSessionExpired
			if rt.public || authorized(r) {
				status, body = s.route(r, rt.serve)
			}
			if e, ok := body.(*appError); ok {
				writeAppError(w, e)
			} else {
				fake.WriteJSON(w, status, body)
			}
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeAppError(w, errNotFound) })
	s.Start(http.HandlerFunc(s.serveHTTP))
	return s
}

// route checks the ids the path holds as Mattermost does before it runs a
// handler: a team, channel or post id must look like an id.
func (s *Server) route(r *http.Request, serve func(*http.Request) (int, any)) (int, any) {
	for _, name := range []string{"team_id", "channel_id", "post_id"} {
		if id := r.PathValue(name); id != "" && !isValidID(id) {
			return fail(errInvalidURLParam(name))
		}
	}
	return serve(r)
}

// WebSocketURL returns the websocket address, ws://127.0.0.1:PORT, for
// model.NewWebSocketClient4, which appends /api/v4/websocket.
func (s *Server) WebSocketURL() string {
	return "ws" + strings.TrimPrefix(s.URL(), "http")
}

// MaxPostSize returns the longest message, in runes, that the server
// accepts in a post: 16383, as Mattermost, which reports it as MaxPostSize
// in GET /api/v4/config/client.
func (s *Server) MaxPostSize() int {
	return maxPostRunes
}

// Posts returns the posts of a channel, the bot's and injected ones, in
// posting order.
func (s *Server) Posts(channelID string) []Post {
	return fake.Convert(s.Store.Messages(channelID), export)
}

// WaitPosts waits until the channel holds at least n posts and returns them
// all. When ctx ends, or the server closes, first it returns the posts so
// far with an error.
func (s *Server) WaitPosts(ctx context.Context, channelID string, n int) ([]Post, error) {
	posts, err := s.Store.WaitMessages(ctx, channelID, n)
	return fake.Convert(posts, export), err
}

// Files returns the uploaded files, in upload order.
func (s *Server) Files() []File {
	return fake.Convert(s.Store.Files(), func(f fake.File) File { return File{ID: f.ID, Name: f.Name, Content: f.Content, ChannelID: f.Channel} })
}

func export(m fake.Message[post]) Post {
	return Post{ID: m.ID, ChannelID: m.Channel, RootID: m.Thread, Message: m.Text, UserID: m.Author,
		Props: bytes.Clone(m.X.props), FileIDs: m.Files, Edits: m.Edits}
}

// newIDLocked returns a 26-character id never returned before: the kind,
// then a zero-padded number. s.mu must be held.
func (s *Server) newIDLocked(kind string) string {
	s.seq++
	return fmt.Sprintf("%s%0*d", kind, idLen-len(kind), s.seq)
}

func (s *Server) now() int64 {
	return s.clock.Next(time.Now().UnixMilli())
}

// userNameLocked returns the user's username. A user the server has not
// seen before is added, with its id as username. s.mu must be held.
func (s *Server) userNameLocked(userID string) string {
	if _, ok := s.users[userID]; !ok {
		s.users[userID] = userID
	}
	return s.users[userID]
}

// directChannelLocked returns the direct message channel between the bot
// and the user, creating it the first time. s.mu must be held.
func (s *Server) directChannelLocked(userID string) fake.Channel {
	s.userNameLocked(userID)
	return s.Store.DirectChannel(userID, func() fake.Channel {
		// model.GetDMNameFromIds puts the smaller id first.
		return fake.Channel{ID: s.newIDLocked("channel"), Name: min(BotUserID, userID) + "__" + max(BotUserID, userID)}
	})
}

// addPostLocked stores a new post and broadcasts its posted event, with the
// mentions if there are any. s.mu must be held.
func (s *Server) addPostLocked(p fake.Message[post], mentions []string) fake.Message[post] {
	p.X.createAt = s.now()
	p.X.updateAt = p.X.createAt
	p = s.Store.Post(p)
	s.Store.AttachFiles(p.ID, p.Files)
	s.broadcastPostedLocked(p, mentions)
	return p
}

// editPostLocked records an edit of the post and broadcasts its
// post_edited event. s.mu must be held.
func (s *Server) editPostLocked(p fake.Message[post], message string, props json.RawMessage) fake.Message[post] {
	now := s.now()
	if message != p.Text {
		p.Text, p.X.editAt = message, now
	}
	p.X.props, p.X.updateAt = props, now
	p, _ = s.Store.Update(p)
	s.Store.AttachFiles(p.ID, p.Files)
	s.broadcastLocked(wsEvent{Event: "post_edited", Data: object{"post": s.postJSON(p)}, Broadcast: wsBroadcast{ChannelID: p.Channel}})
	return p
}

// attachableFiles returns the ids of the files that a post in the channel
// may attach: uploaded to that channel and not attached to another post.
// Mattermost drops the other ids.
func (s *Server) attachableFiles(ids []string, channelID, postID string) []string {
	var kept []string
	for _, id := range ids {
		f, ok := s.Store.File(id)
		if ok && f.Channel == channelID && (f.Message == "" || f.Message == postID) && !slices.Contains(kept, id) {
			kept = append(kept, id)
		}
	}
	return kept
}

// channelInfo returns the team, type and display name Mattermost gives the
// channel: a direct message channel has no team and no display name, and
// the seeded channels are displayed by their name in title case.
func channelInfo(ch fake.Channel) (teamID, typ, displayName string) {
	if ch.User != "" {
		return "", channelDirect, ""
	}
	words := strings.Split(ch.Name, "-")
	for i, w := range words {
		words[i] = strings.ToUpper(w[:min(len(w), 1)]) + w[min(len(w), 1):]
	}
	return TeamID, channelOpen, strings.Join(words, " ")
}

func (s *Server) channelJSON(ch fake.Channel) object {
	teamID, typ, displayName := channelInfo(ch)
	var lastPostAt int64
	for _, p := range s.Store.Messages(ch.ID) {
		lastPostAt = max(lastPostAt, p.X.createAt)
	}
	return object{
		"id": ch.ID, "create_at": ch.Created.UnixMilli(), "update_at": ch.Created.UnixMilli(), "delete_at": 0,
		"team_id": teamID, "type": typ, "display_name": displayName, "name": ch.Name,
		"header": "", "purpose": "", "last_post_at": lastPostAt, "total_msg_count": 0,
		"extra_update_at": 0, "creator_id": "", "scheme_id": nil, "props": nil,
		"group_constrained": nil, "shared": nil, "total_msg_count_root": 0, "policy_id": nil,
		"last_root_post_at": lastPostAt,
	}
}

// clientPost returns the post as Mattermost sends it to clients, as Post
// JSON without the actions' integrations.
func (s *Server) clientPost(p fake.Message[post]) object {
	root := cmp.Or(p.Thread, p.ID)
	var replies, lastReplyAt int64
	for _, reply := range s.Store.Messages(p.Channel) {
		if reply.Thread == root {
			replies++
			lastReplyAt = max(lastReplyAt, reply.X.createAt)
		}
	}
	out := object{
		"id": p.ID, "create_at": p.X.createAt, "update_at": p.X.updateAt, "edit_at": p.X.editAt,
		"delete_at": 0, "is_pinned": p.X.pinned, "user_id": p.Author, "channel_id": p.Channel,
		"root_id": p.Thread, "original_id": "", "message": p.Text, "type": p.X.typ,
		"props": clientProps(p.X.props), "hashtags": "", "pending_post_id": p.X.pendingID,
		"reply_count": replies, "last_reply_at": lastReplyAt, "participants": nil, "metadata": object{},
	}
	if len(p.Files) > 0 {
		out["file_ids"] = slices.Clone(p.Files)
	}
	return out
}

// postJSON returns the post as websocket events carry it: clientPost as a JSON string.
func (s *Server) postJSON(p fake.Message[post]) string {
	data, _ := json.Marshal(s.clientPost(p)) // maps of JSON values always encode
	return string(data)
}

// decodeObject decodes a JSON object, keeping its numbers as they are written.
func decodeObject(data []byte) (object, error) {
	var obj object
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	if _, err := dec.Token(); obj == nil || err != io.EOF {
		return nil, errors.New("decode object: not one object")
	}
	return obj, nil
}

// walkActions calls fn on every action of every message attachment in the
// props, and reports whether any call reported a change.
func walkActions(props object, fn func(action object) bool) bool {
	changed := false
	attachments, _ := props["attachments"].([]any)
	for _, a := range attachments {
		attachment, _ := a.(object)
		actions, _ := attachment["actions"].([]any)
		for _, x := range actions {
			if action, ok := x.(object); ok && fn(action) {
				changed = true
			}
		}
	}
	return changed
}

// clientProps returns the props as Mattermost sends them to clients: the
// actions without their integrations, and {} for none.
func clientProps(props json.RawMessage) json.RawMessage {
	if len(props) == 0 {
		return json.RawMessage("{}")
	}
	obj, err := decodeObject(props)
	if err != nil || !walkActions(obj, func(action object) bool {
		_, ok := action["integration"]
		delete(action, "integration")
		return ok
	}) {
		return props
	}
	out, _ := json.Marshal(obj) // a decoded object encodes
	return out
}

// normalizePropsLocked returns props as the server stores them: compact
// JSON of an object whose actions all have ids, or nil for none (absent or
// null). s.mu must be held.
func (s *Server) normalizePropsLocked(raw json.RawMessage) (json.RawMessage, error) {
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("normalize props: %w", err)
	}
	if walkActions(obj, func(action object) bool {
		id, _ := action["id"].(string)
		if id == "" {
			action["id"] = s.newIDLocked("action")
		}
		return id == ""
	}) {
		return json.Marshal(obj) // numbers stay as written
	}
	var buf bytes.Buffer
	err = json.Compact(&buf, raw)
	return buf.Bytes(), err
}

// isValidID reports whether id looks like a Mattermost id (model.IsValidId).
func isValidID(id string) bool {
	return len(id) == idLen && !strings.ContainsFunc(id, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

// appError is Mattermost's error JSON (model.AppError).
type appError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
	RequestID     string `json:"request_id,omitempty"`
	StatusCode    int    `json:"status_code"`
}

func newAppError(status int, id, message string) *appError {
	return &appError{ID: id, Message: message, StatusCode: status}
}

// Mattermost's answers to a route it does not serve, to a call without a
// valid token, and to a call the session may not make (which is also its
// answer to many calls about things that do not exist).
var (
	errNotFound       = newAppError(http.StatusNotFound, "api.context.404.app_error", "Sorry, we could not find the page.")
	errSessionExpired = newAppError(http.StatusUnauthorized, "api.context.session_expired.app_error", "Invalid or expired session, please login again.")
	errPermissions    = newAppError(http.StatusForbidden, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
)

func errInvalidURLParam(name string) *appError {
	return newAppError(http.StatusBadRequest, "api.context.invalid_url_param.app_error", "Invalid or missing "+name+" parameter in request URL.")
}

func errInvalidBodyParam(name string) *appError {
	return newAppError(http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing "+name+" in request body.")
}

// writeFault answers a REST call with an injected failure: an outage as a
// proxy in front of a Mattermost that is down answers, a 429 as
// Mattermost's rate limiter answers (always with a Retry-After header), and
// any other status with an AppError.
func writeFault(w http.ResponseWriter, f fake.Fault) {
	switch seconds := strconv.Itoa(f.RetryAfterSeconds()); {
	case f.Outage:
		writeDown(w)
	case f.Status == http.StatusTooManyRequests:
		for key, value := range map[string]string{"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": seconds, "Retry-After": seconds} {
			w.Header().Set(key, value)
		}
		http.Error(w, "limit exceeded", http.StatusTooManyRequests)
	case f.Status == http.StatusServiceUnavailable:
		writeAppError(w, newAppError(f.Status, "api.context.server_busy.app_error", "Server is busy, non-critical services are temporarily unavailable."))
	default:
		writeAppError(w, newAppError(f.Status, "mattermosttest.fail_next.app_error", http.StatusText(f.Status)))
	}
}

func writeAppError(w http.ResponseWriter, e *appError) {
	answer := *e
	answer.RequestID = w.Header().Get("X-Request-Id")
	fake.WriteJSON(w, answer.StatusCode, answer)
}

func writeDown(w http.ResponseWriter) {
	http.Error(w, "503 Service Unavailable: mattermost is down", http.StatusServiceUnavailable)
}

// authorized reports whether the request carries the bot's token, as an
// "Authorization: Bearer" or "Token" header or an access_token query
// parameter, which Mattermost all accept.
func authorized(r *http.Request) bool {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if found && (strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "token")) {
		return strings.TrimSpace(token) == Token
	}
	return r.URL.Query().Get("access_token") == Token
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", fmt.Sprintf("request%019d", s.requests.Add(1)))
	w.Header().Set("X-Version-Id", serverVersion)
	if r.URL.Path == "/api/v4/websocket" {
		s.serveWebSocket(w, r)
		return
	}
	if f, failed := s.Store.Next(); failed {
		writeFault(w, f)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	s.mux.ServeHTTP(w, r)
}

func fail(e *appError) (int, any) {
	return e.StatusCode, e
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}

func (s *Server) clientConfig(r *http.Request) (int, any) {
	if format := r.URL.Query().Get("format"); format != "" && format != "old" {
		return fail(errInvalidURLParam("format"))
	}
	return http.StatusOK, map[string]string{
		"Version": serverVersion, "BuildNumber": serverVersion, "BuildHash": "mattermosttest",
		"BuildEnterpriseReady": "false", "SiteURL": s.URL(), "SiteName": "Mattermost",
		"MaxPostSize": strconv.Itoa(maxPostRunes), "MaxFileSize": strconv.Itoa(maxBodyBytes),
		"EnablePostUsernameOverride": "false", "EnablePostIconOverride": "false",
		"EnableFileAttachments": "true", "ExperimentalEnablePostMetadata": "true",
	}
}

// getUser serves GET /users/{user_id} for the bot ("me" or its id) and the
// users the server has seen.
func (s *Server) getUser(r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("user_id")
	if id == "me" {
		id = BotUserID
	}
	name, known := s.users[id]
	if !known {
		return fail(newAppError(http.StatusNotFound, "app.user.missing_account.const", "Unable to find the user."))
	}
	u := object{
		"id": id, "create_at": 0, "update_at": 0, "delete_at": 0, "username": name,
		"auth_data": "", "auth_service": "", "email": name + "@example.com", "nickname": "",
		"first_name": "", "last_name": "", "position": "", "roles": "system_user", "locale": "en",
		"timezone":              object{"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
		"disable_welcome_email": false, "is_bot": id == BotUserID,
	}
	if id == BotUserID {
		u["bot_description"] = "kubechat test bot"
	}
	return http.StatusOK, u
}

func (s *Server) getTeamsForUser(r *http.Request) (int, any) {
	if id := r.PathValue("user_id"); id != "me" && id != BotUserID {
		return fail(errPermissions)
	}
	return http.StatusOK, []object{teamJSON()}
}

// getTeam serves GET /teams/{team_id} and GET /teams/name/{team_name}.
func (s *Server) getTeam(r *http.Request) (int, any) {
	switch {
	case r.PathValue("team_id") != "" && r.PathValue("team_id") != TeamID:
		return fail(newAppError(http.StatusNotFound, "app.team.get.find.app_error", "Unable to find the existing team."))
	case r.PathValue("team_name") != "" && r.PathValue("team_name") != TeamName:
		return fail(newAppError(http.StatusNotFound, "app.team.get_by_name.missing.app_error", "Unable to find the existing team."))
	}
	return http.StatusOK, teamJSON()
}

func teamJSON() object {
	return object{
		"id": TeamID, "create_at": 0, "update_at": 0, "delete_at": 0, "display_name": "Platform",
		"name": TeamName, "description": "", "email": "", "type": "O", "company_name": "",
		"allowed_domains": "", "invite_id": "", "allow_open_invite": false, "scheme_id": nil,
		"group_constrained": nil, "policy_id": nil, "cloud_limits_archived": false,
	}
}

// getChannel serves GET /channels/{channel_id} and GET
// /teams/name/{team_name}/channels/name/{channel_name}.
func (s *Server) getChannel(r *http.Request) (int, any) {
	if r.PathValue("team_name") != "" {
		if status, answer := s.getTeam(r); status != http.StatusOK {
			return status, answer
		}
		ch, ok := s.Store.ChannelNamed(r.PathValue("channel_name"))
		if !ok || ch.User != "" {
			return fail(newAppError(http.StatusNotFound, "app.channel.get_by_name.missing.app_error", "Channel does not exist."))
		}
		return http.StatusOK, s.channelJSON(ch)
	}
	ch, ok := s.Store.Channel(r.PathValue("channel_id"))
	if !ok {
		return fail(newAppError(http.StatusNotFound, "app.channel.get.existing.app_error", "Unable to find the existing channel."))
	}
	return http.StatusOK, s.channelJSON(ch)
}

// createDirectChannel serves POST /channels/direct, whose body is the two
// users' ids; one must be the bot's. It answers 201 with the channel, which
// it creates the first time.
func (s *Server) createDirectChannel(r *http.Request) (int, any) {
	var ids []string
	if err := decodeBody(r, &ids); err != nil || len(ids) != 2 || ids[0] == "" || ids[1] == "" {
		return fail(errInvalidBodyParam("user_ids"))
	}
	if !slices.Contains(ids, BotUserID) {
		return fail(errPermissions)
	}
	other := ids[0]
	if other == BotUserID {
		other = ids[1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return http.StatusCreated, s.channelJSON(s.directChannelLocked(other))
}

// postBody is a Post as a client sends it, for a create, an update (the
// whole post) or a patch (where null or absent fields leave the post's).
type postBody struct {
	ID            string           `json:"id"`
	ChannelID     string           `json:"channel_id"`
	RootID        string           `json:"root_id"`
	Message       *string          `json:"message"`
	Type          string           `json:"type"`
	Props         *json.RawMessage `json:"props"`
	FileIDs       *[]string        `json:"file_ids"`
	PendingPostID string           `json:"pending_post_id"`
	IsPinned      *bool            `json:"is_pinned"`
}

// checkPost validates a post's message, type and props as Mattermost's
// Post.IsValid does. A client may create an ordinary post, a message
// attachment post, or a custom or system type.
func checkPost(message, typ string, props json.RawMessage) *appError {
	switch {
	case utf8.RuneCountInString(message) > maxPostRunes:
		return newAppError(http.StatusBadRequest, "model.post.is_valid.message_length.app_error", "Message property is longer than the maximum permitted length.")
	case typ != "" && typ != "slack_attachment" && typ != "me" && !strings.HasPrefix(typ, "custom_") && !strings.HasPrefix(typ, "system_"):
		return newAppError(http.StatusBadRequest, "model.post.is_valid.type.app_error", "Invalid type.")
	case utf8.RuneCount(props) > maxPropsRunes:
		return newAppError(http.StatusBadRequest, "model.post.is_valid.props.app_error", "Invalid props.")
	}
	return nil
}

// createPost serves POST /posts: the bot posts into a channel, answered
// with 201 and the post.
func (s *Server) createPost(r *http.Request) (int, any) {
	var body postBody
	if err := decodeBody(r, &body); err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.Store.Channel(body.ChannelID); !ok {
		return fail(errPermissions) // Mattermost checks create_post permission first.
	}
	props, err := s.normalizePropsLocked(*cmp.Or(body.Props, new(json.RawMessage)))
	if err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	message := *cmp.Or(body.Message, new(string))
	if e := checkPost(message, body.Type, props); e != nil {
		return fail(e)
	}
	if body.RootID != "" && !s.isRoot(body.RootID, body.ChannelID) {
		return fail(newAppError(http.StatusBadRequest, "api.post.create_post.root_id.app_error", "Invalid RootId parameter."))
	}
	id := s.newIDLocked("post")
	p := s.addPostLocked(fake.Message[post]{
		ID: id, Channel: body.ChannelID, Thread: body.RootID, Author: BotUserID, Text: message,
		Files: s.attachableFiles(*cmp.Or(body.FileIDs, new([]string)), body.ChannelID, id),
		X:     post{props: props, typ: body.Type, pendingID: body.PendingPostID},
	}, nil)
	return http.StatusCreated, s.clientPost(p)
}

func (s *Server) isRoot(postID, channelID string) bool {
	root, ok := s.Store.Message(postID)
	return ok && root.Thread == "" && root.Channel == channelID
}

func (s *Server) getPost(r *http.Request) (int, any) {
	p, ok := s.Store.Message(r.PathValue("post_id"))
	if !ok {
		return fail(newAppError(http.StatusNotFound, "app.post.get.app_error", "Unable to get post."))
	}
	return http.StatusOK, s.clientPost(p)
}

// updatePost serves PUT /posts/{post_id} (Client4.UpdatePost): the body is
// the whole post, whose id must be the URL's. Its message and props replace
// the post's, even when empty; file_ids do when present.
func (s *Server) updatePost(r *http.Request) (int, any) {
	var body postBody
	if err := decodeBody(r, &body); err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	if body.ID != r.PathValue("post_id") {
		return fail(errInvalidBodyParam("id"))
	}
	return s.edit(r.PathValue("post_id"), postBody{
		Message: cmp.Or(body.Message, new(string)), Props: cmp.Or(body.Props, new(json.RawMessage)),
		FileIDs: body.FileIDs, IsPinned: cmp.Or(body.IsPinned, new(bool)),
	})
}

// patchPost serves PUT /posts/{post_id}/patch (Client4.PatchPost). Props
// in the patch replace the post's props as a whole.
func (s *Server) patchPost(r *http.Request) (int, any) {
	var body postBody
	if err := decodeBody(r, &body); err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	return s.edit(r.PathValue("post_id"), body)
}

// edit applies the message, props, file ids and pinning the body has (nil
// fields keep the post's) to one of the bot's posts, which it must be: a
// post that does not exist or is not the bot's gets 403.
func (s *Server) edit(id string, body postBody) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.Store.Message(id)
	if !ok || p.Author != BotUserID {
		return fail(errPermissions)
	}
	props := p.X.props
	if body.Props != nil {
		var err error
		if props, err = s.normalizePropsLocked(*body.Props); err != nil {
			return fail(errInvalidBodyParam("post"))
		}
	}
	message := *cmp.Or(body.Message, &p.Text)
	if e := checkPost(message, p.X.typ, props); e != nil {
		return fail(e)
	}
	if body.FileIDs != nil {
		p.Files = s.attachableFiles(*body.FileIDs, p.Channel, p.ID)
	}
	p.X.pinned = *cmp.Or(body.IsPinned, &p.X.pinned)
	return http.StatusOK, s.clientPost(s.editPostLocked(p, message, props))
}

type upload struct {
	name    string
	content []byte
}

// readUploads reads an upload request: a multipart form with a channel_id
// field (or query parameter), client_ids fields and "files" parts, as
// Client4.UploadFile sends it, or a raw body named by the channel_id and
// filename query parameters, as Client4.UploadFileAsRequestBody sends it.
func readUploads(r *http.Request) (channelID string, clientIDs []string, uploads []upload, e *appError) {
	channelID, name := r.URL.Query().Get("channel_id"), r.URL.Query().Get("filename")
	var err error
	switch {
	case fake.MediaType(r) == "multipart/form-data":
		err = fake.ReadParts(r, func(part *multipart.Part, data []byte) {
			switch part.FormName() {
			case "channel_id":
				channelID = string(data)
			case "client_ids":
				clientIDs = append(clientIDs, string(data))
			case "files":
				uploads = append(uploads, upload{name: path.Base(part.FileName()), content: data})
			}
		})
	case name == "":
		return "", nil, nil, errInvalidURLParam("filename")
	default:
		var content []byte
		content, err = io.ReadAll(r.Body)
		uploads = []upload{{name: name, content: content}}
	}
	switch {
	case fake.TooLarge(err):
		return "", nil, nil, newAppError(http.StatusRequestEntityTooLarge, "api.file.upload_file.too_large_detailed.app_error", "Unable to upload file. File is too large.")
	case err != nil:
		return "", nil, nil, newAppError(http.StatusBadRequest, "api.file.upload_file.bad_parse.app_error", "Unable to upload file. Header cannot be parsed.")
	}
	return channelID, clientIDs, uploads, nil
}

// uploadFiles serves POST /files, answering 201 with the files' FileInfos.
func (s *Server) uploadFiles(r *http.Request) (int, any) {
	channelID, clientIDs, uploads, e := readUploads(r)
	switch _, known := s.Store.Channel(channelID); {
	case e != nil:
		return fail(e)
	case channelID == "":
		return fail(errInvalidURLParam("channel_id"))
	case len(uploads) == 0:
		return fail(newAppError(http.StatusBadRequest, "api.file.upload_file.no_file.app_error", "Unable to upload file. No file in request."))
	case !known:
		return fail(errPermissions) // Mattermost checks upload_file permission on the channel.
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	infos := []object{}
	for _, u := range uploads {
		f := s.Store.AddFile(fake.File{
			ID: s.newIDLocked("file"), Name: u.name, Content: string(u.content), Channel: channelID, Author: BotUserID,
			ContentType: cmp.Or(mime.TypeByExtension(path.Ext(u.name)), http.DetectContentType(u.content)), Created: time.UnixMilli(s.now()),
		})
		infos = append(infos, object{
			"id": f.ID, "user_id": f.Author, "channel_id": f.Channel, "post_id": f.Message,
			"create_at": f.Created.UnixMilli(), "update_at": f.Created.UnixMilli(), "delete_at": 0, "name": f.Name,
			"extension": strings.TrimPrefix(path.Ext(f.Name), "."), "size": len(f.Content),
			"mime_type": f.ContentType, "width": 0, "height": 0, "has_preview_image": false,
			"mini_preview": nil, "remote_id": "", "archived": false,
		})
	}
	return http.StatusCreated, object{"file_infos": infos, "client_ids": append([]string{}, clientIDs...)}
}

// integrationRequest is what Mattermost posts to an action's integration
// URL (model.PostActionIntegrationRequest). Note the team's name goes in
// "team_domain".
type integrationRequest struct {
	UserID      string `json:"user_id"`
	UserName    string `json:"user_name"`
	ChannelID   string `json:"channel_id"`
	ChannelName string `json:"channel_name"`
	TeamID      string `json:"team_id"`
	TeamName    string `json:"team_domain"`
	PostID      string `json:"post_id"`
	TriggerID   string `json:"trigger_id"`
	Type        string `json:"type"`
	DataSource  string `json:"data_source"`
	Context     object `json:"context,omitempty"`
}

type postAction struct {
	Type        string `json:"type"`
	DataSource  string `json:"data_source"`
	Integration *struct {
		URL     string `json:"url"`
		Context object `json:"context"`
	} `json:"integration"`
}

// findAction returns the action with the id among the props' attachments,
// if it has an integration to call.
func findAction(props json.RawMessage, actionID string) (found postAction, ok bool) {
	if obj, err := decodeObject(props); err == nil {
		walkActions(obj, func(action object) bool {
			if id, _ := action["id"].(string); !ok && id == actionID {
				data, _ := json.Marshal(action) // a decoded object encodes
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.UseNumber()
				ok = dec.Decode(&found) == nil
			}
			return false
		})
	}
	return found, ok && found.Integration != nil && found.Integration.URL != ""
}

// Click plays the user clicking the interactive button, or choosing
// selectedOption in the interactive menu, whose action has actionID in the
// post's attachments, as Mattermost does when its client calls POST
// /api/v4/posts/{post_id}/actions/{action_id}: it posts the JSON of
// model.PostActionIntegrationRequest to the action's integration URL, with
// the integration's context and, for a select with an option chosen,
// data_source and context["selected_option"]. It returns the integration's
// HTTP status and body. When the integration answers 200 with a
// model.PostActionIntegrationResponse whose "update" is set, Click applies
// it as Mattermost does: the update's message replaces the post's, even
// when empty; its props replace the post's, keeping from_webhook, from_bot,
// from_plugin, override_username and override_icon_url as they were, unless
// the update has no props, which keeps them all; the edit is counted and
// broadcast. Ephemeral text is not kept.
//
// Click fails without calling the integration if the action id is not
// ASCII letters and digits only, because Mattermost's route then answers
// 404 and the click goes nowhere, or if there is no such post or action.
// It fails after the call if the call fails or a 200 body is not valid JSON.
func (s *Server) Click(postID, userID, actionID, selectedOption string) (status int, body []byte, err error) {
	req, endpoint, err := s.clickRequest(postID, userID, actionID, selectedOption)
	var update json.RawMessage
	if err == nil {
		status, body, update, err = s.callIntegration(endpoint, req)
	}
	if err == nil && update != nil {
		err = s.applyActionUpdate(postID, update)
	}
	return status, body, fake.Wrap(err, "click %s on post %s", actionID, postID)
}

// clickRequest builds the request Mattermost posts to the integration of a
// clicked action and returns it with the integration's URL.
func (s *Server) clickRequest(postID, userID, actionID, selectedOption string) (integrationRequest, string, error) {
	p, known := s.Store.Message(postID)
	action, found := findAction(p.X.props, actionID)
	switch {
	case actionID == "" || strings.ContainsFunc(actionID, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r) }):
		return integrationRequest{}, "", errors.New("action id is not letters and digits only: Mattermost's route /posts/{post_id}/actions/{action_id:[A-Za-z0-9]+} answers 404")
	case userID == "":
		return integrationRequest{}, "", errors.New("no user id")
	case s.Store.Closed():
		return integrationRequest{}, "", fake.ErrClosed
	case !known:
		return integrationRequest{}, "", errors.New("no such post")
	case !found:
		return integrationRequest{}, "", errors.New("no such action with an integration")
	}
	ch, _ := s.Store.Channel(p.Channel)
	teamID, _, _ := channelInfo(ch)
	s.mu.Lock()
	defer s.mu.Unlock()
	trigger := fmt.Sprintf("%s:%s:%d:mattermosttest", s.newIDLocked("trigger"), userID, s.now())
	req := integrationRequest{
		UserID: userID, UserName: s.userNameLocked(userID), ChannelID: ch.ID, ChannelName: ch.Name, TeamID: teamID,
		PostID: p.ID, TriggerID: base64.StdEncoding.EncodeToString([]byte(trigger)), Type: action.Type, Context: action.Integration.Context,
	}
	if teamID == TeamID {
		req.TeamName = TeamName
	}
	if action.Type == "select" && selectedOption != "" {
		if req.Context == nil {
			req.Context = object{}
		}
		req.Context["selected_option"] = selectedOption
		req.DataSource = action.DataSource
	}
	return req, action.Integration.URL, nil
}

// callIntegration posts the request to the integration and returns its
// status, its body and, for a 200 answer with an update, the update.
func (s *Server) callIntegration(endpoint string, req integrationRequest) (int, []byte, json.RawMessage, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("encode integration request: %w", err)
	}
	header := http.Header{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	status, body, err := s.Bot.Call(endpoint, header, payload, maxIntegrationResponseBytes)
	if err != nil || status != http.StatusOK || len(bytes.TrimSpace(body)) == 0 {
		return status, body, nil, err
	}
	var answer struct {
		Update json.RawMessage `json:"update"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return status, body, nil, fmt.Errorf("decode integration %s answer: %w", endpoint, err)
	}
	if string(answer.Update) == "null" {
		answer.Update = nil
	}
	return status, body, answer.Update, nil
}

// applyActionUpdate applies the post an integration answered a click with.
func (s *Server) applyActionUpdate(postID string, update json.RawMessage) error {
	var body struct {
		Message string          `json:"message"`
		Props   json.RawMessage `json:"props"`
	}
	if err := json.Unmarshal(update, &body); err != nil {
		return fmt.Errorf("decode update: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.Store.Message(postID)
	if !ok {
		return errors.New("apply update: post gone")
	}
	props := p.X.props
	if raw := bytes.TrimSpace(body.Props); len(raw) > 0 && string(raw) != "null" {
		merged, err := retainProps(p.X.props, raw)
		if err == nil {
			props, err = s.normalizePropsLocked(merged)
		}
		if err != nil {
			return fmt.Errorf("apply update: %w", err)
		}
	}
	if e := checkPost(body.Message, p.X.typ, props); e != nil {
		return fmt.Errorf("apply update: %s", e.ID)
	}
	s.editPostLocked(p, body.Message, props)
	return nil
}

// retainProps returns the new props with the retained keys as they are in
// the old props: copied when there, removed when not.
func retainProps(old, updated json.RawMessage) (json.RawMessage, error) {
	next, err := decodeObject(updated)
	prev := object{}
	if err == nil && len(old) > 0 {
		prev, err = decodeObject(old)
	}
	if err != nil {
		return nil, fmt.Errorf("retain props: %w", err)
	}
	for _, key := range retainPropKeys {
		if v, ok := prev[key]; ok {
			next[key] = v
		} else {
			delete(next, key)
		}
	}
	return json.Marshal(next)
}
