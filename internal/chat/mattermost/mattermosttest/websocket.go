package mattermosttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// writeTimeout bounds every websocket write.
	writeTimeout = 5 * time.Second
	// sendQueueSize is how many messages wait for a websocket before the
	// server gives up on it and closes it, as Mattermost's hub does.
	sendQueueSize = 256
	// maxSocketMessageBytes is the largest message the server reads
	// (model.SocketMaxMessageSizeKb, which is in bytes despite its name).
	maxSocketMessageBytes = 8 * 1024
)

// conn is one open websocket, released once its reader and writer have
// stopped and the server has let go of it.
type conn struct {
	*fake.Socket
	s    *Server
	id   string         // the connection_id of the hello event
	out  chan wsMessage // what the writer sends, in order
	quit chan struct{}  // closed when the reader has stopped, to stop the writer

	authed bool // guarded by s.mu
}

// wsMessage is one message for a websocket: an event or a response.
type wsMessage struct {
	event    *wsEvent
	response *wsResponse
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

// wsRequest is a client's action (model.WebSocketRequest's JSON).
type wsRequest struct {
	Seq    int64  `json:"seq"`
	Action string `json:"action"`
	Data   object `json:"data"`
}

// wsResponse answers a client's action (model.WebSocketResponse's JSON).
type wsResponse struct {
	Status   string    `json:"status"`
	SeqReply int64     `json:"seq_reply,omitempty"`
	Data     object    `json:"data,omitempty"`
	Error    *appError `json:"error,omitempty"`
}

// Connections returns how many websockets have authenticated so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Connected returns how many authenticated websockets are open now.
func (s *Server) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connectedLocked()
}

// connectedLocked returns how many authenticated websockets are open. s.mu must be held.
func (s *Server) connectedLocked() int {
	n := 0
	for _, c := range s.conns {
		if c.authed {
			n++
		}
	}
	return n
}

// WaitConnected waits until at least total websockets have authenticated
// so far and at least one authenticated websocket is open. It is there for
// tests of reconnect loops: after Drop, wait for Connections()+1.
func (s *Server) WaitConnected(ctx context.Context, total int) error {
	err := s.changes.Wait(ctx, &s.mu, func() bool { return s.accepted >= total && s.connectedLocked() > 0 })
	if err != nil {
		return fmt.Errorf("wait for %d websocket connections: %w", total, err)
	}
	return nil
}

// Drop cuts every open websocket abruptly, closing the network connection
// without a close frame, and returns once the server has let go of them.
//
// A model.WebSocketClient whose Listen loop runs then sees its read fail
// with an abnormal closure (1006, unexpected EOF): it sets ListenError,
// closes EventChannel and ResponseChannel, and is done. It never
// reconnects by itself; an adapter must notice the closed EventChannel and
// dial a new client with model.NewWebSocketClient4 and call Listen again.
func (s *Server) Drop() {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	fake.Drop(conns)
}

// Mention stores a user's post "@kubechat " + text in the channel and
// broadcasts its posted event, with the bot in its mentions, to every
// authenticated websocket. It returns the post's id; it fails, storing
// nothing, if no authenticated websocket is open or there is no such
// channel.
func (s *Server) Mention(channelID, userID, text string) (postID string, err error) {
	postID, err = s.userPost(channelID, "", userID, "@"+BotName+" "+text)
	if err != nil {
		return "", fmt.Errorf("mention in %s: %w", channelID, err)
	}
	return postID, nil
}

// MentionInThread is Mention as a reply in the thread of rootID, which must
// be a root post of the channel.
func (s *Server) MentionInThread(channelID, rootID, userID, text string) (postID string, err error) {
	postID, err = s.userPost(channelID, rootID, userID, "@"+BotName+" "+text)
	if err != nil {
		return "", fmt.Errorf("mention in thread %s of %s: %w", rootID, channelID, err)
	}
	return postID, nil
}

// userPost stores a user's mention of the bot and broadcasts it.
func (s *Server) userPost(channelID, rootID, userID, message string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkUserPostLocked(userID); err != nil {
		return "", err
	}
	ch := s.channelByIDLocked(channelID)
	if ch == nil {
		return "", errors.New("no such channel")
	}
	if rootID != "" {
		root := s.posts[rootID]
		if root == nil || root.RootID != "" || root.ChannelID != ch.id {
			return "", errors.New("no such root post in the channel")
		}
	}
	s.userNameLocked(userID)
	p := &post{Post: Post{ID: s.newIDLocked("post"), ChannelID: ch.id, RootID: rootID, Message: message, UserID: userID}}
	s.addPostLocked(p, []string{BotUserID})
	return p.ID, nil
}

// DirectMessage stores a user's post of text in the user's direct message
// channel with the bot (type "D", named "<id1>__<id2>" with the smaller id
// first), creating the channel the first time, and broadcasts its posted
// event, with channel_type "D" and, as Mattermost does for direct messages,
// the bot in its mentions. It returns the channel's and the post's ids; it
// fails, storing nothing, if no authenticated websocket is open.
func (s *Server) DirectMessage(userID, text string) (channelID, postID string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkUserPostLocked(userID); err != nil {
		return "", "", fmt.Errorf("direct message from %s: %w", userID, err)
	}
	ch := s.directChannelLocked(userID)
	p := &post{Post: Post{ID: s.newIDLocked("post"), ChannelID: ch.id, Message: text, UserID: userID}}
	s.addPostLocked(p, []string{BotUserID})
	return ch.id, p.ID, nil
}

// checkUserPostLocked returns why a user's post cannot be injected now, or
// nil. s.mu must be held.
func (s *Server) checkUserPostLocked(userID string) error {
	switch {
	case s.closed:
		return fake.ErrClosed
	case userID == "":
		return errors.New("no user id")
	case s.connectedLocked() == 0:
		return errNotConnected
	}
	return nil
}

// broadcastPostedLocked broadcasts the posted event of a new post, as
// Mattermost's notifications send it. s.mu must be held.
func (s *Server) broadcastPostedLocked(ch *channel, p *post, mentions []string) {
	postJSON, err := json.Marshal(s.clientPostLocked(p))
	if err != nil {
		return
	}
	sender := s.userNameLocked(p.UserID)
	displayName := ch.displayName
	if ch.typ == channelDirect {
		displayName = "@" + sender
	}
	data := object{
		"channel_display_name": displayName, "channel_name": ch.name, "channel_type": ch.typ,
		"post": string(postJSON), "sender_name": "@" + sender, "set_online": true, "team_id": ch.teamID,
	}
	if len(mentions) > 0 {
		ids, err := json.Marshal(mentions)
		if err == nil {
			data["mentions"] = string(ids)
		}
	}
	s.broadcastLocked(&wsEvent{Event: "posted", Data: data, Broadcast: wsBroadcast{ChannelID: ch.id}})
}

// broadcastPostEditedLocked broadcasts the post_edited event of an edited
// post. s.mu must be held.
func (s *Server) broadcastPostEditedLocked(p *post) {
	postJSON, err := json.Marshal(s.clientPostLocked(p))
	if err != nil {
		return
	}
	data := object{"post": string(postJSON)}
	s.broadcastLocked(&wsEvent{Event: "post_edited", Data: data, Broadcast: wsBroadcast{ChannelID: p.ChannelID}})
}

// broadcastLocked queues the event for every authenticated websocket. The
// event must not change afterwards. s.mu must be held.
func (s *Server) broadcastLocked(ev *wsEvent) {
	for _, c := range s.conns {
		if c.authed {
			c.sendLocked(wsMessage{event: ev})
		}
	}
}

// sendLocked queues a message for the websocket. If its queue is full the
// client is not reading, and the websocket is closed, as Mattermost's hub
// does. c.s.mu must be held.
func (c *conn) sendLocked(m wsMessage) {
	select {
	case c.out <- m:
	default:
		_ = c.Close()
	}
}

// authenticateLocked marks the websocket authenticated, answers the
// authentication challenge with seq if seq > 0, and says hello. s.mu must be held.
func (s *Server) authenticateLocked(c *conn, seq int64) {
	c.authed = true
	s.accepted++
	if seq > 0 {
		c.sendLocked(wsMessage{response: &wsResponse{Status: "OK", SeqReply: seq}})
	}
	hello := &wsEvent{
		Event:     "hello",
		Data:      object{"server_version": serverVersion, "connection_id": c.id},
		Broadcast: wsBroadcast{UserID: BotUserID},
	}
	c.sendLocked(wsMessage{event: hello})
	s.changes.Notify()
}

// serveWebSocket serves /api/v4/websocket. A request with the bot's token
// in its Authorization header is authenticated at once and said hello to;
// any other must send an authentication_challenge with the token first,
// within the auth timeout, or be closed.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed || s.faults.Down() {
		s.mu.Unlock()
		writeDown(w)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered with an HTTP error
	}
	c := &conn{Socket: fake.NewSocket(ws), s: s, out: make(chan wsMessage, sendQueueSize), quit: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.GoAway()
		return
	}
	c.id = s.newIDLocked("connection")
	s.conns = append(s.conns, c)
	if authorized(r) {
		s.authenticateLocked(c, 0)
	}
	s.mu.Unlock()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.write()
	}()
	c.read()
	close(c.quit)
	<-writerDone
	_ = ws.Close()

	s.mu.Lock()
	s.conns = slices.DeleteFunc(s.conns, func(other *conn) bool { return other == c })
	s.changes.Notify()
	s.mu.Unlock()
	c.Release()
}

// read reads the client's actions until the websocket fails or the server
// closes it.
func (c *conn) read() {
	c.SetReadLimit(maxSocketMessageBytes)
	if err := c.SetReadDeadline(time.Now().Add(pongWait)); err != nil {
		return
	}
	c.SetPongHandler(func(string) error {
		return c.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		typ, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.TextMessage {
			continue // msgpack-encoded binary actions are not supported
		}
		var req wsRequest
		if err := json.Unmarshal(data, &req); err != nil {
			return // Mattermost closes a websocket that sends what it cannot decode
		}
		if !c.handle(req) {
			return
		}
	}
}

// handle answers one action as Mattermost's websocket router does, and
// reports whether the websocket stays open.
func (c *conn) handle(req wsRequest) bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := func(data object) {
		c.sendLocked(wsMessage{response: &wsResponse{Status: "OK", SeqReply: req.Seq, Data: data}})
	}
	refuse := func(status int, id, message string) {
		c.sendLocked(wsMessage{response: &wsResponse{Status: "FAIL", SeqReply: req.Seq, Error: newAppError(status, id, message)}})
	}
	switch {
	case req.Action == "":
		refuse(http.StatusBadRequest, "api.web_socket_router.no_action.app_error", "No websocket action.")
	case req.Seq <= 0:
		refuse(http.StatusBadRequest, "api.web_socket_router.bad_seq.app_error", "Invalid sequence for WebSocket message.")
	case req.Action == "authentication_challenge":
		if c.authed {
			return true // Mattermost ignores it on an authenticated websocket
		}
		if token, _ := req.Data["token"].(string); token != Token {
			return false // Mattermost closes the websocket
		}
		s.authenticateLocked(c, req.Seq)
	case !c.authed:
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

// write sends the queued messages, numbering the events, and pings, until
// the reader stops or a write fails. It closes a websocket that has not
// authenticated within the auth timeout.
func (c *conn) write() {
	ping := time.NewTicker(c.s.pingInterval)
	defer ping.Stop()
	authCheck := time.NewTimer(c.s.authTimeout)
	defer authCheck.Stop()
	var seq int64
	for {
		select {
		case <-c.quit:
			return
		case m := <-c.out:
			var v any = m.response
			if m.event != nil {
				ev := *m.event
				ev.Seq = seq
				seq++
				v = ev
			}
			data, err := json.Marshal(v)
			if err != nil {
				continue
			}
			if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
				_ = c.Close()
				return
			}
			if err := c.WriteMessage(websocket.TextMessage, data); err != nil {
				_ = c.Close()
				return
			}
		case <-ping.C:
			if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				_ = c.Close()
				return
			}
		case <-authCheck.C:
			c.s.mu.Lock()
			authed := c.authed
			c.s.mu.Unlock()
			if !authed {
				_ = c.Close()
				return
			}
		}
	}
}
