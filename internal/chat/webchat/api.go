package webchat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kubechat/kubechat/internal/chat"
)

const (
	// maxText bounds a typed command, in characters.
	maxText = 4000
	// keepAlive is how often an idle stream sends a comment, so that
	// proxies keep it open and a dead client is noticed.
	keepAlive = 15 * time.Second
	// streamWriteTimeout bounds one write to a stream.
	streamWriteTimeout = 30 * time.Second
	// reconnectDelay is how long a browser waits before reconnecting a
	// stream that ended (the SSE "retry" field), in milliseconds.
	reconnectDelay = 2000
)

// serveEvents streams every message and edit as Server-Sent Events
// (https://html.spec.whatwg.org/multipage/server-sent-events.html): first
// what the page missed since Last-Event-ID (or ?after=, for a page that
// opens a new EventSource), then live changes. "reset" tells the page to
// drop what it holds first; "ready" ends the catch-up.
func (p *platform) serveEvents(w http.ResponseWriter, r *http.Request, _ identity) {
	after := r.Header.Get("Last-Event-ID")
	if after == "" {
		after = r.URL.Query().Get("after")
	}
	s, backlog, reset := p.hub.subscribe(after)
	if s == nil {
		writeError(w, http.StatusServiceUnavailable, "the web chat is not running: the agent is stopping")
		return
	}
	defer p.hub.unsubscribe(s)
	// The agent's HTTP server bounds each response with a write timeout; a
	// stream lives longer, so each write gets a deadline of its own.
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	w.WriteHeader(http.StatusOK)
	send := func(chunks ...string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		for _, c := range chunks {
			if _, err := io.WriteString(w, c); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	first := []string{fmt.Sprintf("retry: %d\n\n", reconnectDelay)}
	if reset {
		first = append(first, "event: reset\ndata: {}\n\n")
	}
	for _, ev := range backlog {
		first = append(first, eventText(ev))
	}
	first = append(first, "event: ready\ndata: {}\n\n")
	if send(first...) != nil {
		return
	}
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.cut:
			return
		case ev := <-s.events:
			err = send(eventText(ev))
		case <-ping.C:
			err = send(": ping\n\n")
		}
		if err != nil {
			return
		}
	}
}

func eventText(ev event) string { return "id: " + ev.id + "\ndata: " + string(ev.data) + "\n\n" }

// serveFile sends an uploaded file's content.
func (p *platform) serveFile(w http.ResponseWriter, r *http.Request, _ identity) {
	r0, ok := p.hub.find(r.PathValue("id"))
	if !ok || r0.msg.File == nil {
		writeError(w, http.StatusNotFound, "no such file: it may have left the history")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": r0.msg.File.Name}))
	_, _ = io.WriteString(w, r0.content)
}

// postRequest is a typed message.
type postRequest struct {
	Channel string `json:"channel"`
	Text    string `json:"text"`
	// Thread, when set, is a message of the thread the text is typed in.
	Thread string `json:"thread,omitempty"`
}

// actionRequest is a click on a button, or a choice in a select.
type actionRequest struct {
	Channel string `json:"channel"`
	Message string `json:"message"`
	Action  string `json:"action"`
	Value   string `json:"value,omitempty"`
}

// serveMessage shows what the user typed in the channel and hands the
// command to the handler; the reply goes into its thread.
func (p *platform) serveMessage(w http.ResponseWriter, r *http.Request, id identity) {
	var req postRequest
	if !decodeJSON(w, r, &req, "channel, text, thread") {
		return
	}
	if !p.checkChannel(w, req.Channel) {
		return
	}
	text := strings.TrimSpace(req.Text)
	command := stripMention(text, p.s.BotName)
	switch {
	case text == "":
		writeError(w, http.StatusBadRequest, "text: is required")
		return
	case utf8.RuneCountInString(text) > maxText:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("text: is longer than %d characters", maxText))
		return
	case command == "":
		writeError(w, http.StatusBadRequest, "text: has no command after @"+p.s.BotName)
		return
	}
	handle := p.handler()
	if handle == nil {
		writeError(w, http.StatusServiceUnavailable, "not taking commands: the agent is starting or stopping")
		return
	}
	thread := ""
	if req.Thread != "" {
		root, ok := p.hub.get(req.Channel, req.Thread)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("thread: no message %q in channel %q (it may have left the history)", req.Thread, req.Channel))
			return
		}
		thread = root.msg.rootID()
	}
	msg := p.hub.add(wireMessage{Channel: req.Channel, Thread: thread, Kind: kindUser, Author: id.Name, Time: time.Now().UTC(), Text: text}, "")
	root := msg.rootID()
	handle(chat.Inbound{
		Platform: p.name, Channel: chat.Channel{Name: req.Channel, ID: req.Channel},
		UserID: id.ID, UserName: id.Name, Text: command,
		Thread: chat.MessageRef{Platform: p.name, Channel: req.Channel, ID: root, Thread: root},
	})
	writeJSON(w, http.StatusAccepted, map[string]string{"id": msg.ID, "thread": root})
}

// serveAction hands a click on a message's button or select to the
// handler; the reply goes into the message's thread. Only the actions the
// message shows, with the values its selects offer, are taken.
func (p *platform) serveAction(w http.ResponseWriter, r *http.Request, id identity) {
	var req actionRequest
	if !decodeJSON(w, r, &req, "channel, message, action, value") {
		return
	}
	if !p.checkChannel(w, req.Channel) {
		return
	}
	switch {
	case req.Message == "":
		writeError(w, http.StatusBadRequest, "message: is required")
		return
	case req.Action == "":
		writeError(w, http.StatusBadRequest, "action: is required")
		return
	}
	// A message from before a restart or a hand-over is not in this
	// process's history; its button still works, since the signed id is
	// what authorises a click (the command handler checks it, and the clicker).
	root := req.Message
	msg, known := p.hub.get(req.Channel, req.Message)
	values, ok := msg.actions[req.Action]
	switch {
	case !known:
	case !ok:
		writeError(w, http.StatusNotFound, fmt.Sprintf("action: message %q has no action %q (it may have been edited)", req.Message, req.Action))
		return
	case values == nil && req.Value != "":
		writeError(w, http.StatusBadRequest, "value: a button carries no value")
		return
	case values != nil && !slices.Contains(values, req.Value):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("value: %q is not one of the select's options", req.Value))
		return
	}
	handle := p.handler()
	if handle == nil {
		writeError(w, http.StatusServiceUnavailable, "not taking commands: the agent is starting or stopping")
		return
	}
	if known {
		root = msg.msg.rootID()
	}
	handle(chat.Inbound{
		Platform: p.name, Channel: chat.Channel{Name: req.Channel, ID: req.Channel},
		UserID: id.ID, UserName: id.Name, ButtonID: req.Action, Value: req.Value,
		Thread: chat.MessageRef{Platform: p.name, Channel: req.Channel, ID: root, Thread: root},
	})
	writeJSON(w, http.StatusAccepted, map[string]bool{"ok": true})
}

func (p *platform) handler() func(chat.Inbound) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handle
}

// checkChannel answers 400 or 404 unless channel is one of the web chat's.
func (p *platform) checkChannel(w http.ResponseWriter, channel string) bool {
	switch {
	case channel == "":
		writeError(w, http.StatusBadRequest, "channel: is required")
		return false
	case !p.hub.known(channel):
		writeError(w, http.StatusNotFound, fmt.Sprintf("channel: unknown channel %q (known: %s)", channel, strings.Join(p.s.Channels, ", ")))
		return false
	}
	return true
}

// rootID is the thread a reply to w goes into.
func (w *wireMessage) rootID() string {
	if w.Thread != "" {
		return w.Thread
	}
	return w.ID
}

// stripMention removes a leading "@<bot>" (with a following ':' or ',')
// from text; the mention is optional.
func stripMention(text, bot string) string {
	t := strings.TrimSpace(text)
	mention := "@" + bot
	if len(t) >= len(mention) && strings.EqualFold(t[:len(mention)], mention) {
		rest := t[len(mention):]
		if rest == "" || strings.ContainsRune(" \t\r\n:,", rune(rest[0])) {
			t = strings.TrimLeft(rest, " \t\r\n:,")
		}
	}
	return strings.TrimSpace(t)
}

// decodeJSON reads r's body, bounded, into v; on failure it answers with
// an error that names the field at fault (known lists the fields).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, known string) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "body: send a JSON object with Content-Type: application/json")
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	if len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d KiB", maxBody>>10))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, jsonProblem(err, known))
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "body: more than one JSON value")
		return false
	}
	return true
}

// jsonProblem explains a decoding error, naming the field when there is one.
func jsonProblem(err error, known string) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "body: is empty; expected a JSON object with " + known
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "body: the JSON ends too early"
	case errors.As(err, &syntax):
		return fmt.Sprintf("body: invalid JSON at byte %d: %s", syntax.Offset, syntax)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf("body: expected a JSON object with %s, got a %s", known, typ.Value)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: expected a %s, got a %s", typ.Field, typ.Type, typ.Value)
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("%s: unknown field (known: %s)", strings.Trim(field, `"`), known)
	}
	return "body: " + err.Error()
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
