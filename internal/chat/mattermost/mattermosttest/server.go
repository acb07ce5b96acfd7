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
// Mattermost itself answers in plain text (rate limiting). Faults can be
// injected: failures of the next REST calls (FailNext), an outage (SetDown)
// and dropped websockets (Drop).
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
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/websocket"

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
	// serverVersion is the Mattermost version the server claims to be.
	serverVersion = "10.0.0"
	// maxPostRunes is Mattermost's limit on a post's message, in runes
	// (model.PostMessageMaxRunesV2).
	maxPostRunes = 16383
	// maxPropsRunes is Mattermost's limit on a post's props as JSON, in runes
	// (model.PostPropsMaxRunes).
	maxPropsRunes = 800000
	// maxBodyBytes bounds every request body the server reads.
	maxBodyBytes = 16 << 20
	// maxIntegrationResponseBytes bounds what Click reads of an integration's answer.
	maxIntegrationResponseBytes = 1 << 20
	// integrationTimeout bounds Click's request to an integration, as
	// Mattermost's ServiceSettings.OutgoingIntegrationRequestsTimeout (30s by default) does.
	integrationTimeout = 30 * time.Second
	// idLen is the length of every Mattermost id.
	idLen = 26
)

// channel types, as Mattermost spells them.
const (
	channelOpen   = "O"
	channelDirect = "D"
)

// retainPropKeys are the props Mattermost keeps from the original post when
// an integration's update replaces them (model.PostActionRetainPropKeys).
var retainPropKeys = []string{"from_webhook", "from_bot", "from_plugin", "override_username", "override_icon_url"}

// object is a JSON object in a response or payload.
type object = map[string]any

// errNotConnected is returned when a user event is injected while no
// authenticated websocket is open.
var errNotConnected = errors.New("no authenticated websocket connected")

// Server is a fake Mattermost server on loopback. Create it with New and
// release it with Close. All its methods are safe for concurrent use.
type Server struct {
	http     *httptest.Server
	baseURL  string // scheme and host of http, without a trailing slash
	upgrader websocket.Upgrader
	client   *http.Client   // Click's client for integration URLs
	wg       sync.WaitGroup // the goroutines of websockets
	requests atomic.Int64   // source of X-Request-Id values

	// pingInterval is how often every websocket is pinged and authTimeout
	// how long a websocket may stay unauthenticated. Tests of this package
	// may change them before any websocket connects.
	pingInterval time.Duration
	authTimeout  time.Duration

	faults  fake.Faults    // injected into REST calls
	changes fake.Signal    // notified whenever the state changes, closed by Close
	clock   fake.Monotonic // timestamps, in Unix milliseconds

	mu       sync.Mutex
	closed   bool
	seq      int               // source of ids
	users    map[string]string // usernames by user id
	channels []*channel
	posts    map[string]*post    // by id
	order    map[string][]string // post ids by channel id, in posting order
	files    []*file
	conns    []*conn // open websockets, oldest first
	accepted int     // websockets authenticated so far
}

// channel is a team's open channel or a direct message channel.
type channel struct {
	id          string
	teamID      string // "" for a direct message channel
	name        string
	displayName string
	typ         string // channelOpen or channelDirect
	createAt    int64
	lastPostAt  int64
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

// post is a stored post with what Post leaves out.
type post struct {
	Post
	typ       string
	pendingID string
	pinned    bool
	createAt  int64
	updateAt  int64
	editAt    int64
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

// file is a stored file with what File leaves out.
type file struct {
	File
	userID   string
	postID   string // the post the file is attached to, or ""
	mimeType string
	createAt int64
}

// New starts a fake Mattermost server whose team holds the channels
// "alerts" and "town-square", both joined by the bot.
func New() *Server {
	s := &Server{
		upgrader: websocket.Upgrader{
			CheckOrigin: func(*http.Request) bool { return true },
		},
		client: &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute},
			Timeout:   integrationTimeout,
		},
		pingInterval: defaultPingInterval,
		authTimeout:  defaultAuthTimeout,
		users:        map[string]string{BotUserID: BotName},
		posts:        make(map[string]*post),
		order:        make(map[string][]string),
	}
	for _, seed := range []struct{ name, displayName string }{{"alerts", "Alerts"}, {"town-square", "Town Square"}} {
		s.channels = append(s.channels, &channel{
			id: s.newIDLocked("channel"), teamID: TeamID, name: seed.name,
			displayName: seed.displayName, typ: channelOpen, createAt: s.nowLocked(),
		})
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.baseURL = s.http.URL
	return s
}

// Close closes every websocket with a "going away" close frame, waits for
// their goroutines and shuts the server down. Calling it again does nothing.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := slices.Clone(s.conns)
	s.changes.Close()
	s.mu.Unlock()
	for _, c := range conns {
		c.GoAway()
	}
	s.wg.Wait()
	s.http.Close()
	s.client.CloseIdleConnections()
}

// URL returns the server's address, http://127.0.0.1:PORT, for
// model.NewAPIv4Client, which appends /api/v4.
func (s *Server) URL() string {
	return s.baseURL
}

// WebSocketURL returns the websocket address, ws://127.0.0.1:PORT, for
// model.NewWebSocketClient4, which appends /api/v4/websocket.
func (s *Server) WebSocketURL() string {
	return "ws" + strings.TrimPrefix(s.baseURL, "http")
}

// ChannelID returns the id of the channel with the name, such as "alerts"
// or a direct message channel's "<id1>__<id2>", or "" if there is none.
func (s *Server) ChannelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channelByNameLocked(name); ch != nil {
		return ch.id
	}
	return ""
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
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.order[channelID]
	posts := make([]Post, 0, len(ids))
	for _, id := range ids {
		p := s.posts[id].Post
		p.Props = bytes.Clone(p.Props)
		p.FileIDs = slices.Clone(p.FileIDs)
		posts = append(posts, p)
	}
	return posts
}

// WaitPosts waits until the channel holds at least n posts and returns them
// all. When ctx ends, or the server closes, first it returns the posts so
// far with an error.
func (s *Server) WaitPosts(ctx context.Context, channelID string, n int) ([]Post, error) {
	err := s.changes.Wait(ctx, &s.mu, func() bool { return len(s.order[channelID]) >= n })
	posts := s.Posts(channelID)
	if err != nil {
		return posts, fmt.Errorf("wait for %d posts in %s (have %d): %w", n, channelID, len(posts), err)
	}
	return posts, nil
}

// Files returns the uploaded files, in upload order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	files := make([]File, len(s.files))
	for i, f := range s.files {
		files[i] = f.File
	}
	return files
}

// FailNext makes the next n REST calls fail with the HTTP status, replacing
// any failures still pending; n <= 0 cancels them. Websocket upgrades are
// not REST calls. A 429 is answered as Mattermost's rate limiter answers:
// the plain-text body "limit exceeded", a Retry-After header of retryAfter
// in whole seconds, rounded up, and X-Ratelimit-Limit, X-Ratelimit-Remaining
// (0) and X-Ratelimit-Reset headers. Any other status carries an AppError
// body; a status outside 400-599 is taken as 500.
func (s *Server) FailNext(n, status int, retryAfter time.Duration) {
	s.faults.FailNext(n, fake.ErrorStatus(status), retryAfter)
}

// SetDown starts or ends an outage. While down, every REST call and every
// websocket upgrade gets HTTP 503 with a plain-text body, as from a proxy in
// front of a Mattermost that is down; open websockets stay open (Drop cuts
// them). FailNext failures wait until the outage ends.
func (s *Server) SetDown(down bool) {
	s.faults.SetDown(down)
}

// Calls returns how many REST calls the server has received, failed and
// rejected calls included, websocket upgrades not.
func (s *Server) Calls() int {
	return s.faults.Calls()
}

// newIDLocked returns a 26-character id never returned before: the kind,
// then a zero-padded number. s.mu must be held.
func (s *Server) newIDLocked(kind string) string {
	s.seq++
	return fmt.Sprintf("%s%0*d", kind, idLen-len(kind), s.seq)
}

// nowLocked returns the time in Unix milliseconds, later than any returned
// before. s.mu must be held.
func (s *Server) nowLocked() int64 {
	return s.clock.Next(time.Now().UnixMilli())
}

// userNameLocked returns the user's username. A user the server has not
// seen before is added, with its id as username. s.mu must be held.
func (s *Server) userNameLocked(userID string) string {
	name, ok := s.users[userID]
	if !ok {
		name = userID
		s.users[userID] = name
	}
	return name
}

// channelByNameLocked returns the named channel or nil. s.mu must be held.
func (s *Server) channelByNameLocked(name string) *channel {
	for _, ch := range s.channels {
		if ch.name == name {
			return ch
		}
	}
	return nil
}

// channelByIDLocked returns the channel with the id or nil. s.mu must be held.
func (s *Server) channelByIDLocked(id string) *channel {
	for _, ch := range s.channels {
		if ch.id == id {
			return ch
		}
	}
	return nil
}

// directChannelLocked returns the direct message channel between the bot
// and the user, creating it the first time. s.mu must be held.
func (s *Server) directChannelLocked(userID string) *channel {
	name := directChannelName(BotUserID, userID)
	if ch := s.channelByNameLocked(name); ch != nil {
		return ch
	}
	s.userNameLocked(userID)
	ch := &channel{id: s.newIDLocked("channel"), name: name, typ: channelDirect, createAt: s.nowLocked()}
	s.channels = append(s.channels, ch)
	return ch
}

// directChannelName returns the name Mattermost gives the direct message
// channel of two users (model.GetDMNameFromIds).
func directChannelName(userID1, userID2 string) string {
	if userID1 > userID2 {
		userID1, userID2 = userID2, userID1
	}
	return userID1 + "__" + userID2
}

// addPostLocked stores a new post and broadcasts its posted event, with the
// mentions if there are any. s.mu must be held.
func (s *Server) addPostLocked(p *post, mentions []string) {
	now := s.nowLocked()
	p.createAt, p.updateAt = now, now
	s.posts[p.ID] = p
	s.order[p.ChannelID] = append(s.order[p.ChannelID], p.ID)
	ch := s.channelByIDLocked(p.ChannelID)
	ch.lastPostAt = now
	s.attachFilesLocked(p)
	s.broadcastPostedLocked(ch, p, mentions)
	s.changes.Notify()
}

// editPostLocked records an edit of the post and broadcasts its
// post_edited event. s.mu must be held.
func (s *Server) editPostLocked(p *post, message string, props json.RawMessage) {
	now := s.nowLocked()
	if message != p.Message {
		p.Message = message
		p.editAt = now
	}
	p.Props = props
	p.updateAt = now
	p.Edits++
	s.broadcastPostEditedLocked(p)
	s.changes.Notify()
}

// fileLocked returns the file with the id or nil. s.mu must be held.
func (s *Server) fileLocked(id string) *file {
	for _, f := range s.files {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// attachFilesLocked marks the post's files attached to it. s.mu must be held.
func (s *Server) attachFilesLocked(p *post) {
	for _, id := range p.FileIDs {
		if f := s.fileLocked(id); f != nil {
			f.postID = p.ID
		}
	}
}

// attachableFilesLocked returns the ids of the files that a post in the
// channel may attach: uploaded to that channel and not attached to another
// post. Mattermost drops the other ids. s.mu must be held.
func (s *Server) attachableFilesLocked(ids []string, channelID, postID string) []string {
	var kept []string
	for _, id := range ids {
		f := s.fileLocked(id)
		if f != nil && f.ChannelID == channelID && (f.postID == "" || f.postID == postID) && !slices.Contains(kept, id) {
			kept = append(kept, id)
		}
	}
	return kept
}

// replyStatsLocked returns how many replies a root post has and when the
// last one was made. s.mu must be held.
func (s *Server) replyStatsLocked(p *post) (count, lastAt int64) {
	root := cmp.Or(p.RootID, p.ID)
	for _, id := range s.order[p.ChannelID] {
		if reply := s.posts[id]; reply.RootID == root {
			count++
			lastAt = max(lastAt, reply.createAt)
		}
	}
	return count, lastAt
}

// userJSONLocked returns the user as Mattermost's User JSON. s.mu must be held.
func (s *Server) userJSONLocked(userID string) object {
	name := s.userNameLocked(userID)
	u := object{
		"id": userID, "create_at": 0, "update_at": 0, "delete_at": 0, "username": name,
		"auth_data": "", "auth_service": "", "email": name + "@example.com", "nickname": "",
		"first_name": "", "last_name": "", "position": "", "roles": "system_user", "locale": "en",
		"timezone":              object{"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
		"disable_welcome_email": false, "is_bot": userID == BotUserID,
	}
	if userID == BotUserID {
		u["bot_description"] = "kubechat test bot"
	}
	return u
}

// teamJSON returns the team as Mattermost's Team JSON.
func teamJSON() object {
	return object{
		"id": TeamID, "create_at": 0, "update_at": 0, "delete_at": 0, "display_name": "Platform",
		"name": TeamName, "description": "", "email": "", "type": "O", "company_name": "",
		"allowed_domains": "", "invite_id": "", "allow_open_invite": false, "scheme_id": nil,
		"group_constrained": nil, "policy_id": nil, "cloud_limits_archived": false,
	}
}

// json returns the channel as Mattermost's Channel JSON.
func (ch *channel) json() object {
	return object{
		"id": ch.id, "create_at": ch.createAt, "update_at": ch.createAt, "delete_at": 0,
		"team_id": ch.teamID, "type": ch.typ, "display_name": ch.displayName, "name": ch.name,
		"header": "", "purpose": "", "last_post_at": ch.lastPostAt, "total_msg_count": 0,
		"extra_update_at": 0, "creator_id": "", "scheme_id": nil, "props": nil,
		"group_constrained": nil, "shared": nil, "total_msg_count_root": 0, "policy_id": nil,
		"last_root_post_at": ch.lastPostAt,
	}
}

// clientPostLocked returns the post as Mattermost sends it to clients, as
// Post JSON without the actions' integrations. s.mu must be held.
func (s *Server) clientPostLocked(p *post) object {
	replies, lastReplyAt := s.replyStatsLocked(p)
	out := object{
		"id": p.ID, "create_at": p.createAt, "update_at": p.updateAt, "edit_at": p.editAt,
		"delete_at": 0, "is_pinned": p.pinned, "user_id": p.UserID, "channel_id": p.ChannelID,
		"root_id": p.RootID, "original_id": "", "message": p.Message, "type": p.typ,
		"props": clientProps(p.Props), "hashtags": "", "pending_post_id": p.pendingID,
		"reply_count": replies, "last_reply_at": lastReplyAt, "participants": nil,
		"metadata": object{},
	}
	if len(p.FileIDs) > 0 {
		out["file_ids"] = slices.Clone(p.FileIDs)
	}
	return out
}

// decodeObject decodes a JSON object, keeping its numbers as they are written.
func decodeObject(data []byte) (object, error) {
	var obj object
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decode object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("decode object: not an object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode object: data after the object")
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
	if err != nil {
		return props
	}
	stripped := walkActions(obj, func(action object) bool {
		_, ok := action["integration"]
		delete(action, "integration")
		return ok
	})
	if !stripped {
		return props
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return props
	}
	return out
}

// normalizePropsLocked returns props as the server stores them: compact
// JSON of an object whose actions all have ids, or nil for none (absent or
// null). s.mu must be held.
func (s *Server) normalizePropsLocked(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	obj, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("normalize props: %w", err)
	}
	named := walkActions(obj, func(action object) bool {
		if id, _ := action["id"].(string); id != "" {
			return false
		}
		action["id"] = s.newIDLocked("action")
		return true
	})
	if named {
		out, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("normalize props: %w", err)
		}
		return out, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("normalize props: %w", err)
	}
	return buf.Bytes(), nil
}

// isValidID reports whether id looks like a Mattermost id (model.IsValidId).
func isValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for _, r := range id {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) {
			return false
		}
	}
	return true
}

// validPostType reports whether a client may create a post of the type:
// an ordinary post, a message attachment post, or a custom or system type.
func validPostType(typ string) bool {
	return typ == "" || typ == "slack_attachment" || typ == "me" ||
		strings.HasPrefix(typ, "custom_") || strings.HasPrefix(typ, "system_")
}

// appError is Mattermost's error JSON (model.AppError).
type appError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
	RequestID     string `json:"request_id,omitempty"`
	StatusCode    int    `json:"status_code"`
}

// newAppError returns an AppError with Mattermost's id and English message.
func newAppError(status int, id, message string) *appError {
	return &appError{ID: id, Message: message, StatusCode: status}
}

// errNotFound is Mattermost's answer to a route it does not serve.
func errNotFound() *appError {
	return newAppError(http.StatusNotFound, "api.context.404.app_error", "Sorry, we could not find the page.")
}

// errSessionExpired is Mattermost's answer to a call without a valid token.
func errSessionExpired() *appError {
	return newAppError(http.StatusUnauthorized, "api.context.session_expired.app_error", "Invalid or expired session, please login again.")
}

// errPermissions is Mattermost's answer to a call the session may not make,
// and to many calls about things that do not exist.
func errPermissions() *appError {
	return newAppError(http.StatusForbidden, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
}

// errInvalidURLParam is Mattermost's answer to a malformed path or query parameter.
func errInvalidURLParam(name string) *appError {
	return newAppError(http.StatusBadRequest, "api.context.invalid_url_param.app_error", "Invalid or missing "+name+" parameter in request URL.")
}

// errInvalidBodyParam is Mattermost's answer to a malformed request body.
func errInvalidBodyParam(name string) *appError {
	return newAppError(http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing "+name+" in request body.")
}

// errMessageLength is Mattermost's answer to a message over maxPostRunes
// runes (Post.IsValid).
func errMessageLength() *appError {
	return newAppError(http.StatusBadRequest, "model.post.is_valid.message_length.app_error", "Message property is longer than the maximum permitted length.")
}

// writeFault answers a REST call with an injected failure: an outage as a
// proxy in front of a Mattermost that is down answers, a 429 as
// Mattermost's rate limiter answers (always with a Retry-After header), and
// any other status with an AppError.
func writeFault(w http.ResponseWriter, requestID string, f fake.Fault) {
	switch {
	case f.Outage:
		writeDown(w)
	case f.Status == http.StatusTooManyRequests:
		seconds := strconv.Itoa(f.RetryAfterSeconds())
		w.Header().Set("X-Ratelimit-Limit", "10")
		w.Header().Set("X-Ratelimit-Remaining", "0")
		w.Header().Set("X-Ratelimit-Reset", seconds)
		w.Header().Set("Retry-After", seconds)
		http.Error(w, "limit exceeded", http.StatusTooManyRequests)
	case f.Status == http.StatusServiceUnavailable:
		writeAppError(w, requestID, newAppError(f.Status, "api.context.server_busy.app_error", "Server is busy, non-critical services are temporarily unavailable."))
	default:
		writeAppError(w, requestID, newAppError(f.Status, "mattermosttest.fail_next.app_error", http.StatusText(f.Status)))
	}
}

// writeJSON answers with the value as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"id":"api.marshal_error","message":"` + http.StatusText(status) + `","detailed_error":"","status_code":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeAppError answers with the AppError.
func writeAppError(w http.ResponseWriter, requestID string, e *appError) {
	e.RequestID = requestID
	writeJSON(w, e.StatusCode, e)
}

// writeDown answers a request during an outage.
func writeDown(w http.ResponseWriter) {
	http.Error(w, "503 Service Unavailable: mattermost is down", http.StatusServiceUnavailable)
}

// route is one REST route: the method and the path below /api/v4/, whose
// "*" segments match any one segment and are passed to serve.
type route struct {
	method  string
	pattern string
	public  bool // served without a token
	serve   func(s *Server, r *http.Request, args []string) (int, any)
}

// routes are the REST routes the server serves; the first match wins.
var routes = []route{
	{http.MethodGet, "system/ping", true, (*Server).ping},
	{http.MethodGet, "config/client", true, (*Server).clientConfig},
	{http.MethodGet, "users/me", false, (*Server).getMe},
	{http.MethodGet, "users/*", false, (*Server).getUser},
	{http.MethodGet, "users/*/teams", false, (*Server).getTeamsForUser},
	{http.MethodGet, "teams/*", false, (*Server).getTeam},
	{http.MethodGet, "teams/name/*", false, (*Server).getTeamByName},
	{http.MethodGet, "teams/name/*/channels/name/*", false, (*Server).getChannelByName},
	{http.MethodGet, "channels/*", false, (*Server).getChannel},
	{http.MethodPost, "channels/direct", false, (*Server).createDirectChannel},
	{http.MethodPost, "posts", false, (*Server).createPost},
	{http.MethodGet, "posts/*", false, (*Server).getPost},
	{http.MethodPut, "posts/*", false, (*Server).updatePost},
	{http.MethodPut, "posts/*/patch", false, (*Server).patchPost},
	{http.MethodPost, "files", false, (*Server).uploadFiles},
}

// match returns the route serving the method and path segments, and the
// segments its wildcards matched, or nil.
func match(method string, segments []string) (*route, []string) {
	for i := range routes {
		rt := &routes[i]
		pattern := strings.Split(rt.pattern, "/")
		if rt.method != method || len(pattern) != len(segments) {
			continue
		}
		var args []string
		matched := true
		for j, p := range pattern {
			switch p {
			case "*":
				args = append(args, segments[j])
			case segments[j]:
			default:
				matched = false
			}
		}
		if matched {
			return rt, args
		}
	}
	return nil, nil
}

// apiSegments returns the unescaped path segments below /api/v4/, or false
// if the path is not below it.
func apiSegments(u *url.URL) ([]string, bool) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/api/v4/")
	if !ok {
		return nil, false
	}
	segments, err := fake.SplitPath(rest)
	return segments, err == nil
}

// authorized reports whether the request carries the bot's token, as an
// "Authorization: Bearer" or "Token" header or an access_token query
// parameter, which Mattermost all accept.
func authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	for _, scheme := range []string{"bearer ", "token "} {
		if len(auth) > len(scheme) && strings.EqualFold(auth[:len(scheme)], scheme) {
			return strings.TrimSpace(auth[len(scheme):]) == Token
		}
	}
	return r.URL.Query().Get("access_token") == Token
}

// serveHTTP serves every request: the websocket, then the REST routes.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := fmt.Sprintf("request%019d", s.requests.Add(1))
	w.Header().Set("X-Request-Id", requestID)
	w.Header().Set("X-Version-Id", serverVersion)
	segments, ok := apiSegments(r.URL)
	if ok && len(segments) == 1 && segments[0] == "websocket" {
		s.serveWebSocket(w, r)
		return
	}
	if f, failed := s.faults.Next(); failed {
		writeFault(w, requestID, f)
		return
	}
	rt, args := match(r.Method, segments)
	switch {
	case !ok || rt == nil:
		writeAppError(w, requestID, errNotFound())
		return
	case !rt.public && !authorized(r):
		writeAppError(w, requestID, errSessionExpired())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	status, body := rt.serve(s, r, args)
	if e, ok := body.(*appError); ok {
		writeAppError(w, requestID, e)
		return
	}
	writeJSON(w, status, body)
}

// fail returns an AppError as a route's answer.
func fail(e *appError) (int, any) {
	return e.StatusCode, e
}

// decodeBody decodes the request's JSON body into v.
func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}

// ping serves GET /system/ping.
func (s *Server) ping(*http.Request, []string) (int, any) {
	return http.StatusOK, object{"status": "OK"}
}

// clientConfig serves GET /config/client, with or without ?format=old.
func (s *Server) clientConfig(r *http.Request, _ []string) (int, any) {
	if format := r.URL.Query().Get("format"); format != "" && format != "old" {
		return fail(errInvalidURLParam("format"))
	}
	return http.StatusOK, map[string]string{
		"Version": serverVersion, "BuildNumber": serverVersion, "BuildHash": "mattermosttest",
		"BuildEnterpriseReady": "false", "SiteURL": s.baseURL, "SiteName": "Mattermost",
		"MaxPostSize": strconv.Itoa(maxPostRunes), "MaxFileSize": strconv.Itoa(maxBodyBytes),
		"EnablePostUsernameOverride": "false", "EnablePostIconOverride": "false",
		"EnableFileAttachments": "true", "ExperimentalEnablePostMetadata": "true",
	}
}

// getMe serves GET /users/me.
func (s *Server) getMe(*http.Request, []string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return http.StatusOK, s.userJSONLocked(BotUserID)
}

// getUser serves GET /users/{user_id} for the bot and the users the server
// has seen.
func (s *Server) getUser(_ *http.Request, args []string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, known := s.users[args[0]]; !known {
		return fail(newAppError(http.StatusNotFound, "app.user.missing_account.const", "Unable to find the user."))
	}
	return http.StatusOK, s.userJSONLocked(args[0])
}

// getTeamsForUser serves GET /users/{user_id}/teams for the bot ("me" or its id).
func (s *Server) getTeamsForUser(_ *http.Request, args []string) (int, any) {
	if args[0] != "me" && args[0] != BotUserID {
		return fail(errPermissions())
	}
	return http.StatusOK, []object{teamJSON()}
}

// getTeam serves GET /teams/{team_id}.
func (s *Server) getTeam(_ *http.Request, args []string) (int, any) {
	switch {
	case !isValidID(args[0]):
		return fail(errInvalidURLParam("team_id"))
	case args[0] != TeamID:
		return fail(newAppError(http.StatusNotFound, "app.team.get.find.app_error", "Unable to find the existing team."))
	}
	return http.StatusOK, teamJSON()
}

// getTeamByName serves GET /teams/name/{team_name}.
func (s *Server) getTeamByName(_ *http.Request, args []string) (int, any) {
	if args[0] != TeamName {
		return fail(newAppError(http.StatusNotFound, "app.team.get_by_name.missing.app_error", "Unable to find the existing team."))
	}
	return http.StatusOK, teamJSON()
}

// getChannelByName serves GET /teams/name/{team_name}/channels/name/{channel_name}.
func (s *Server) getChannelByName(_ *http.Request, args []string) (int, any) {
	if args[0] != TeamName {
		return fail(newAppError(http.StatusNotFound, "app.team.get_by_name.missing.app_error", "Unable to find the existing team."))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelByNameLocked(args[1])
	if ch == nil || ch.teamID != TeamID {
		return fail(newAppError(http.StatusNotFound, "app.channel.get_by_name.missing.app_error", "Channel does not exist."))
	}
	return http.StatusOK, ch.json()
}

// getChannel serves GET /channels/{channel_id}.
func (s *Server) getChannel(_ *http.Request, args []string) (int, any) {
	if !isValidID(args[0]) {
		return fail(errInvalidURLParam("channel_id"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelByIDLocked(args[0])
	if ch == nil {
		return fail(newAppError(http.StatusNotFound, "app.channel.get.existing.app_error", "Unable to find the existing channel."))
	}
	return http.StatusOK, ch.json()
}

// createDirectChannel serves POST /channels/direct, whose body is the two
// users' ids; one must be the bot's. It answers 201 with the channel, which
// it creates the first time.
func (s *Server) createDirectChannel(r *http.Request, _ []string) (int, any) {
	var ids []string
	if err := decodeBody(r, &ids); err != nil || len(ids) != 2 || ids[0] == "" || ids[1] == "" {
		return fail(errInvalidBodyParam("user_ids"))
	}
	other := ids[0]
	switch BotUserID {
	case ids[0]:
		other = ids[1]
	case ids[1]:
	default:
		return fail(errPermissions())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return http.StatusCreated, s.directChannelLocked(other).json()
}

// postBody is a Post as a client sends it.
type postBody struct {
	ID            string          `json:"id"`
	ChannelID     string          `json:"channel_id"`
	RootID        string          `json:"root_id"`
	Message       string          `json:"message"`
	Type          string          `json:"type"`
	Props         json.RawMessage `json:"props"`
	FileIDs       []string        `json:"file_ids"`
	PendingPostID string          `json:"pending_post_id"`
	IsPinned      bool            `json:"is_pinned"`
}

// checkPost validates a post's message, type and props as Mattermost's
// Post.IsValid does.
func checkPost(message, typ string, props json.RawMessage) *appError {
	switch {
	case utf8.RuneCountInString(message) > maxPostRunes:
		return errMessageLength()
	case !validPostType(typ):
		return newAppError(http.StatusBadRequest, "model.post.is_valid.type.app_error", "Invalid type.")
	case utf8.RuneCount(props) > maxPropsRunes:
		return newAppError(http.StatusBadRequest, "model.post.is_valid.props.app_error", "Invalid props.")
	}
	return nil
}

// createPost serves POST /posts: the bot posts into a channel, answered
// with 201 and the post.
func (s *Server) createPost(r *http.Request, _ []string) (int, any) {
	var body postBody
	if err := decodeBody(r, &body); err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channelByIDLocked(body.ChannelID)
	if ch == nil {
		return fail(errPermissions()) // Mattermost checks create_post permission first.
	}
	props, err := s.normalizePropsLocked(body.Props)
	if err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	if e := checkPost(body.Message, body.Type, props); e != nil {
		return fail(e)
	}
	if body.RootID != "" {
		root := s.posts[body.RootID]
		if root == nil || root.RootID != "" || root.ChannelID != ch.id {
			return fail(newAppError(http.StatusBadRequest, "api.post.create_post.root_id.app_error", "Invalid RootId parameter."))
		}
	}
	p := &post{
		Post: Post{
			ID: s.newIDLocked("post"), ChannelID: ch.id, RootID: body.RootID, Message: body.Message,
			UserID: BotUserID, Props: props,
		},
		typ: body.Type, pendingID: body.PendingPostID,
	}
	p.FileIDs = s.attachableFilesLocked(body.FileIDs, ch.id, p.ID)
	s.addPostLocked(p, nil)
	return http.StatusCreated, s.clientPostLocked(p)
}

// getPost serves GET /posts/{post_id}.
func (s *Server) getPost(_ *http.Request, args []string) (int, any) {
	if !isValidID(args[0]) {
		return fail(errInvalidURLParam("post_id"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.posts[args[0]]
	if p == nil {
		return fail(newAppError(http.StatusNotFound, "app.post.get.app_error", "Unable to get post."))
	}
	return http.StatusOK, s.clientPostLocked(p)
}

// editablePostLocked returns the post the bot may edit, or the AppError
// Mattermost answers: 403 for a post that does not exist or is not the
// bot's. s.mu must be held.
func (s *Server) editablePostLocked(id string) (*post, *appError) {
	p := s.posts[id]
	if p == nil || p.UserID != BotUserID {
		return nil, errPermissions()
	}
	return p, nil
}

// updatePost serves PUT /posts/{post_id} (Client4.UpdatePost): the body is
// the whole post, whose id must be the URL's. Its message and props replace
// the post's, even when empty; file_ids do when present.
func (s *Server) updatePost(r *http.Request, args []string) (int, any) {
	if !isValidID(args[0]) {
		return fail(errInvalidURLParam("post_id"))
	}
	var body postBody
	if err := decodeBody(r, &body); err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	if body.ID != args[0] {
		return fail(errInvalidBodyParam("id"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.editablePostLocked(args[0])
	if e != nil {
		return fail(e)
	}
	props, err := s.normalizePropsLocked(body.Props)
	if err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	if e := checkPost(body.Message, p.typ, props); e != nil {
		return fail(e)
	}
	if body.FileIDs != nil {
		p.FileIDs = s.attachableFilesLocked(body.FileIDs, p.ChannelID, p.ID)
		s.attachFilesLocked(p)
	}
	p.pinned = body.IsPinned
	s.editPostLocked(p, body.Message, props)
	return http.StatusOK, s.clientPostLocked(p)
}

// patchBody is a PostPatch as a client sends it; null or absent fields
// leave the post's as they are.
type patchBody struct {
	Message  *string          `json:"message"`
	Props    *json.RawMessage `json:"props"`
	FileIDs  *[]string        `json:"file_ids"`
	IsPinned *bool            `json:"is_pinned"`
}

// patchPost serves PUT /posts/{post_id}/patch (Client4.PatchPost). Props
// in the patch replace the post's props as a whole.
func (s *Server) patchPost(r *http.Request, args []string) (int, any) {
	if !isValidID(args[0]) {
		return fail(errInvalidURLParam("post_id"))
	}
	var body patchBody
	if err := decodeBody(r, &body); err != nil {
		return fail(errInvalidBodyParam("post"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, e := s.editablePostLocked(args[0])
	if e != nil {
		return fail(e)
	}
	message, props := p.Message, p.Props
	if body.Message != nil {
		message = *body.Message
	}
	if body.Props != nil {
		var err error
		if props, err = s.normalizePropsLocked(*body.Props); err != nil {
			return fail(errInvalidBodyParam("post"))
		}
	}
	if e := checkPost(message, p.typ, props); e != nil {
		return fail(e)
	}
	if body.FileIDs != nil {
		p.FileIDs = s.attachableFilesLocked(*body.FileIDs, p.ChannelID, p.ID)
		s.attachFilesLocked(p)
	}
	if body.IsPinned != nil {
		p.pinned = *body.IsPinned
	}
	s.editPostLocked(p, message, props)
	return http.StatusOK, s.clientPostLocked(p)
}

// upload is one file of an upload request.
type upload struct {
	name    string
	content []byte
}

// readUploads reads an upload request: a multipart form with a channel_id
// field (or query parameter), client_ids fields and "files" parts, as
// Client4.UploadFile sends it, or a raw body named by the channel_id and
// filename query parameters, as Client4.UploadFileAsRequestBody sends it.
func readUploads(r *http.Request) (channelID string, clientIDs []string, uploads []upload, e *appError) {
	channelID = r.URL.Query().Get("channel_id")
	badParse := newAppError(http.StatusBadRequest, "api.file.upload_file.bad_parse.app_error", "Unable to upload file. Header cannot be parsed.")
	tooLarge := newAppError(http.StatusRequestEntityTooLarge, "api.file.upload_file.too_large_detailed.app_error", "Unable to upload file. File is too large.")
	readAll := func(rd io.Reader) ([]byte, *appError) {
		data, err := io.ReadAll(rd)
		switch {
		case fake.TooLarge(err):
			return nil, tooLarge
		case err != nil:
			return nil, badParse
		}
		return data, nil
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "multipart/form-data" {
		name := r.URL.Query().Get("filename")
		if name == "" {
			return "", nil, nil, errInvalidURLParam("filename")
		}
		content, e := readAll(r.Body)
		if e != nil {
			return "", nil, nil, e
		}
		return channelID, nil, []upload{{name: name, content: content}}, nil
	}
	reader, err := r.MultipartReader()
	if err != nil {
		return "", nil, nil, badParse
	}
	for {
		part, err := reader.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, nil, badParse
		}
		data, e := readAll(part)
		if e != nil {
			return "", nil, nil, e
		}
		switch part.FormName() {
		case "channel_id":
			channelID = string(data)
		case "client_ids":
			clientIDs = append(clientIDs, string(data))
		case "files":
			uploads = append(uploads, upload{name: path.Base(part.FileName()), content: data})
		}
	}
	return channelID, clientIDs, uploads, nil
}

// uploadFiles serves POST /files, answering 201 with the files' FileInfos.
func (s *Server) uploadFiles(r *http.Request, _ []string) (int, any) {
	channelID, clientIDs, uploads, e := readUploads(r)
	switch {
	case e != nil:
		return fail(e)
	case channelID == "":
		return fail(errInvalidURLParam("channel_id"))
	case len(uploads) == 0:
		return fail(newAppError(http.StatusBadRequest, "api.file.upload_file.no_file.app_error", "Unable to upload file. No file in request."))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channelByIDLocked(channelID) == nil {
		return fail(errPermissions()) // Mattermost checks upload_file permission on the channel.
	}
	infos := make([]object, 0, len(uploads))
	for _, u := range uploads {
		mimeType := mime.TypeByExtension(path.Ext(u.name))
		if mimeType == "" {
			mimeType = http.DetectContentType(u.content)
		}
		f := &file{
			File:   File{ID: s.newIDLocked("file"), Name: u.name, Content: string(u.content), ChannelID: channelID},
			userID: BotUserID, mimeType: mimeType, createAt: s.nowLocked(),
		}
		s.files = append(s.files, f)
		infos = append(infos, f.infoJSON())
	}
	s.changes.Notify()
	return http.StatusCreated, object{"file_infos": infos, "client_ids": append([]string{}, clientIDs...)}
}

// infoJSON returns the file as Mattermost's FileInfo JSON.
func (f *file) infoJSON() object {
	return object{
		"id": f.ID, "user_id": f.userID, "channel_id": f.ChannelID, "post_id": f.postID,
		"create_at": f.createAt, "update_at": f.createAt, "delete_at": 0, "name": f.Name,
		"extension": strings.TrimPrefix(path.Ext(f.Name), "."), "size": len(f.Content),
		"mime_type": f.mimeType, "width": 0, "height": 0, "has_preview_image": false,
		"mini_preview": nil, "remote_id": "", "archived": false,
	}
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

// postAction is the part of a stored action that a click needs.
type postAction struct {
	Type        string `json:"type"`
	DataSource  string `json:"data_source"`
	Integration *struct {
		URL     string `json:"url"`
		Context object `json:"context"`
	} `json:"integration"`
}

// findAction returns the action with the id among the props' attachments.
func findAction(props json.RawMessage, actionID string) (postAction, bool) {
	var found postAction
	ok := false
	if obj, err := decodeObject(props); err == nil {
		walkActions(obj, func(action object) bool {
			if id, _ := action["id"].(string); ok || id != actionID {
				return false
			}
			data, err := json.Marshal(action)
			if err == nil {
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.UseNumber()
				ok = dec.Decode(&found) == nil
			}
			return false
		})
	}
	return found, ok
}

// isAlphanumeric reports whether s is ASCII letters and digits only, and
// not empty.
func isAlphanumeric(s string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
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
	if err != nil {
		return 0, nil, fmt.Errorf("click %s on post %s: %w", actionID, postID, err)
	}
	status, body, update, err := s.callIntegration(endpoint, req)
	if err != nil {
		return status, body, fmt.Errorf("click %s on post %s: %w", actionID, postID, err)
	}
	if update != nil {
		if err := s.applyActionUpdate(postID, update); err != nil {
			return status, body, fmt.Errorf("click %s on post %s: %w", actionID, postID, err)
		}
	}
	return status, body, nil
}

// clickRequest builds the request Mattermost posts to the integration of a
// clicked action and returns it with the integration's URL.
func (s *Server) clickRequest(postID, userID, actionID, selectedOption string) (integrationRequest, string, error) {
	if !isAlphanumeric(actionID) {
		return integrationRequest{}, "", errors.New("action id is not letters and digits only: Mattermost's route /posts/{post_id}/actions/{action_id:[A-Za-z0-9]+} answers 404")
	}
	if userID == "" {
		return integrationRequest{}, "", errors.New("no user id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return integrationRequest{}, "", errors.New("server closed")
	}
	p := s.posts[postID]
	if p == nil {
		return integrationRequest{}, "", errors.New("no such post")
	}
	action, ok := findAction(p.Props, actionID)
	if !ok || action.Integration == nil || action.Integration.URL == "" {
		return integrationRequest{}, "", errors.New("no such action with an integration")
	}
	ch := s.channelByIDLocked(p.ChannelID)
	teamName := ""
	if ch.teamID == TeamID {
		teamName = TeamName
	}
	trigger := fmt.Sprintf("%s:%s:%d:mattermosttest", s.newIDLocked("trigger"), userID, s.nowLocked())
	req := integrationRequest{
		UserID: userID, UserName: s.userNameLocked(userID), ChannelID: ch.id, ChannelName: ch.name,
		TeamID: ch.teamID, TeamName: teamName, PostID: p.ID,
		TriggerID: base64.StdEncoding.EncodeToString([]byte(trigger)),
		Type:      action.Type, Context: action.Integration.Context,
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
	ctx, cancel := context.WithTimeout(context.Background(), integrationTimeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("call integration %s: %w", endpoint, err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(httpReq)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("call integration %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntegrationResponseBytes))
	if err != nil {
		return resp.StatusCode, body, nil, fmt.Errorf("read integration %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK || len(bytes.TrimSpace(body)) == 0 {
		return resp.StatusCode, body, nil, nil
	}
	var answer struct {
		Update json.RawMessage `json:"update"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return resp.StatusCode, body, nil, fmt.Errorf("decode integration %s answer: %w", endpoint, err)
	}
	if len(answer.Update) == 0 || string(answer.Update) == "null" {
		return resp.StatusCode, body, nil, nil
	}
	return resp.StatusCode, body, answer.Update, nil
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
	p := s.posts[postID]
	if p == nil {
		return errors.New("apply update: post gone")
	}
	props := p.Props
	if raw := bytes.TrimSpace(body.Props); len(raw) > 0 && string(raw) != "null" {
		merged, err := retainProps(p.Props, raw)
		if err != nil {
			return fmt.Errorf("apply update: %w", err)
		}
		if props, err = s.normalizePropsLocked(merged); err != nil {
			return fmt.Errorf("apply update: %w", err)
		}
	}
	if e := checkPost(body.Message, p.typ, props); e != nil {
		return fmt.Errorf("apply update: %s", e.ID)
	}
	s.editPostLocked(p, body.Message, props)
	return nil
}

// retainProps returns the new props with the retained keys as they are in
// the old props: copied when there, removed when not.
func retainProps(old, updated json.RawMessage) (json.RawMessage, error) {
	next, err := decodeObject(updated)
	if err != nil {
		return nil, fmt.Errorf("retain props: %w", err)
	}
	prev := object{}
	if len(old) > 0 {
		if prev, err = decodeObject(old); err != nil {
			return nil, fmt.Errorf("retain props: %w", err)
		}
	}
	for _, key := range retainPropKeys {
		if v, ok := prev[key]; ok {
			next[key] = v
		} else {
			delete(next, key)
		}
	}
	out, err := json.Marshal(next)
	if err != nil {
		return nil, fmt.Errorf("retain props: %w", err)
	}
	return out, nil
}
