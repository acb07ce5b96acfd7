package slacktest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

const (
	// pingInterval is how often the server pings each websocket. slack-go's
	// socketmode client reconnects when pings stop for its ping interval
	// (30s by default).
	pingInterval = time.Second
	// writeTimeout bounds every websocket write.
	writeTimeout = 5 * time.Second
)

// errNotConnected is returned when an event is pushed while no Socket Mode client is connected.
var errNotConnected = errors.New("no socket mode connection")

// socketConn is one open Socket Mode websocket, released when the reader
// has stopped and the server has let go of it.
type socketConn struct {
	*fake.Socket
	app     *app       // the app whose token opened it
	writeMu sync.Mutex // serializes data frames; control frames need no lock
}

// send writes one message to the websocket as JSON.
func (c *socketConn) send(msg any) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode socket mode message: %w", err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("write socket mode message: %w", err)
	}
	if err := c.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("write socket mode message: %w", err)
	}
	return nil
}

// envelope is a Socket Mode request as Slack sends it:
// https://api.slack.com/apis/socket-mode
type envelope struct {
	EnvelopeID             string `json:"envelope_id"`
	Type                   string `json:"type"`
	AcceptsResponsePayload bool   `json:"accepts_response_payload"`
	RetryAttempt           int    `json:"retry_attempt"`
	RetryReason            string `json:"retry_reason"`
	Payload                object `json:"payload"`
}

// ack is what a Socket Mode client sends back for an envelope. It may carry
// a payload too, which the server ignores.
type ack struct {
	EnvelopeID string `json:"envelope_id"`
}

// Connections returns how many websocket connections the server has accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Connected returns how many websocket connections are open now.
func (s *Server) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WaitConnected waits until the server has accepted at least total websocket
// connections and at least one is open.
func (s *Server) WaitConnected(ctx context.Context, total int) error {
	err := s.changes.Wait(ctx, &s.mu, func() bool { return s.accepted >= total && len(s.conns) > 0 })
	if err != nil {
		return fmt.Errorf("wait for %d socket mode connections: %w", total, err)
	}
	return nil
}

// Drop cuts every open websocket abruptly, closing the network connection
// without a close frame, and returns once the server has let go of them.
func (s *Server) Drop() {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	fake.Drop(conns)
}

// Acked reports whether the client acknowledged the envelope.
func (s *Server) Acked(envelopeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acks[envelopeID]
}

// WaitAcked waits until the client acknowledges the envelope.
func (s *Server) WaitAcked(ctx context.Context, envelopeID string) error {
	if err := s.changes.Wait(ctx, &s.mu, func() bool { return s.acks[envelopeID] }); err != nil {
		return fmt.Errorf("wait for ack of envelope %s: %w", envelopeID, err)
	}
	return nil
}

// Mention posts a user's message mentioning the bot ("<@UKUBECHAT> " + text)
// into the channel and pushes its app_mention event to one open connection.
// It returns the message's ts and the envelope id; it fails, posting
// nothing, if no client is connected.
func (s *Server) Mention(channelID, userID, text string) (ts, envelopeID string, err error) {
	return s.mention(channelID, "", userID, text)
}

// MentionInThread is Mention as a reply in the thread rooted at threadTS,
// which must be a message of the channel.
func (s *Server) MentionInThread(channelID, threadTS, userID, text string) (ts, envelopeID string, err error) {
	return s.mention(channelID, threadTS, userID, text)
}

// mention implements Mention and MentionInThread.
func (s *Server) mention(channelID, threadTS, userID, text string) (ts, envelopeID string, err error) {
	env, err := s.push(func() (string, object, error) {
		ch := s.channelByIDLocked(channelID)
		switch {
		case ch == nil:
			return "", nil, errChannelNotFound
		case threadTS != "" && s.messageLocked(ch.id, threadTS) == nil:
			return "", nil, fmt.Errorf("thread %s: %w", threadTS, errMessageNotFound)
		}
		msg := Message{Channel: ch.id, TS: s.nextTSLocked(), ThreadTS: threadTS, Text: "<@" + BotUserID + "> " + text, User: userID}
		s.addMessageLocked(msg)
		ts = msg.TS
		event := object{
			"type": "app_mention", "user": userID, "text": msg.Text, "ts": msg.TS,
			"channel": ch.id, "event_ts": msg.TS, "team": TeamID,
		}
		if threadTS != "" {
			event["thread_ts"] = threadTS
		}
		return "events_api", s.eventCallbackLocked(event), nil
	})
	if err != nil {
		return ts, env.EnvelopeID, fmt.Errorf("mention in %s: %w", channelID, err)
	}
	return ts, env.EnvelopeID, nil
}

// DirectMessage posts a user's message into the user's direct message
// channel with the bot ("D" + userID) and pushes its message event
// (channel_type "im") to one open connection. It returns the message's ts and
// the envelope id; it fails, posting nothing, if no client is connected.
func (s *Server) DirectMessage(userID, text string) (ts, envelopeID string, err error) {
	env, err := s.push(func() (string, object, error) {
		ch := s.directChannelLocked(userID)
		msg := Message{Channel: ch.id, TS: s.nextTSLocked(), Text: text, User: userID}
		s.addMessageLocked(msg)
		ts = msg.TS
		event := object{
			"type": "message", "channel": ch.id, "channel_type": "im", "user": userID,
			"text": text, "ts": msg.TS, "event_ts": msg.TS, "team": TeamID,
		}
		return "events_api", s.eventCallbackLocked(event), nil
	})
	if err != nil {
		return ts, env.EnvelopeID, fmt.Errorf("direct message from %s: %w", userID, err)
	}
	return ts, env.EnvelopeID, nil
}

// Click pushes a block_actions interaction, the user clicking the element
// with actionID on a stored message, to one open connection, and returns the
// envelope id. If value is set and the message's blocks hold a static_select
// with that action id, the action selects the option with that value;
// otherwise it is a button click carrying value. The payload's response_url
// points at the server but is not served.
func (s *Server) Click(channelID, messageTS, userID, actionID, value string) (envelopeID string, err error) {
	owner := func() *app {
		if ch := s.channelByIDLocked(channelID); ch != nil {
			if msg := s.messageLocked(ch.id, messageTS); msg != nil {
				if a := s.appByBotLocked(msg.User); a != nil {
					return a
				}
			}
		}
		return s.apps[0]
	}
	env, err := s.pushTo(owner, func() (string, object, error) {
		ch := s.channelByIDLocked(channelID)
		if ch == nil {
			return "", nil, errChannelNotFound
		}
		msg := s.messageLocked(ch.id, messageTS)
		if msg == nil {
			return "", nil, errMessageNotFound
		}
		seq := s.nextSeqLocked()
		action := blockAction(msg.Blocks, actionID, value)
		action["action_ts"] = s.nextTSLocked()
		container := object{"type": "message", "message_ts": msg.TS, "channel_id": ch.id, "is_ephemeral": false}
		if msg.ThreadTS != "" {
			container["thread_ts"] = msg.ThreadTS
		}
		userName := strings.ToLower(userID)
		return "interactive", object{
			"type":                  "block_actions",
			"token":                 verificationToken,
			"api_app_id":            owner().appID,
			"team":                  object{"id": TeamID, "domain": teamDomain},
			"enterprise":            nil,
			"is_enterprise_install": false,
			"user":                  object{"id": userID, "username": userName, "name": userName, "team_id": TeamID},
			"container":             container,
			"channel":               object{"id": ch.id, "name": cmp.Or(ch.name, "directmessage")},
			"message":               s.messageJSONLocked(*msg),
			"state":                 object{"values": object{}},
			"trigger_id":            fmt.Sprintf("%d.%d.faketrigger", seq, seq),
			"response_url":          fmt.Sprintf("%s/actions/%s/%d", s.baseURL, TeamID, seq),
			"actions":               []object{action},
		}, nil
	})
	if err != nil {
		return env.EnvelopeID, fmt.Errorf("click %s on %s in %s: %w", actionID, messageTS, channelID, err)
	}
	return env.EnvelopeID, nil
}

// push delivers one envelope to the newest open connection. build runs
// with s.mu held, and only when a client is connected; it stores what the
// event is about and returns the envelope's type and payload. push returns
// the envelope unless build fails; a failed write still returns it.
func (s *Server) push(build func() (kind string, payload object, err error)) (envelope, error) {
	return s.pushTo(nil, build)
}

// pushTo is push to one app's newest connection (the default app's when a
// is nil; for a click, the app that posted the message: see Click).
func (s *Server) pushTo(pick func() *app, build func() (kind string, payload object, err error)) (envelope, error) {
	s.mu.Lock()
	a := s.apps[0]
	if pick != nil {
		a = pick()
	}
	conn := s.newestConnOfLocked(a)
	if conn == nil {
		s.mu.Unlock()
		return envelope{}, errNotConnected
	}
	kind, payload, err := build()
	if err != nil {
		s.mu.Unlock()
		return envelope{}, err
	}
	env := s.newEnvelopeLocked(kind, payload)
	s.mu.Unlock()
	return env, conn.send(env)
}

// newEnvelopeLocked wraps a payload in an envelope with a new id and starts
// tracking its ack. s.mu must be held.
func (s *Server) newEnvelopeLocked(kind string, payload object) envelope {
	id := fmt.Sprintf("5e7a1c3e-0000-4000-8000-%012x", s.nextSeqLocked())
	s.acks[id] = false
	return envelope{EnvelopeID: id, Type: kind, Payload: payload}
}

// eventCallbackLocked wraps an event as the Events API delivers it. s.mu must be held.
func (s *Server) eventCallbackLocked(event object) object {
	return s.eventCallbackForLocked(s.apps[0], event)
}

// eventCallbackForLocked wraps an event for app a. s.mu must be held.
func (s *Server) eventCallbackForLocked(a *app, event object) object {
	return object{
		"token":      verificationToken,
		"team_id":    TeamID,
		"api_app_id": a.appID,
		"event":      event,
		"type":       "event_callback",
		"event_id":   fmt.Sprintf("Ev%010d", s.nextSeqLocked()),
		"event_time": time.Now().Unix(),
		"authorizations": []object{{
			"enterprise_id": nil, "team_id": TeamID, "user_id": a.BotUserID, "is_bot": true, "is_enterprise_install": false,
		}},
		"is_ext_shared_channel": false,
	}
}

// serveSocket serves the Socket Mode websocket: it checks the ticket from
// apps.connections.open, says hello, then pings the client and reads its acks.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	a := s.takeTicket(r.URL.Query().Get("ticket"))
	if a == nil {
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered with an HTTP error
	}
	c := &socketConn{Socket: fake.NewSocket(ws), app: a}
	hello := object{
		"type":            "hello",
		"num_connections": 1,
		"debug_info":      object{"host": "fake", "approximate_connection_time": 18060},
		"connection_info": object{"app_id": a.appID},
	}
	// Hello goes out under the registration lock: once the client has read
	// it, the connection is registered, and events pushed then reach it.
	ok, err := s.register(c, func() error { return c.send(hello) })
	if err != nil {
		_ = ws.Close()
		return
	}
	if !ok {
		c.GoAway()
		return
	}
	go s.readSocket(c)
	go s.pingSocket(c)
}

// takeTicket returns the app a ticket was handed out to, if it was not used
// yet, and uses it; nil otherwise.
func (s *Server) takeTicket(ticket string) *app {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.tickets[ticket]
	delete(s.tickets, ticket)
	return a
}

// register sends the connection's first message and adds the open
// websocket, accounting for its two goroutines, unless the server is closing.
func (s *Server) register(c *socketConn, first func() error) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, nil
	}
	if err := first(); err != nil {
		return false, err
	}
	s.wg.Add(2) // readSocket and pingSocket
	s.conns = append(s.conns, c)
	s.accepted++
	s.changes.Notify()
	return true, nil
}

// readSocket reads the client's frames, marking acknowledged envelopes,
// until the connection fails; then it removes the connection.
func (s *Server) readSocket(c *socketConn) {
	defer s.wg.Done()
	defer c.Release()
	defer s.unregister(c)
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var a ack
		if json.Unmarshal(data, &a) == nil && a.EnvelopeID != "" {
			s.markAcked(a.EnvelopeID)
		}
	}
}

// pingSocket sends a websocket ping every pingInterval until the connection goes.
func (s *Server) pingSocket(c *socketConn) {
	defer s.wg.Done()
	ticker := time.NewTicker(pingInterval)
	defer ticker.Stop()
	for {
		select {
		case <-c.Released():
			return
		case <-ticker.C:
			if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				return
			}
		}
	}
}

// unregister closes a websocket and forgets it.
func (s *Server) unregister(c *socketConn) {
	_ = c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = slices.DeleteFunc(s.conns, func(open *socketConn) bool { return open == c })
	s.changes.Notify()
}

// markAcked records the ack of an envelope the server pushed.
func (s *Server) markAcked(envelopeID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, pushed := s.acks[envelopeID]; pushed {
		s.acks[envelopeID] = true
		s.changes.Notify()
	}
}

// blockElement is the part of a Block Kit interactive element Click reads.
type blockElement struct {
	Type         string          `json:"type"`
	ActionID     string          `json:"action_id"`
	Text         json.RawMessage `json:"text"`
	Options      []blockOption   `json:"options"`
	OptionGroups []struct {
		Options []blockOption `json:"options"`
	} `json:"option_groups"`
}

// blockOption is an option of a select element.
type blockOption struct {
	Text  json.RawMessage `json:"text"`
	Value string          `json:"value"`
}

// findElement looks for the element with the action id in a blocks array:
// among the elements of actions blocks and the accessories of sections. It
// returns the element and the block_id of its block.
func findElement(blocks json.RawMessage, actionID string) (el blockElement, blockID string, found bool) {
	var list []struct {
		BlockID   string            `json:"block_id"`
		Elements  []json.RawMessage `json:"elements"`
		Accessory json.RawMessage   `json:"accessory"`
	}
	if json.Unmarshal(blocks, &list) != nil {
		return blockElement{}, "", false
	}
	for _, b := range list {
		for _, raw := range slices.Concat(b.Elements, []json.RawMessage{b.Accessory}) {
			var candidate blockElement
			if json.Unmarshal(raw, &candidate) == nil && candidate.ActionID == actionID {
				return candidate, b.BlockID, true
			}
		}
	}
	return blockElement{}, "", false
}

// blockAction builds the action of a block_actions payload: a static_select
// choosing value if the blocks have such a select with the action id, else
// a button click carrying value.
func blockAction(blocks json.RawMessage, actionID, value string) object {
	el, blockID, found := findElement(blocks, actionID)
	// slack-go tells block actions from attachment actions by a string block_id.
	action := object{"action_id": actionID, "block_id": blockID}
	if found && el.Type == "static_select" && value != "" {
		action["type"] = "static_select"
		action["selected_option"] = object{"text": el.optionText(value), "value": value}
		return action
	}
	action["type"] = "button"
	action["value"] = value
	if found && len(el.Text) > 0 {
		action["text"] = el.Text
	}
	return action
}

// optionText returns the text object of the select's option with the value,
// or a plain_text object of the value if the select has no such option.
func (el blockElement) optionText(value string) any {
	options := slices.Clone(el.Options)
	for _, group := range el.OptionGroups {
		options = append(options, group.Options...)
	}
	for _, o := range options {
		if o.Value == value && len(o.Text) > 0 {
			return o.Text
		}
	}
	return object{"type": "plain_text", "text": value}
}
