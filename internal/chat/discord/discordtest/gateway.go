package discordtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

// Gateway intents the fake looks at.
const (
	intentGuilds         int64 = 1 << 0
	intentGuildMessages  int64 = 1 << 9
	intentDirectMessages int64 = 1 << 12
	intentMessageContent int64 = 1 << 15
	// requiredIntents must all be in IDENTIFY, or the gateway closes with 4014.
	requiredIntents = intentGuildMessages | intentDirectMessages | intentMessageContent
)

// Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
const (
	opDispatch        = 0
	opHeartbeat       = 1
	opIdentify        = 2
	opPresenceUpdate  = 3
	opVoiceState      = 4
	opResume          = 6
	opRequestMembers  = 8
	opInvalidSession  = 9
	opHello           = 10
	opHeartbeatAck    = 11
	opRequestSoundbox = 31
)

const (
	// heartbeatIntervalMS is the interval HELLO asks for. discordgo gives up
	// on a connection after five intervals without HEARTBEAT_ACK.
	heartbeatIntervalMS = 1000
	// outQueue is how many frames may wait for a slow client before the
	// server drops it, as Discord drops clients that do not keep up.
	outQueue = 1024
	// replayLog is how many dispatches a session keeps for RESUME.
	replayLog = 1000
	// maxPayloadBytes bounds client payloads.
	maxPayloadBytes = 1 << 16
	// defaultGatewayVersion is the v READY reports when the URL has no ?v=.
	defaultGatewayVersion = 10
)

type gwConn struct {
	*fake.Conn
	version int
	session *gwSession // nil until IDENTIFY or RESUME succeeds; guarded by Server.mu
}

// gwSession is a gateway session: its sequence, the dispatches it was sent
// (for RESUME) and the connection it is attached to, if any. All fields are
// guarded by Server.mu.
type gwSession struct {
	id      string
	intents int64
	seq     int64
	log     []sent
	conn    *gwConn
}

type sent struct {
	seq  int64
	data []byte
}

type closeReason struct {
	code int
	text string
}

// Gateway close codes.
var (
	closeUnknownOpcode = &closeReason{4001, "Unknown opcode."}
	closeDecodeError   = &closeReason{4002, "Error while decoding payload."}
	closeNotAuthed     = &closeReason{4003, "Not authenticated."}
	closeAuthFailed    = &closeReason{4004, "Authentication failed."}
	closeAlreadyAuthed = &closeReason{4005, "Already authenticated."}
	closeInvalidSeq    = &closeReason{4007, "Invalid seq."}
	closeInvalidShard  = &closeReason{4010, "Invalid shard."}
	closeDisallowed    = &closeReason{4014, "Disallowed intent(s)."}
)

type frame struct {
	Op int     `json:"op"`
	D  any     `json:"d"`
	S  *int64  `json:"s"`
	T  *string `json:"t"`
}

// encode renders a gateway payload; seq and name only for dispatches.
func encode(op int, d any, seq int64, name string) []byte {
	f := frame{Op: op, D: d}
	if op == opDispatch {
		f.S, f.T = &seq, &name
	}
	b, _ := json.Marshal(f) // only the fake's own types get here; they always encode
	return b
}

// Resumes returns how many RESUMEs the gateway accepted.
func (s *Server) Resumes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumes
}

// serveGateway runs one gateway websocket. After closing it with a close
// code, the server only drains what the client sends until it hangs up.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	if s.Hub.Closed() {
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Message: "503: Service Unavailable"})
		return
	}
	version := defaultGatewayVersion
	if v, err := strconv.Atoi(r.URL.Query().Get("v")); err == nil {
		version = v
	}
	c, ok := s.Hub.Accept(w, r, func(conn *fake.Conn) *gwConn { return &gwConn{Conn: conn, version: version} })
	if !ok {
		return
	}
	c.Send(encode(opHello, map[string]int{"heartbeat_interval": heartbeatIntervalMS}, 0, ""))
	c.SetReadLimit(maxPayloadBytes)
	closing := false
	s.Hub.Serve(c, 0, func(_ int, data []byte) bool {
		if closing {
			return true
		}
		if reason := s.handlePayload(c, data); reason != nil {
			closing = true
			s.closeWith(c, reason)
		}
		return true
	})
}

// closeWith sends a close frame with a gateway close code and gives the
// client two seconds to hang up.
func (s *Server) closeWith(c *gwConn, reason *closeReason) {
	s.mu.Lock()
	s.retireLocked(c)
	s.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(reason.code, reason.text), deadline)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// handlePayload acts on one client payload; a non-nil result closes the connection.
func (s *Server) handlePayload(c *gwConn, data []byte) *closeReason {
	var p struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Op == nil {
		return closeDecodeError
	}
	switch *p.Op {
	case opHeartbeat:
		c.Send(encode(opHeartbeatAck, nil, 0, ""))
		return nil
	case opIdentify:
		return s.identify(c, p.D)
	case opResume:
		return s.resume(c, p.D)
	case opPresenceUpdate, opVoiceState, opRequestMembers, opRequestSoundbox:
		s.mu.Lock()
		authed := c.session != nil
		s.mu.Unlock()
		if !authed {
			return closeNotAuthed
		}
		return nil // accepted and ignored
	default:
		return closeUnknownOpcode
	}
}

// identify starts a new session on the connection and sends READY and GUILD_CREATE.
func (s *Server) identify(c *gwConn, d json.RawMessage) *closeReason {
	var id struct {
		Token   string  `json:"token"`
		Intents *int64  `json:"intents"`
		Shard   *[2]int `json:"shard"`
	}
	if err := json.Unmarshal(d, &id); err != nil {
		return closeDecodeError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case c.session != nil:
		return closeAlreadyAuthed
	case id.Token != Token:
		return closeAuthFailed
	case id.Intents == nil || *id.Intents&requiredIntents != requiredIntents:
		return closeDisallowed
	case id.Shard != nil && (id.Shard[1] < 1 || id.Shard[0] < 0 || id.Shard[0] >= id.Shard[1]):
		return closeInvalidShard
	}
	sess := &gwSession{id: rand.Text(), intents: *id.Intents}
	s.sessions[sess.id] = sess
	s.attachLocked(c, sess)
	s.sendLocked(sess, "READY", s.readyLocked(sess, c.version, id.Shard))
	s.sendLocked(sess, "GUILD_CREATE", s.guildLocked())
	return nil
}

// resume re-attaches a session to the connection, replays what it missed
// after seq, and sends RESUMED. An unknown session, or one whose missed
// dispatches are no longer all kept, gets INVALID_SESSION (not resumable).
func (s *Server) resume(c *gwConn, d json.RawMessage) *closeReason {
	var rs struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       *int64 `json:"seq"`
	}
	if err := json.Unmarshal(d, &rs); err != nil {
		return closeDecodeError
	}
	var seq int64
	if rs.Seq != nil {
		seq = *rs.Seq
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.session != nil {
		return closeAlreadyAuthed
	}
	if rs.Token != Token {
		return closeAuthFailed
	}
	sess := s.sessions[rs.SessionID]
	if sess != nil && seq > sess.seq {
		return closeInvalidSeq
	}
	if sess == nil || seq < 0 || (len(sess.log) > 0 && seq+1 < sess.log[0].seq) {
		if sess != nil {
			delete(s.sessions, sess.id)
			if sess.conn != nil {
				s.killLocked(sess.conn)
			}
		}
		c.Send(encode(opInvalidSession, false, 0, ""))
		return nil
	}
	if old := sess.conn; old != nil {
		s.killLocked(old)
	}
	s.attachLocked(c, sess)
	for _, f := range sess.log {
		if f.seq > seq {
			c.Send(f.data)
		}
	}
	s.sendLocked(sess, "RESUMED", object{"_trace": []string{"kubechat-discordtest"}})
	s.resumes++
	return nil
}

func (s *Server) attachLocked(c *gwConn, sess *gwSession) {
	c.session = sess
	sess.conn = c
	s.Hub.SetReady(c, true)
}

// retireLocked detaches a connection from its session: no more frames go to it.
func (s *Server) retireLocked(c *gwConn) {
	if c.session != nil && c.session.conn == c {
		c.session.conn = nil
	}
	c.session = nil
	s.Hub.SetReady(c, false)
}

// killLocked retires a connection and closes its TCP connection without a
// close frame; its handler then cleans up.
func (s *Server) killLocked(c *gwConn) {
	s.retireLocked(c)
	c.Abort()
}

// sendLocked dispatches an event to one session: numbered, logged for
// RESUME, and written if the session is connected.
func (s *Server) sendLocked(sess *gwSession, name string, d any) {
	sess.seq++
	b := encode(opDispatch, d, sess.seq, name)
	sess.log = append(sess.log, sent{seq: sess.seq, data: b})
	if over := len(sess.log) - replayLog; over > 0 {
		sess.log = slices.Delete(sess.log, 0, over)
	}
	if sess.conn != nil {
		sess.conn.Send(b)
	}
}

// dispatchLocked dispatches an event to every session whose intents include
// intent (0: every session), connected or waiting to resume.
func (s *Server) dispatchLocked(name string, d any, intent int64) {
	raw, _ := json.Marshal(d) // only the fake's own types get here; they always encode
	for _, sess := range s.sessions {
		if intent == 0 || sess.intents&intent != 0 {
			s.sendLocked(sess, name, json.RawMessage(raw))
		}
	}
}

func (s *Server) readyLocked(sess *gwSession, version int, shard *[2]int) object {
	ready := object{
		"v": version, "user": meJSON(), "session_id": sess.id, "session_type": "normal", "resume_gateway_url": s.wsURL,
		"guilds": []object{{"id": GuildID, "unavailable": true}}, "application": object{"id": AppID, "flags": 0},
		"private_channels": []any{}, "relationships": []any{}, "presences": []any{}, "_trace": []string{"kubechat-discordtest"},
	}
	if shard != nil {
		ready["shard"] = *shard
	}
	return ready
}

// guildLocked is the GUILD_CREATE payload: the guild with its channels,
// active threads, @everyone role and the bot as its member.
func (s *Server) guildLocked() object {
	bot := member(BotUserID, true)
	threads := slices.DeleteFunc(s.Store.Channels(), func(ch fake.Channel) bool { return channelType(ch) != channelPublicThread })
	return object{
		"id": GuildID, "name": guildName, "icon": nil, "owner_id": "400000000000000001", "joined_at": bot["joined_at"],
		"large": false, "unavailable": false, "member_count": 2, "verification_level": 0, "default_message_notifications": 0,
		"explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "premium_tier": 0, "preferred_locale": "en-US",
		"features": []string{}, "emojis": []any{}, "stickers": []any{}, "presences": []any{}, "voice_states": []any{},
		"stage_instances": []any{}, "guild_scheduled_events": []any{},
		"roles": []object{{
			"id": GuildID, "name": "@everyone", "permissions": memberPermissions, "position": 0,
			"color": 0, "hoist": false, "managed": false, "mentionable": false, "flags": 0,
		}},
		"members":  []object{bot},
		"channels": s.channelsJSONLocked(s.guildChannels()),
		"threads":  s.channelsJSONLocked(threads),
	}
}

// --- test-side activity ---

// Mention stores a message from userID in a channel (or thread) that
// mentions the bot, "<@BotUserID> "+text with the bot in mentions, and
// dispatches MESSAGE_CREATE to every gateway session (sessions that are
// disconnected but resumable get it on RESUME). It fails when no session
// was ever identified, so nothing is lost by calling it before discordgo's
// Open has returned.
func (s *Server) Mention(channelID, userID, text string) (messageID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.activityLocked(channelID, userID)
	if err != nil {
		return "", fmt.Errorf("mention in %s: %w", channelID, err)
	}
	m := s.newMessage(ch, userID, "<@"+BotUserID+"> "+text)
	m.X.mentions = []string{BotUserID}
	return s.storeLocked(m).ID, nil
}

// DirectMessage stores a message from userID in its direct-message channel
// with the bot (type 1, no guild; created on first use, and the same
// channel POST /users/@me/channels returns) and dispatches MESSAGE_CREATE.
func (s *Server) DirectMessage(userID, text string) (channelID, messageID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.activityLocked("", userID); err != nil || userID == BotUserID {
		return "", "", fmt.Errorf("direct message from %s: %w", userID, cmp.Or(err, errSelf))
	}
	ch := s.dm(userID)
	return ch.ID, s.storeLocked(s.newMessage(ch, userID, text)).ID, nil
}

// activityLocked checks that the user's activity can be dispatched and
// returns the channel it happens in ("" for none).
func (s *Server) activityLocked(channelID, userID string) (fake.Channel, error) {
	ch, ok := s.Store.Channel(channelID)
	switch {
	case userID == "":
		return ch, errEmptyUser
	case s.Store.Closed():
		return ch, errClosed
	case channelID != "" && !ok:
		return ch, errUnknownChannel
	case len(s.sessions) == 0:
		return ch, errNoSession
	}
	return ch, nil
}

// interaction is a button click or select and what the bot answered.
type interaction struct {
	id, token string
	channelID string
	messageID string
	userID    string
	acked     bool
	original  string   // id of the @original response message
	followups []string // ids of follow-up messages
	responses []json.RawMessage
}

// Click has userID press a component of a message: it dispatches
// INTERACTION_CREATE of type 3 (MESSAGE_COMPONENT) with data
// {custom_id, component_type: 2 (button), or 3 (string select) with values
// when values is not nil}, the full message, channel_id, guild_id and
// member (or user, in a DM channel), a random token and application_id
// AppID. The message must be in channelID (a thread's id for a message in
// a thread).
//
// The bot answers once at POST /interactions/{id}/{token}/callback, and may
// then use /webhooks/{AppID}/{token}. The callback takes effect as on
// Discord: type 4 posts a message, type 5 posts an empty "thinking"
// placeholder (it shows in Messages) that PATCH .../messages/@original
// fills in, type 6 acknowledges, type 7 edits the clicked message, type 9
// opens a modal. Ephemeral responses are stored like any other message.
func (s *Server) Click(channelID, messageID, userID, customID string, values []string) (interactionID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, err := s.activityLocked(channelID, userID)
	m, ok := s.Store.Message(messageID)
	switch {
	case customID == "":
		err = errEmptyCustomID
	case err == nil && (!ok || m.Channel != ch.ID):
		err = errUnknownMessage
	}
	if err != nil {
		return "", fmt.Errorf("click %s on %s: %w", customID, messageID, err)
	}
	it := &interaction{id: s.nextID(), token: rand.Text() + rand.Text(), channelID: ch.ID, messageID: m.ID, userID: userID}
	s.interactions[it.id], s.byToken[it.token] = it, it

	data := object{"custom_id": customID, "component_type": 2}
	if values != nil {
		data["component_type"] = 3
		data["values"] = values
	}
	payload := object{
		"id": it.id, "application_id": AppID, "type": 3, "data": data, "channel_id": ch.ID, "channel": s.channelJSONLocked(ch),
		"message": s.messageJSONLocked(m), "token": it.token, "version": 1, "locale": "en-US",
		"app_permissions": memberPermissions, "entitlements": []any{}, "user": userJSON(userID), "context": 1,
	}
	if guild := guildOf(ch); guild != "" {
		mem := member(userID, true)
		mem["permissions"] = memberPermissions
		delete(payload, "user")
		maps.Copy(payload, object{"guild_id": guild, "guild_locale": "en-US", "member": mem, "context": 0})
	}
	s.dispatchLocked("INTERACTION_CREATE", payload, 0)
	s.Store.Notify()
	return it.id, nil
}

// InteractionResponses returns the bodies the bot POSTed to
// /interactions/{id}/{token}/callback for an interaction and the server
// accepted (for a multipart body, its payload_json), in order. Discord
// accepts one callback per interaction, so there is at most one.
func (s *Server) InteractionResponses(interactionID string) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []json.RawMessage
	if it := s.interactions[interactionID]; it != nil {
		for _, r := range it.responses {
			out = append(out, bytes.Clone(r))
		}
	}
	return out
}

// WaitInteractionResponse waits for the bot's callback to an interaction and
// returns its body. It fails at once for an interaction Click did not
// create, and when ctx ends or the server closes first.
func (s *Server) WaitInteractionResponse(ctx context.Context, interactionID string) (json.RawMessage, error) {
	var (
		known bool
		resp  json.RawMessage
	)
	err := s.Store.Wait(ctx, &s.mu, func() bool {
		it := s.interactions[interactionID]
		known = it != nil
		if known && len(it.responses) > 0 {
			resp = bytes.Clone(it.responses[0])
		}
		return !known || resp != nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("wait interaction response %s: %w", interactionID, err)
	case !known:
		return nil, fmt.Errorf("wait interaction response %s: %w", interactionID, errUnknownInteraction)
	}
	return resp, nil
}

// --- interaction REST handlers ---

// Interaction callback types.
const (
	callbackMessage         = 4
	callbackDeferredMessage = 5
	callbackDeferredUpdate  = 6
	callbackUpdateMessage   = 7
	callbackModal           = 9
)

// interactionCallback records the bot's answer to an interaction and
// applies it: 4 posts a message, 5 posts a "thinking" placeholder, 6 and 7
// acknowledge the clicked message (7 edits it), 9 opens a modal.
func (s *Server) interactionCallback(c *call) (int, any, *apiError) {
	var req struct {
		Type int             `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if apiErr := c.body.decode(&req); apiErr != nil {
		return 0, nil, apiErr
	}
	data := &body{raw: json.RawMessage("{}"), files: c.body.files}
	if present(req.Data) {
		if req.Data[0] != '{' {
			return 0, nil, formError("data", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType.")
		}
		data.raw = req.Data
	}
	in, apiErr := parseInput(data)
	if apiErr != nil {
		return 0, nil, prefixed("data", apiErr)
	}
	ephemeral := in.Flags != nil && *in.Flags&flagEphemeral != 0
	typ := req.Type

	it := s.interactions[c.PathValue("iid")]
	if it == nil || it.token != c.PathValue("token") {
		return 0, nil, errUnknownInter
	}
	if it.acked {
		return 0, nil, errAcknowledged
	}
	ch, _ := s.Store.Channel(it.channelID)
	switch typ {
	case callbackMessage:
		m, apiErr := s.postLocked(ch, BotUserID, in, func(m *message) { fromInteraction(m, ephemeral) })
		if apiErr != nil {
			return 0, nil, prefixed("data", apiErr)
		}
		it.original = m.ID
	case callbackDeferredMessage:
		m := s.newMessage(ch, BotUserID, "")
		fromInteraction(&m, ephemeral)
		m.X.flags |= flagLoading
		it.original = s.storeLocked(m).ID
	case callbackDeferredUpdate, callbackUpdateMessage:
		clicked, ok := s.Store.Message(it.messageID)
		if !ok {
			return 0, nil, errUnknownMsg
		}
		if typ == callbackUpdateMessage {
			if _, apiErr := s.editLocked(clicked, in); apiErr != nil {
				return 0, nil, prefixed("data", apiErr)
			}
		}
		it.original = clicked.ID
	case callbackModal:
		var modal struct{ CustomID, Title, Components json.RawMessage }
		if data.decode(&modal) != nil || !present(modal.CustomID) || !present(modal.Title) || !present(modal.Components) {
			return 0, nil, formError("data", "BASE_TYPE_REQUIRED", "custom_id, title and components are required")
		}
	default:
		return 0, nil, formError("type", "INTERACTION_RESPONSE_TYPE_INVALID",
			fmt.Sprintf("Interaction response type %d is not valid for a message component.", typ))
	}
	it.acked = true
	it.responses = append(it.responses, bytes.Clone(c.body.raw))
	s.Store.Notify()
	return http.StatusNoContent, nil, nil
}

func fromInteraction(m *message, ephemeral bool) {
	m.X.webhookID = AppID
	if ephemeral {
		m.X.flags |= flagEphemeral
	}
}

// prefixed moves a form error under a parent field, as Discord reports
// errors inside "data".
func prefixed(parent string, e *apiError) *apiError {
	if e.Code != 50035 || e.Errors == nil {
		return e
	}
	out := *e
	out.Errors, _ = json.Marshal(map[string]json.RawMessage{parent: e.Errors}) // raw JSON always encodes
	return &out
}

func (s *Server) webhookLocked(c *call) (*interaction, *apiError) {
	it := s.byToken[c.PathValue("token")]
	if c.PathValue("wid") != AppID || it == nil || !it.acked {
		return nil, errUnknownHook
	}
	return it, nil
}

// webhookMessageLocked finds @original or a follow-up of the interaction
// behind /webhooks/{wid}/{token}/messages/{mid}.
func (s *Server) webhookMessageLocked(c *call) (message, *apiError) {
	it, apiErr := s.webhookLocked(c)
	if apiErr != nil {
		return message{}, apiErr
	}
	id := c.PathValue("mid")
	if id == "@original" {
		id = it.original
	}
	if id == "" || (id != it.original && !slices.Contains(it.followups, id)) {
		return message{}, errUnknownMsg
	}
	m, ok := s.Store.Message(id)
	if !ok {
		return m, errUnknownMsg
	}
	return m, nil
}

// followup posts a follow-up message for an acknowledged interaction; with
// ?wait=true it returns the message, otherwise 204.
func (s *Server) followup(c *call) (int, any, *apiError) {
	ephemeral := c.in.Flags != nil && *c.in.Flags&flagEphemeral != 0
	it, apiErr := s.webhookLocked(c)
	if apiErr != nil {
		return 0, nil, apiErr
	}
	ch, _ := s.Store.Channel(it.channelID)
	if tid := c.URL.Query().Get("thread_id"); tid != "" {
		th, ok := s.Store.Channel(tid)
		if !ok || th.Parent != ch.ID {
			return 0, nil, errUnknownChan
		}
		ch = th
	}
	m, apiErr := s.postLocked(ch, BotUserID, c.in, func(m *message) { fromInteraction(m, ephemeral) })
	if apiErr != nil {
		return 0, nil, apiErr
	}
	it.followups = append(it.followups, m.ID)
	if c.URL.Query().Get("wait") != "true" {
		return http.StatusNoContent, nil, nil
	}
	return http.StatusOK, s.messageJSONLocked(m), nil
}
