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
	"time"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

const (
	// pingInterval is how often the server pings each websocket. slack-go's
	// socketmode client reconnects when pings stop for its ping interval
	// (30s by default).
	pingInterval = time.Second
	// sendQueue is how many messages may wait for a websocket before the
	// server gives up on it.
	sendQueue = 256
)

// errNotConnected is returned when an event is pushed while no Socket Mode client is connected.
var errNotConnected = errors.New("no socket mode connection")

type socketConn struct {
	*fake.Conn
	app *app // the app whose token opened it
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

// Acked reports whether the client acknowledged the envelope.
func (s *Server) Acked(envelopeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acks[envelopeID]
}

// WaitAcked waits until the client acknowledges the envelope.
func (s *Server) WaitAcked(ctx context.Context, envelopeID string) error {
	if err := s.Store.Wait(ctx, &s.mu, func() bool { return s.acks[envelopeID] }); err != nil {
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

func (s *Server) mention(channelID, threadTS, userID, text string) (ts, envelopeID string, err error) {
	envelopeID, err = s.push(nil, func(a *app) (string, object, error) {
		_, known := s.Store.Channel(channelID)
		switch _, root := s.messageIn(channelID, threadTS); {
		case !known:
			return "", nil, errChannelNotFound
		case threadTS != "" && !root:
			return "", nil, fmt.Errorf("thread %s: %w", threadTS, errMessageNotFound)
		}
		msg := s.postLocked(channelID, threadTS, userID, "<@"+BotUserID+"> "+text, nil)
		ts = msg.ID
		return "events_api", s.eventCallbackLocked(a, messageEvent("app_mention", msg)), nil
	})
	return ts, envelopeID, fake.Wrap(err, "mention in %s", channelID)
}

// DirectMessage posts a user's message into the user's direct message
// channel with the bot ("D" + userID) and pushes its message event
// (channel_type "im") to one open connection. It returns the message's ts and
// the envelope id; it fails, posting nothing, if no client is connected.
func (s *Server) DirectMessage(userID, text string) (ts, envelopeID string, err error) {
	envelopeID, err = s.push(nil, func(a *app) (string, object, error) {
		ch := s.Store.DirectChannel(userID, func() fake.Channel { return fake.Channel{ID: "D" + userID} })
		msg := s.postLocked(ch.ID, "", userID, text, nil)
		ts = msg.ID
		event := messageEvent("message", msg)
		event["channel_type"] = "im"
		return "events_api", s.eventCallbackLocked(a, event), nil
	})
	return ts, envelopeID, fake.Wrap(err, "direct message from %s", userID)
}

// Click pushes a block_actions interaction, the user clicking the element
// with actionID on a stored message, to one open connection of the app that
// posted the message, and returns the envelope id. If value is set and the
// message's blocks hold a static_select with that action id, the action
// selects the option with that value; otherwise it is a button click
// carrying value. The payload's response_url points at the server but is
// not served.
func (s *Server) Click(channelID, messageTS, userID, actionID, value string) (envelopeID string, err error) {
	msg, found := s.messageIn(channelID, messageTS)
	s.mu.Lock()
	owner := s.appByBotLocked(msg.Author)
	s.mu.Unlock()
	envelopeID, err = s.push(owner, func(a *app) (string, object, error) {
		ch, ok := s.Store.Channel(channelID)
		switch {
		case !ok:
			return "", nil, errChannelNotFound
		case !found:
			return "", nil, errMessageNotFound
		}
		seq := s.nextSeqLocked()
		action := blockAction(msg.X, actionID, value)
		action["action_ts"] = s.nextTS()
		container := object{"type": "message", "message_ts": msg.ID, "channel_id": ch.ID, "is_ephemeral": false}
		if msg.Thread != "" {
			container["thread_ts"] = msg.Thread
		}
		userName := strings.ToLower(userID)
		return "interactive", object{
			"type": "block_actions", "token": verificationToken, "api_app_id": a.appID,
			"team": object{"id": TeamID, "domain": teamDomain}, "enterprise": nil, "is_enterprise_install": false,
			"user":    object{"id": userID, "username": userName, "name": userName, "team_id": TeamID},
			"channel": object{"id": ch.ID, "name": cmp.Or(ch.Name, "directmessage")}, "container": container,
			"message": s.messageJSONLocked(msg), "state": object{"values": object{}}, "actions": []object{action},
			"trigger_id":   fmt.Sprintf("%d.%d.faketrigger", seq, seq),
			"response_url": fmt.Sprintf("%s/actions/%s/%d", s.URL(), TeamID, seq),
		}, nil
	})
	return envelopeID, fake.Wrap(err, "click %s on %s in %s", actionID, messageTS, channelID)
}

// push delivers one envelope to app a's newest open connection (the default
// app's when a is nil) and returns its id. build runs with s.mu held, and
// only when the app is connected; it stores what the event is about and
// returns the envelope's type and payload.
func (s *Server) push(a *app, build func(a *app) (kind string, payload object, err error)) (envelopeID string, err error) {
	s.mu.Lock()
	a = cmp.Or(a, s.apps[0])
	conn := s.newestConnOf(a)
	if conn == nil {
		s.mu.Unlock()
		return "", errNotConnected
	}
	kind, payload, err := build(a)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	env := s.newEnvelopeLocked(kind, payload)
	s.mu.Unlock()
	if !conn.SendJSON(env) {
		return env.EnvelopeID, errNotConnected
	}
	return env.EnvelopeID, nil
}

func (s *Server) newEnvelopeLocked(kind string, payload object) envelope {
	id := fmt.Sprintf("5e7a1c3e-0000-4000-8000-%012x", s.nextSeqLocked())
	s.acks[id] = false
	return envelope{EnvelopeID: id, Type: kind, Payload: payload}
}

// messageEvent is the Events API event of the type about a user's message.
func messageEvent(typ string, msg message) object {
	event := object{"type": typ, "user": msg.Author, "text": msg.Text, "ts": msg.ID, "channel": msg.Channel, "event_ts": msg.ID, "team": TeamID}
	if msg.Thread != "" {
		event["thread_ts"] = msg.Thread
	}
	return event
}

// eventCallbackLocked wraps an event for app a as the Events API delivers
// it. s.mu must be held.
func (s *Server) eventCallbackLocked(a *app, event object) object {
	return object{
		"token": verificationToken, "team_id": TeamID, "api_app_id": a.appID, "event": event, "type": "event_callback",
		"event_id": fmt.Sprintf("Ev%010d", s.nextSeqLocked()), "event_time": time.Now().Unix(), "is_ext_shared_channel": false,
		"authorizations": []object{{
			"enterprise_id": nil, "team_id": TeamID, "user_id": a.BotUserID, "is_bot": true, "is_enterprise_install": false,
		}},
	}
}

// serveSocket serves the Socket Mode websocket: it checks the ticket from
// apps.connections.open, says hello, then pings the client and reads its
// acks (which may carry a payload, ignored).
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	a := s.tickets[r.URL.Query().Get("ticket")]
	delete(s.tickets, r.URL.Query().Get("ticket"))
	s.mu.Unlock()
	if a == nil {
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	c, ok := s.Hub.Accept(w, r, func(conn *fake.Conn) *socketConn { return &socketConn{Conn: conn, app: a} })
	if !ok {
		return
	}
	// Hello is queued before the connection counts: events pushed once it
	// does reach the client after hello.
	c.SendJSON(object{
		"type": "hello", "num_connections": 1, "connection_info": object{"app_id": a.appID},
		"debug_info": object{"host": "fake", "approximate_connection_time": 18060},
	})
	s.Hub.SetReady(c, true)
	s.Hub.Serve(c, pingInterval, func(_ int, data []byte) bool {
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		_ = json.Unmarshal(data, &ack)
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, pushed := s.acks[ack.EnvelopeID]; pushed {
			s.acks[ack.EnvelopeID] = true
			s.Store.Notify()
		}
		return true
	})
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

type blockOption struct {
	Text  json.RawMessage `json:"text"`
	Value string          `json:"value"`
}

// blockAction builds the action of a block_actions payload: a static_select
// choosing value if the blocks have such a select with the action id, else
// a button click carrying value. It looks for the element among the
// elements of actions blocks and the accessories of sections.
func blockAction(blocks json.RawMessage, actionID, value string) object {
	var list []struct {
		BlockID   string            `json:"block_id"`
		Elements  []json.RawMessage `json:"elements"`
		Accessory json.RawMessage   `json:"accessory"`
	}
	_ = json.Unmarshal(blocks, &list)
	// slack-go tells block actions from attachment actions by a string block_id.
	action := object{"action_id": actionID, "block_id": "", "type": "button", "value": value}
	for _, b := range list {
		for _, raw := range slices.Concat(b.Elements, []json.RawMessage{b.Accessory}) {
			var el blockElement
			if json.Unmarshal(raw, &el) != nil || el.ActionID != actionID {
				continue
			}
			action["block_id"] = b.BlockID
			if el.Type == "static_select" && value != "" {
				delete(action, "value")
				action["type"] = "static_select"
				action["selected_option"] = object{"text": el.optionText(value), "value": value}
			} else if len(el.Text) > 0 {
				action["text"] = el.Text
			}
			return action
		}
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
