// Package slacktest is a fake Slack workspace on loopback for tests.
//
// The real github.com/slack-go/slack client, and its socketmode package, run
// against it unchanged once pointed at it with slack.OptionAPIURL(srv.APIURL()).
// The Server serves the Web API methods a chat bot uses (auth.test,
// apps.connections.open, chat.postMessage, chat.update, chat.getPermalink,
// conversations.list,
// conversations.info and the three-step external file upload), keeps the
// messages and files it was sent, and drives Socket Mode: it accepts the
// websocket, pings it, pushes mentions, direct messages and button clicks as
// Socket Mode envelopes, and records which envelopes the client acknowledged.
//
// Payloads follow Slack's documented formats
// (https://api.slack.com/methods, https://api.slack.com/apis/socket-mode).
// Faults can be injected: rate limiting and server errors on the next calls
// (FailNext), an outage (SetDown) and dropped websockets (Drop). A 429
// carries {"ok":false,"error":"ratelimited"} and, when it names a wait, a
// Retry-After header in whole seconds, rounded up; other failures carry a
// plain-text body ("upstream error" for 5xx).
package slacktest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

const (
	// BotToken is the only bot token the Web API methods accept.
	BotToken = "xoxb-kubechat-test"
	// AppToken is the only app-level token apps.connections.open accepts.
	AppToken = "xapp-kubechat-test"
	// BotUserID is the bot's user id; auth.test reports it with the user name "kubechat".
	BotUserID = "UKUBECHAT"
	// TeamID is the id of the fake workspace.
	TeamID = "TKUBECHAT"
)

const (
	botID, botName, appID = "BKUBECHAT", "kubechat", "AKUBECHAT"
	teamDomain            = "kubechat-test"
	// verificationToken is the deprecated verification token Slack still puts in payloads.
	verificationToken = "kubechat-verification-token"
	maxBodyBytes      = 16 << 20
	// defaultPageSize and maxPageSize bound conversations.list pages, as Slack does.
	defaultPageSize, maxPageSize = 100, 1000
)

// Web API error codes, as Slack documents them.
const (
	errInvalidAuth       apiError = "invalid_auth"
	errInvalidArguments  apiError = "invalid_arguments"
	errUnknownMethod     apiError = "unknown_method"
	errChannelNotFound   apiError = "channel_not_found"
	errMessageNotFound   apiError = "message_not_found"
	errCantUpdateMessage apiError = "cant_update_message"
	errNoText            apiError = "no_text"
	errInvalidBlocks     apiError = "invalid_blocks"
	errInvalidCursor     apiError = "invalid_cursor"
	errFileNotFound      apiError = "file_not_found"
)

// apiError is a Slack Web API error code, answered as {"ok":false,"error":code}.
type apiError string

func (e apiError) Error() string { return string(e) }

type object = map[string]any

type message = fake.Message[json.RawMessage]

// Server is a fake Slack workspace on loopback. Create it with New and
// release it with Close. All its methods are safe for concurrent use.
type Server struct {
	*fake.Server[json.RawMessage, *socketConn]
	stamps fake.Monotonic // message timestamps, in microseconds

	mu      sync.Mutex
	seq     int                // source of ids
	uploads map[string]*upload // by file id, until files.completeUploadExternal
	calls   map[string]int     // by Web API method
	tickets map[string]*app    // apps.connections.open tickets not used yet
	apps    []*app             // installed apps; the first is the default one
	acks    map[string]bool    // by envelope id of every pushed envelope: whether it was acked
}

type upload struct {
	name, content string
	uploaded      bool
}

// Message is one message as the workspace now holds it, edits applied.
type Message struct {
	// Channel is the id of the message's channel.
	Channel string
	// TS is the message's timestamp id: unique and increasing, like "1700000000.000100".
	TS string
	// ThreadTS is the timestamp of the thread's root, or "" for a top-level message.
	ThreadTS string
	// Text is the text field as posted or last updated.
	Text string
	// Blocks is the blocks JSON array as posted or last updated, or nil if there are none.
	Blocks json.RawMessage
	// Edits counts the successful chat.update calls on the message.
	Edits int
	// User is the poster: the app's bot user (BotUserID for the default
	// app), or the user for injected messages.
	User string
}

// File is one file uploaded and shared with files.completeUploadExternal.
// A file shared to several channels is listed once per channel.
type File struct {
	// ID is the file id that files.getUploadURLExternal handed out.
	ID string
	// Name is the file name given to files.getUploadURLExternal.
	Name string
	// Title is the title given to files.completeUploadExternal, or Name if there was none.
	Title string
	// Content is what was uploaded to the upload URL.
	Content string
	// Channel is the id of the channel the file was shared to, or "" if it was not shared.
	Channel string
	// ThreadTS is the thread the file was shared into, or "" for none.
	ThreadTS string
	// InitialComment is the message that came with the file.
	InitialComment string
}

// New starts a fake workspace with the channels "alerts" and "general".
func New() *Server {
	s := &Server{
		Server:  fake.NewServer[json.RawMessage, *socketConn](sendQueue),
		uploads: map[string]*upload{}, calls: map[string]int{}, tickets: map[string]*app{}, acks: map[string]bool{},
		apps: []*app{defaultApp()},
	}
	s.Store.AddChannel(fake.Channel{ID: "C000ALERTS", Name: "alerts"})
	s.Store.AddChannel(fake.Channel{ID: "C00GENERAL", Name: "general"})
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/upload/", s.serveUpload)
	mux.HandleFunc("/socket", s.serveSocket)
	s.Start(mux)
	return s
}

// APIURL returns the base URL of the Web API for slack.OptionAPIURL; it ends in "/api/".
func (s *Server) APIURL() string {
	return s.URL() + "/api/"
}

// AddChannel adds a channel and returns its id. A leading '#' is ignored; a
// name that exists already returns that channel's id, and "" adds nothing
// and returns "".
func (s *Server) AddChannel(name string) (id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Store.EnsureChannel(name, func(int) string { return fmt.Sprintf("C%09d", s.nextSeqLocked()) })
}

// Messages returns the messages of a channel, the bot's and injected ones, in posting order.
func (s *Server) Messages(channelID string) []Message {
	return fake.Convert(s.Store.Messages(channelID), export)
}

// WaitMessages waits until the channel holds at least n messages and returns
// them all. When ctx ends first it returns the messages so far with an error.
func (s *Server) WaitMessages(ctx context.Context, channelID string, n int) ([]Message, error) {
	msgs, err := s.Store.WaitMessages(ctx, channelID, n)
	return fake.Convert(msgs, export), err
}

// Files returns the uploaded files, in the order their uploads completed.
func (s *Server) Files() []File {
	return fake.Convert(s.Store.Files(), func(f fake.File) File {
		return File{ID: f.ID, Name: f.Name, Title: f.Title, Content: f.Content, Channel: f.Channel, ThreadTS: f.Thread, InitialComment: f.Text}
	})
}

// Calls returns how many times a Web API method, such as "chat.postMessage",
// was called, failed calls included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func export(m message) Message {
	return Message{Channel: m.Channel, TS: m.ID, ThreadTS: m.Thread, Text: m.Text, Blocks: bytes.Clone(m.X), Edits: m.Edits, User: m.Author}
}

func (s *Server) nextSeqLocked() int {
	s.seq++
	return s.seq
}

// nextTS returns a message timestamp later than any before it, taken from
// the clock where it can be.
func (s *Server) nextTS() string {
	ts := s.stamps.Next(time.Now().UnixMicro())
	return fmt.Sprintf("%d.%06d", ts/1e6, ts%1e6)
}

// resolveChannel finds a channel by id, or by name with or without a
// leading '#', as chat.postMessage does.
func (s *Server) resolveChannel(ref string) (fake.Channel, error) {
	ch, ok := s.Store.Channel(ref)
	if !ok {
		ch, ok = s.Store.ChannelNamed(ref)
	}
	if !ok {
		return ch, errChannelNotFound
	}
	return ch, nil
}

// postLocked stores a new message; holding s.mu, timestamps increase in
// posting order.
func (s *Server) postLocked(channelID, threadTS, user, text string, blocks json.RawMessage) message {
	return s.Store.Post(message{ID: s.nextTS(), Channel: channelID, Thread: threadTS, Author: user, Text: text, X: blocks})
}

// messageIn returns the stored message of the channel with the timestamp.
func (s *Server) messageIn(channelID, ts string) (message, bool) {
	m, ok := s.Store.Message(ts)
	return m, ok && m.Channel == channelID
}

// channelJSON returns the channel as conversations.info and conversations.list show it.
func channelJSON(ch fake.Channel) object {
	if ch.User != "" {
		return object{"id": ch.ID, "created": ch.Created.Unix(), "is_im": true, "is_org_shared": false, "user": ch.User, "is_user_deleted": false}
	}
	return object{
		"id": ch.ID, "name": ch.Name, "name_normalized": ch.Name, "created": ch.Created.Unix(),
		"is_channel": true, "is_group": false, "is_im": false, "is_mpim": false, "is_private": false,
		"is_archived": false, "is_general": ch.Name == "general", "is_member": true,
		"topic": object{"value": "", "creator": "", "last_set": 0}, "purpose": object{"value": "", "creator": "", "last_set": 0},
	}
}

// messageJSONLocked returns the message as the Web API and interaction
// payloads show it. s.mu must be held.
func (s *Server) messageJSONLocked(msg message) object {
	m := object{"type": "message", "user": msg.Author, "text": msg.Text, "ts": msg.ID, "team": TeamID}
	if a := s.appByBotLocked(msg.Author); a != nil {
		m["bot_id"] = a.botID
	}
	if msg.Thread != "" {
		m["thread_ts"] = msg.Thread
	}
	if msg.X != nil {
		m["blocks"] = msg.X
	}
	return m
}

func writeFault(w http.ResponseWriter, f fake.Fault) {
	switch {
	case f.Status == http.StatusTooManyRequests:
		f.SetRetryAfter(w.Header())
		fake.WriteJSON(w, f.Status, object{"ok": false, "error": "ratelimited"})
	case f.Status >= http.StatusInternalServerError:
		http.Error(w, "upstream error", f.Status)
	default:
		http.Error(w, http.StatusText(f.Status), f.Status)
	}
}

type apiRequest struct {
	app    *app       // the app whose token made the call
	host   string     // the host:port the client reached the server on
	params url.Values // the form, query and JSON body fields
}

// apiMethods are the Web API methods the server serves, by name, with the
// kind of token each accepts: BotToken or AppToken (of any app).
var apiMethods = map[string]struct {
	token string
	serve func(s *Server, req apiRequest) (object, error)
}{
	"auth.test":                    {BotToken, (*Server).authTest},
	"apps.connections.open":        {AppToken, (*Server).appsConnectionsOpen},
	"chat.postMessage":             {BotToken, func(s *Server, req apiRequest) (object, error) { return s.chat(req, false) }},
	"chat.update":                  {BotToken, func(s *Server, req apiRequest) (object, error) { return s.chat(req, true) }},
	"chat.getPermalink":            {BotToken, (*Server).chatGetPermalink},
	"conversations.list":           {BotToken, (*Server).conversationsList},
	"conversations.info":           {BotToken, (*Server).conversationsInfo},
	"files.getUploadURLExternal":   {BotToken, (*Server).filesGetUploadURLExternal},
	"files.completeUploadExternal": {BotToken, (*Server).filesCompleteUploadExternal},
}

// serveAPI serves /api/<method>: it counts the call, injects faults, checks
// the token and runs the method. Slack answers errors with HTTP 200.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/")
	s.mu.Lock()
	s.calls[name]++
	s.mu.Unlock()
	if f, failed := s.Store.Next(); failed {
		writeFault(w, f)
		return
	}
	result, err := s.call(name, w, r)
	if err != nil {
		var code apiError
		if !errors.As(err, &code) {
			code = "internal_error"
		}
		fake.WriteJSON(w, http.StatusOK, object{"ok": false, "error": code})
		return
	}
	body := object{"ok": true}
	maps.Copy(body, result)
	fake.WriteJSON(w, http.StatusOK, body)
}

func (s *Server) call(name string, w http.ResponseWriter, r *http.Request) (object, error) {
	method, known := apiMethods[name]
	if !known {
		return nil, errUnknownMethod
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	params, err := readParams(r)
	if err != nil {
		return nil, errInvalidArguments
	}
	// JSON calls carry the token in the Authorization header, form calls in the token argument.
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		token = params.Get("token")
	}
	a := s.appByToken(token, method.token)
	if a == nil {
		return nil, errInvalidAuth
	}
	return method.serve(s, apiRequest{app: a, host: r.Host, params: params})
}

// readParams returns the arguments of a Web API call: query and form fields,
// or the fields of a JSON body, whose non-string values stay JSON text.
func readParams(r *http.Request) (url.Values, error) {
	if fake.MediaType(r) != "application/json" {
		err := r.ParseForm()
		return r.Form, err
	}
	body, err := io.ReadAll(r.Body)
	params := r.URL.Query()
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return params, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("parse JSON body: %w", err)
	}
	for key, raw := range fields {
		var text string
		if json.Unmarshal(raw, &text) != nil {
			text = string(raw)
		}
		params.Set(key, text)
	}
	return params, nil
}

// parseBlocks checks the blocks argument: "" is no blocks, "[]" removes
// them, anything else must be a JSON array of objects with a type.
func parseBlocks(arg string) (json.RawMessage, error) {
	if arg == "" {
		return nil, nil
	}
	var blocks []struct{ Type string }
	if err := json.Unmarshal([]byte(arg), &blocks); err != nil {
		return nil, errInvalidBlocks
	}
	for _, b := range blocks {
		if b.Type == "" {
			return nil, errInvalidBlocks
		}
	}
	if len(blocks) == 0 {
		return nil, nil
	}
	return json.RawMessage(arg), nil
}

// authTest serves auth.test: https://api.slack.com/methods/auth.test
func (s *Server) authTest(req apiRequest) (object, error) {
	return object{
		"url": "https://" + teamDomain + ".slack.com/", "team": teamDomain, "user": req.app.Name,
		"team_id": TeamID, "user_id": req.app.BotUserID, "bot_id": req.app.botID, "is_enterprise_install": false,
	}, nil
}

// appsConnectionsOpen serves apps.connections.open, handing out a websocket
// URL with a single-use ticket: https://api.slack.com/methods/apps.connections.open
func (s *Server) appsConnectionsOpen(req apiRequest) (object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket := strconv.Itoa(s.nextSeqLocked())
	s.tickets[ticket] = req.app
	return object{"url": "ws://" + req.host + "/socket?ticket=" + ticket}, nil
}

// chat serves chat.postMessage (https://api.slack.com/methods/chat.postMessage)
// and, to update, chat.update (https://api.slack.com/methods/chat.update):
// text and blocks replace the message's when given; an app updates only its
// own messages.
func (s *Server) chat(req apiRequest, update bool) (object, error) {
	p := req.params
	blocks, err := parseBlocks(p.Get("blocks"))
	if err == nil && !update && p.Get("text") == "" && blocks == nil && p.Get("attachments") == "" {
		err = errNoText
	}
	if err != nil {
		return nil, err
	}
	ch, err := s.resolveChannel(p.Get("channel"))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !update {
		msg := s.postLocked(ch.ID, p.Get("thread_ts"), req.app.BotUserID, p.Get("text"), blocks)
		return object{"channel": ch.ID, "ts": msg.ID, "message": s.messageJSONLocked(msg)}, nil
	}
	msg, ok := s.messageIn(ch.ID, p.Get("ts"))
	switch {
	case !ok:
		return nil, errMessageNotFound
	case msg.Author != req.app.BotUserID:
		return nil, errCantUpdateMessage
	}
	if p.Has("text") {
		msg.Text = p.Get("text")
	}
	if p.Has("blocks") {
		msg.X = blocks
	}
	msg, _ = s.Store.Update(msg)
	return object{"channel": ch.ID, "ts": msg.ID, "text": msg.Text, "message": s.messageJSONLocked(msg)}, nil
}

// chatGetPermalink serves chat.getPermalink, in Slack's form:
// https://<workspace>.slack.com/archives/<channel>/p<ts without its dot>,
// with ?thread_ts=<root>&cid=<channel> for a reply in a thread
// (https://api.slack.com/methods/chat.getPermalink).
func (s *Server) chatGetPermalink(req apiRequest) (object, error) {
	ch, err := s.resolveChannel(req.params.Get("channel"))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	msg, ok := s.messageIn(ch.ID, req.params.Get("message_ts"))
	s.mu.Unlock()
	if !ok {
		return nil, errMessageNotFound
	}
	return object{"channel": ch.ID, "permalink": Permalink(ch.ID, msg.ID, msg.Thread)}, nil
}

// Permalink is the address chat.getPermalink answers for the message ts in
// channel, a reply in the thread of root when root is set.
func Permalink(channel, ts, root string) string {
	link := "https://" + teamDomain + ".slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
	if root != "" && root != ts {
		link += "?thread_ts=" + root + "&cid=" + channel
	}
	return link
}

// conversationsList serves conversations.list, paging with the cursor as an
// index: https://api.slack.com/methods/conversations.list
func (s *Server) conversationsList(req apiRequest) (object, error) {
	p := req.params
	limit, err := strconv.Atoi(cmp.Or(p.Get("limit"), "0"))
	if err != nil {
		return nil, errInvalidArguments
	}
	if limit <= 0 {
		limit = defaultPageSize
	}
	start, err := strconv.Atoi(cmp.Or(p.Get("cursor"), "0"))
	types := strings.Split(cmp.Or(p.Get("types"), "public_channel"), ",")
	listed := []object{}
	for _, ch := range s.Store.Channels() {
		typ := "public_channel"
		if ch.User != "" {
			typ = "im"
		}
		if slices.Contains(types, typ) {
			listed = append(listed, channelJSON(ch))
		}
	}
	if err != nil || start < 0 || start > len(listed) {
		return nil, errInvalidCursor
	}
	end, next := min(start+min(limit, maxPageSize), len(listed)), ""
	if end < len(listed) {
		next = strconv.Itoa(end)
	}
	return object{"channels": listed[start:end], "response_metadata": object{"next_cursor": next}}, nil
}

// conversationsInfo serves conversations.info: https://api.slack.com/methods/conversations.info
func (s *Server) conversationsInfo(req apiRequest) (object, error) {
	ch, ok := s.Store.Channel(req.params.Get("channel"))
	if !ok {
		return nil, errChannelNotFound
	}
	return object{"channel": channelJSON(ch)}, nil
}

// filesGetUploadURLExternal serves files.getUploadURLExternal, handing out an
// upload URL on the API's scheme and host (slack-go sends the token only
// there): https://api.slack.com/methods/files.getUploadURLExternal
func (s *Server) filesGetUploadURLExternal(req apiRequest) (object, error) {
	name := req.params.Get("filename")
	if length, err := strconv.Atoi(req.params.Get("length")); name == "" || err != nil || length < 1 {
		return nil, errInvalidArguments
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("F%09d", s.nextSeqLocked())
	s.uploads[id] = &upload{name: name}
	return object{"upload_url": "http://" + req.host + "/upload/" + id, "file_id": id}, nil
}

// serveUpload serves the upload URLs: POST /upload/<file id> with the content
// in a multipart part named "file", or as the whole body.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	var content []byte
	var err error
	if fake.MediaType(r) != "multipart/form-data" {
		content, err = io.ReadAll(r.Body)
	} else if err = fake.ReadParts(r, func(part *multipart.Part, data []byte) {
		if part.FormName() == "file" && content == nil {
			content = data
		}
	}); err == nil && content == nil {
		err = errors.New(`no part named "file"`)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	up := s.uploads[strings.TrimPrefix(r.URL.Path, "/upload/")]
	if up != nil {
		up.content, up.uploaded = string(content), true
	}
	s.mu.Unlock()
	if up == nil {
		http.Error(w, "unknown file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "OK - %d", len(content))
}

// filesCompleteUploadExternal serves files.completeUploadExternal, sharing
// uploaded files to channel_id, or to each of channels, or to none:
// https://api.slack.com/methods/files.completeUploadExternal
func (s *Server) filesCompleteUploadExternal(req apiRequest) (object, error) {
	p := req.params
	var summaries []struct{ ID, Title string }
	if err := json.Unmarshal([]byte(p.Get("files")), &summaries); err != nil || len(summaries) == 0 {
		return nil, errInvalidArguments
	}
	refs := strings.Split(p.Get("channels"), ",")
	if id := p.Get("channel_id"); id != "" {
		refs = []string{id}
	}
	var channelIDs []string
	for _, ref := range slices.DeleteFunc(refs, func(ref string) bool { return ref == "" }) {
		ch, err := s.resolveChannel(ref)
		if err != nil {
			return nil, err
		}
		channelIDs = append(channelIDs, ch.ID)
	}
	if len(channelIDs) == 0 {
		channelIDs = []string{""} // a file shared to no channel
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sum := range summaries {
		if up := s.uploads[sum.ID]; up == nil || !up.uploaded {
			return nil, errFileNotFound
		}
	}
	shared := []object{}
	for _, sum := range summaries {
		up := s.uploads[sum.ID]
		delete(s.uploads, sum.ID)
		title := cmp.Or(sum.Title, up.name)
		for _, channelID := range channelIDs {
			s.Store.AddFile(fake.File{
				ID: sum.ID, Name: up.name, Title: title, Content: up.content, Author: req.app.BotUserID,
				Channel: channelID, Thread: p.Get("thread_ts"), Text: p.Get("initial_comment"),
			})
		}
		shared = append(shared, object{"id": sum.ID, "title": title})
	}
	return object{"files": shared}, nil
}
