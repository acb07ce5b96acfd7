package mattermosttest

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

const (
	// defaultPingInterval is how often the server pings each websocket.
	// Mattermost pings every 60s; model.WebSocketClient signals
	// PingTimeoutChannel when no ping came for 60s + 5s, so the server
	// pings well within that.
	defaultPingInterval = 30 * time.Second
	// defaultAuthTimeout is how long a websocket may stay unauthenticated
	// before the server closes it, as Mattermost's authCheckInterval.
	defaultAuthTimeout = 5 * time.Second
	// pongWait is how long the server waits for a pong, as Mattermost does.
	pongWait = 100 * time.Second
	// sendQueueSize is how many messages wait for a websocket before the
	// server gives up on it and closes it, as Mattermost's hub does.
	sendQueueSize = 256
	// maxSocketMessageBytes is the largest message the server reads
	// (model.SocketMaxMessageSizeKb, which is in bytes despite its name).
	maxSocketMessageBytes = 8 * 1024
)

type wsConn struct {
	*fake.Conn
	id  string // the connection_id of the hello event
	seq int64  // the number of the next event; guarded by s.mu
}

// wsEvent is a server event (model.WebSocketEvent's JSON). The writer
// numbers the events of each websocket from 0 in seq.
type wsEvent struct {
	Event     string      `json:"event"`
	Data      object      `json:"data"`
	Broadcast wsBroadcast `json:"broadcast"`
	Seq       int64       `json:"seq"`
}

// wsBroadcast is whom Mattermost meant an event for (model.WebsocketBroadcast's JSON).
type wsBroadcast struct {
	OmitUsers        map[string]bool `json:"omit_users"`
	UserID           string          `json:"user_id"`
	ChannelID        string          `json:"channel_id"`
	TeamID           string          `json:"team_id"`
	ConnectionID     string          `json:"connection_id"`
	OmitConnectionID string          `json:"omit_connection_id"`
}

type wsRequest struct {
	Seq    int64  `json:"seq"`
	Action string `json:"action"`
	Data   object `json:"data"`
}

type wsResponse struct {
	Status   string    `json:"status"`
	SeqReply int64     `json:"seq_reply,omitempty"`
	Data     object    `json:"data,omitempty"`
	Error    *appError `json:"error,omitempty"`
}

// Mention stores a user's post "@kubechat " + text in the channel and
// broadcasts its posted event, with the bot in its mentions, to every
// authenticated websocket. It returns the post's id; it fails, storing
// nothing, if no authenticated websocket is open or there is no such
// channel.
func (s *Server) Mention(channelID, userID, text string) (postID string, err error) {
	p, err := s.userPost(channelID, "", userID, "@"+BotName+" "+text)
	return p.ID, fake.Wrap(err, "mention in %s", channelID)
}

// MentionInThread is Mention as a reply in the thread of rootID, which must
// be a root post of the channel.
func (s *Server) MentionInThread(channelID, rootID, userID, text string) (postID string, err error) {
	p, err := s.userPost(channelID, rootID, userID, "@"+BotName+" "+text)
	return p.ID, fake.Wrap(err, "mention in thread %s of %s", rootID, channelID)
}

// DirectMessage stores a user's post of text in the user's direct message
// channel with the bot (type "D", named "<id1>__<id2>" with the smaller id
// first), creating the channel the first time, and broadcasts its posted
// event, with channel_type "D" and, as Mattermost does for direct messages,
// the bot in its mentions. It returns the channel's and the post's ids; it
// fails, storing nothing, if no authenticated websocket is open.
func (s *Server) DirectMessage(userID, text string) (channelID, postID string, err error) {
	p, err := s.userPost("", "", userID, text)
	return p.Channel, p.ID, fake.Wrap(err, "direct message from %s", userID)
}

// userPost stores a user's post in the channel, or in the user's direct
// message channel when channelID is "", and broadcasts it with the bot in
// its mentions.
func (s *Server) userPost(channelID, rootID, userID, message string) (fake.Message[post], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, known := s.Store.Channel(channelID)
	switch {
	case s.Store.Closed():
		return fake.Message[post]{}, fake.ErrClosed
	case userID == "":
		return fake.Message[post]{}, errors.New("no user id")
	case s.Hub.Connected() == 0:
		return fake.Message[post]{}, errNotConnected
	case channelID == "":
		channelID = s.directChannelLocked(userID).ID
	case !known:
		return fake.Message[post]{}, fake.ErrUnknownChannel
	case rootID != "" && !s.isRoot(rootID, channelID):
		return fake.Message[post]{}, errors.New("no such root post in the channel")
	}
	s.userNameLocked(userID)
	p := fake.Message[post]{ID: s.newIDLocked("post"), Channel: channelID, Thread: rootID, Author: userID, Text: message}
	return s.addPostLocked(p, []string{BotUserID}), nil
}

// broadcastPostedLocked broadcasts the posted event of a new post, as
// Mattermost's notifications send it. s.mu must be held.
func (s *Server) broadcastPostedLocked(p fake.Message[post], mentions []string) {
	ch, _ := s.Store.Channel(p.Channel)
	teamID, typ, displayName := channelInfo(ch)
	sender := s.userNameLocked(p.Author)
	if typ == channelDirect {
		displayName = "@" + sender
	}
	data := object{
		"channel_display_name": displayName, "channel_name": ch.Name, "channel_type": typ,
		"post": s.postJSON(p), "sender_name": "@" + sender, "set_online": true, "team_id": teamID,
	}
	if len(mentions) > 0 {
		ids, _ := json.Marshal(mentions) // strings always encode
		data["mentions"] = string(ids)
	}
	s.broadcastLocked(wsEvent{Event: "posted", Data: data, Broadcast: wsBroadcast{ChannelID: ch.ID}})
}

func (s *Server) broadcastLocked(ev wsEvent) {
	for _, c := range s.Hub.Conns() {
		s.sendEventLocked(c, ev)
	}
}

// sendEventLocked sends an event to the websocket, numbering it. If the
// websocket's queue is full the client is not reading, and the websocket
// is closed, as Mattermost's hub does. s.mu must be held.
func (s *Server) sendEventLocked(c *wsConn, ev wsEvent) {
	ev.Seq = c.seq
	c.seq++
	c.SendJSON(ev)
}

// authenticateLocked marks the websocket authenticated, answers the
// authentication challenge with seq if seq > 0, and says hello. Holding
// s.mu, no event is broadcast to it before hello. s.mu must be held.
func (s *Server) authenticateLocked(c *wsConn, seq int64) {
	s.Hub.SetReady(c, true)
	if seq > 0 {
		c.SendJSON(wsResponse{Status: "OK", SeqReply: seq})
	}
	hello := object{"server_version": serverVersion, "connection_id": c.id}
	s.sendEventLocked(c, wsEvent{Event: "hello", Data: hello, Broadcast: wsBroadcast{UserID: BotUserID}})
}

// serveWebSocket serves /api/v4/websocket. A request with the bot's token
// in its Authorization header is authenticated at once and said hello to;
// any other must send an authentication_challenge with the token first,
// within the auth timeout, or be closed.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.Hub.Closed() || s.Store.Down() {
		writeDown(w)
		return
	}
	c, ok := s.Hub.Accept(w, r, func(conn *fake.Conn) *wsConn { return &wsConn{Conn: conn} })
	if !ok {
		return
	}
	s.mu.Lock()
	c.id = s.newIDLocked("connection")
	if authorized(r) {
		s.authenticateLocked(c, 0)
	}
	s.mu.Unlock()
	authCheck := time.AfterFunc(s.authTimeout, func() {
		if !s.Hub.Ready(c) {
			c.Abort()
		}
	})
	defer authCheck.Stop()
	c.SetReadLimit(maxSocketMessageBytes)
	_ = c.SetReadDeadline(time.Now().Add(pongWait))
	c.SetPongHandler(func(string) error {
		return c.SetReadDeadline(time.Now().Add(pongWait))
	})
	s.Hub.Serve(c, s.pingInterval, func(typ int, data []byte) bool {
		if typ != websocket.TextMessage {
			return true // msgpack-encoded binary actions are not supported
		}
		var req wsRequest
		if err := json.Unmarshal(data, &req); err != nil {
			return false // Mattermost closes a websocket that sends what it cannot decode
		}
		return s.handle(c, req)
	})
}

// handle answers one action as Mattermost's websocket router does, and
// reports whether the websocket stays open.
func (s *Server) handle(c *wsConn, req wsRequest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := func(data object) {
		c.SendJSON(wsResponse{Status: "OK", SeqReply: req.Seq, Data: data})
	}
	refuse := func(status int, id, message string) {
		c.SendJSON(wsResponse{Status: "FAIL", SeqReply: req.Seq, Error: newAppError(status, id, message)})
	}
	switch {
	case req.Action == "":
		refuse(http.StatusBadRequest, "api.web_socket_router.no_action.app_error", "No websocket action.")
	case req.Seq <= 0:
		refuse(http.StatusBadRequest, "api.web_socket_router.bad_seq.app_error", "Invalid sequence for WebSocket message.")
	case req.Action == "authentication_challenge":
		if s.Hub.Ready(c) {
			return true // Mattermost ignores it on an authenticated websocket
		}
		if token, _ := req.Data["token"].(string); token != Token {
			return false // Mattermost closes the websocket
		}
		s.authenticateLocked(c, req.Seq)
	case !s.Hub.Ready(c):
		refuse(http.StatusUnauthorized, "api.web_socket_router.not_authenticated.app_error", "No websocket authentication.")
	case req.Action == "ping":
		reply(object{"text": "pong", "version": serverVersion, "server_time": time.Now().UnixMilli(), "node_id": ""})
	case req.Action == "user_typing", req.Action == "presence":
		reply(nil)
	case req.Action == "get_statuses":
		reply(object{BotUserID: "online"})
	case req.Action == "get_statuses_by_ids":
		ids, _ := req.Data["user_ids"].([]any)
		statuses := object{}
		for _, id := range ids {
			if id, ok := id.(string); ok {
				statuses[id] = "offline"
				if id == BotUserID {
					statuses[id] = "online"
				}
			}
		}
		reply(statuses)
	default:
		refuse(http.StatusInternalServerError, "api.web_socket_router.bad_action.app_error", "Unknown WebSocket action.")
	}
	return true
}
