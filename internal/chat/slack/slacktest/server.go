// Package slacktest is a fake Slack workspace on loopback for tests.
//
// The real github.com/slack-go/slack client, and its socketmode package, run
// against it unchanged once pointed at it with slack.OptionAPIURL(srv.APIURL()).
// The Server serves the Web API methods a chat bot uses (auth.test,
// apps.connections.open, chat.postMessage, chat.update, conversations.list,
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
	botID      = "BKUBECHAT"
	botName    = "kubechat"
	appID      = "AKUBECHAT"
	teamDomain = "kubechat-test"
	// verificationToken is the deprecated verification token Slack still puts in payloads.
	verificationToken = "kubechat-verification-token"

	// maxBodyBytes bounds every request body the server reads.
	maxBodyBytes = 16 << 20
	// defaultPageSize and maxPageSize bound conversations.list pages, as Slack does.
	defaultPageSize = 100
	maxPageSize     = 1000
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

// object is a JSON object in a response or payload.
type object = map[string]any

// Server is a fake Slack workspace on loopback. Create it with New and
// release it with Close. All its methods are safe for concurrent use.
type Server struct {
	// Server keeps the messages with their blocks, and the Socket Mode websockets.
	*fake.Server[json.RawMessage, *socketConn]
	stamps fake.Monotonic // message timestamps, in microseconds

	mu      sync.Mutex
	seq     int                // source of ids
	uploads map[string]*upload // by file id, until files.completeUploadExternal
	calls   map[string]int     // by Web API method
	tickets map[string]*app    // apps.connections.open tickets not used yet, by ticket
	apps    []*app             // installed apps; the first is the default one
	acks    map[string]bool    // by envelope id of every pushed envelope: whether it was acked
}

// upload is a file announced with files.getUploadURLExternal.
type upload struct {
	name     string
	content  string
	uploaded bool
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
		uploads: make(map[string]*upload),
		calls:   make(map[string]int),
		tickets: make(map[string]*app),
		apps:    []*app{defaultApp()},
		acks:    make(map[string]bool),
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
	name = strings.TrimPrefix(name, "#")
	if name == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id := s.Store.ChannelID(name); id != "" {
		return id
	}
	return s.Store.AddChannel(fake.Channel{ID: fmt.Sprintf("C%09d", s.nextSeqLocked()), Name: name}).ID
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
	var files []File
	for _, f := range s.Store.Files() {
		files = append(files, File{ID: f.ID, Name: f.Name, Title: f.Title, Content: f.Content,
			Channel: f.Channel, ThreadTS: f.Thread, InitialComment: f.Text})
	}
	return files
}

// Calls returns how many times a Web API method, such as "chat.postMessage",
// was called, failed calls included.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// export returns a stored message as Message.
func export(m fake.Message[json.RawMessage]) Message {
	return Message{Channel: m.Channel, TS: m.ID, ThreadTS: m.Thread, Text: m.Text, Blocks: bytes.Clone(m.X), Edits: m.Edits, User: m.Author}
}

// nextSeqLocked returns a number never returned before, for ids. s.mu must be held.
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
func (s *Server) resolveChannel(ref string) (fake.Channel, bool) {
	if ch, ok := s.Store.Channel(ref); ok {
		return ch, true
	}
	return s.Store.ChannelNamed(ref)
}

// post stores a new message in the channel and returns it as the Web API shows it.
func (s *Server) post(channelID, threadTS, user, text string, blocks json.RawMessage) (fake.Message[json.RawMessage], object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := s.postLocked(channelID, threadTS, user, text, blocks)
	return msg, s.messageJSONLocked(msg)
}

// postLocked stores a new message in the channel; timestamps increase in
// posting order. s.mu must be held.
func (s *Server) postLocked(channelID, threadTS, user, text string, blocks json.RawMessage) fake.Message[json.RawMessage] {
	return s.Store.Post(fake.Message[json.RawMessage]{ID: s.nextTS(), Channel: channelID, Thread: threadTS, Author: user, Text: text, X: blocks})
}

// message returns the stored message of the channel with the timestamp.
func (s *Server) message(channelID, ts string) (fake.Message[json.RawMessage], bool) {
	m, ok := s.Store.Message(ts)
	return m, ok && m.Channel == channelID
}

// channelJSON returns the channel as conversations.info and conversations.list show it.
func channelJSON(ch fake.Channel) object {
	created := ch.Created.Unix()
	if ch.User != "" {
		return object{"id": ch.ID, "created": created, "is_im": true, "is_org_shared": false, "user": ch.User, "is_user_deleted": false}
	}
	return object{
		"id": ch.ID, "name": ch.Name, "name_normalized": ch.Name, "created": created,
		"is_channel": true, "is_group": false, "is_im": false, "is_mpim": false, "is_private": false,
		"is_archived": false, "is_general": ch.Name == "general", "is_member": true,
		"topic":   object{"value": "", "creator": "", "last_set": 0},
		"purpose": object{"value": "", "creator": "", "last_set": 0},
	}
}

// messageJSONLocked returns the message as the Web API and interaction
// payloads show it. s.mu must be held.
func (s *Server) messageJSONLocked(msg fake.Message[json.RawMessage]) object {
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

// writeFault answers a Web API call with an injected failure.
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

// recordCall counts a call of the method and returns the failure to
// inject into it, if any.
func (s *Server) recordCall(method string) (fake.Fault, bool) {
	s.mu.Lock()
	s.calls[method]++
	s.mu.Unlock()
	return s.Store.Next()
}

// apiRequest is one Web API call as a method sees it.
type apiRequest struct {
	app    *app       // the app whose token made the call
	host   string     // the host:port the client reached the server on
	params url.Values // the form, query and JSON body fields
}

// apiMethod is one Web API method the server serves.
type apiMethod struct {
	token string // the kind of token the method accepts: BotToken or AppToken (any app's)
	serve func(s *Server, req apiRequest) (object, error)
}

// apiMethods are the Web API methods the server serves, by name.
var apiMethods = map[string]apiMethod{
	"auth.test":                    {BotToken, (*Server).authTest},
	"apps.connections.open":        {AppToken, (*Server).appsConnectionsOpen},
	"chat.postMessage":             {BotToken, (*Server).chatPostMessage},
	"chat.update":                  {BotToken, (*Server).chatUpdate},
	"conversations.list":           {BotToken, (*Server).conversationsList},
	"conversations.info":           {BotToken, (*Server).conversationsInfo},
	"files.getUploadURLExternal":   {BotToken, (*Server).filesGetUploadURLExternal},
	"files.completeUploadExternal": {BotToken, (*Server).filesCompleteUploadExternal},
}

// serveAPI serves /api/<method>: it injects faults, checks the token and runs the method.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/")
	if f, failed := s.recordCall(name); failed {
		writeFault(w, f)
		return
	}
	method, known := apiMethods[name]
	if !known {
		writeResult(w, nil, errUnknownMethod)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	params, err := readParams(r)
	switch {
	case err != nil:
		writeResult(w, nil, errInvalidArguments)
	default:
		a := s.appByToken(bearerToken(r, params), method.token)
		if a == nil {
			writeResult(w, nil, errInvalidAuth)
			return
		}
		result, err := method.serve(s, apiRequest{app: a, host: r.Host, params: params})
		writeResult(w, result, err)
	}
}

// readParams returns the arguments of a Web API call: query and form fields,
// or the fields of a JSON body, whose non-string values stay JSON text.
func readParams(r *http.Request) (url.Values, error) {
	if fake.MediaType(r) != "application/json" {
		if err := r.ParseForm(); err != nil {
			return nil, fmt.Errorf("parse form: %w", err)
		}
		return r.Form, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	params := r.URL.Query()
	if len(bytes.TrimSpace(body)) == 0 {
		return params, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("parse JSON body: %w", err)
	}
	for key, raw := range fields {
		var text string
		if json.Unmarshal(raw, &text) == nil {
			params.Set(key, text)
		} else {
			params.Set(key, string(raw))
		}
	}
	return params, nil
}

// bearerToken returns the token of a call: from the Authorization header
// (JSON calls), else from the token argument (form calls).
func bearerToken(r *http.Request, params url.Values) string {
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return token
	}
	return params.Get("token")
}

// writeResult answers a Web API call with {"ok":true,...result} or, if err
// is set, {"ok":false,"error":...}, with HTTP 200 either way as Slack does.
func writeResult(w http.ResponseWriter, result object, err error) {
	if err != nil {
		var code apiError
		if !errors.As(err, &code) {
			code = "internal_error"
		}
		fake.WriteJSON(w, http.StatusOK, object{"ok": false, "error": code})
		return
	}
	body := object{"ok": true}
	for key, value := range result {
		body[key] = value
	}
	fake.WriteJSON(w, http.StatusOK, body)
}

// parseBlocks checks the blocks argument: "" is no blocks, "[]" removes
// them, anything else must be a JSON array of objects with a type.
func parseBlocks(arg string) (json.RawMessage, error) {
	if arg == "" {
		return nil, nil
	}
	var blocks []struct {
		Type string `json:"type"`
	}
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

// chatPostMessage serves chat.postMessage: https://api.slack.com/methods/chat.postMessage
func (s *Server) chatPostMessage(req apiRequest) (object, error) {
	p := req.params
	blocks, err := parseBlocks(p.Get("blocks"))
	if err != nil {
		return nil, err
	}
	if p.Get("text") == "" && blocks == nil && p.Get("attachments") == "" {
		return nil, errNoText
	}
	ch, ok := s.resolveChannel(p.Get("channel"))
	if !ok {
		return nil, errChannelNotFound
	}
	msg, shown := s.post(ch.ID, p.Get("thread_ts"), req.app.BotUserID, p.Get("text"), blocks)
	return object{"channel": ch.ID, "ts": msg.ID, "message": shown}, nil
}

// chatUpdate serves chat.update: text and blocks replace the message's when
// given; https://api.slack.com/methods/chat.update
func (s *Server) chatUpdate(req apiRequest) (object, error) {
	p := req.params
	blocks, err := parseBlocks(p.Get("blocks"))
	if err != nil {
		return nil, err
	}
	ch, ok := s.resolveChannel(p.Get("channel"))
	if !ok {
		return nil, errChannelNotFound
	}
	return s.update(ch.ID, p.Get("ts"), req.app, func(msg *fake.Message[json.RawMessage]) {
		if p.Has("text") {
			msg.Text = p.Get("text")
		}
		if p.Has("blocks") {
			msg.X = blocks
		}
	})
}

// update applies edit to one of the app's messages, one update at a time,
// and answers as chat.update does.
func (s *Server) update(channelID, ts string, a *app, edit func(*fake.Message[json.RawMessage])) (object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg, ok := s.message(channelID, ts)
	switch {
	case !ok:
		return nil, errMessageNotFound
	case msg.Author != a.BotUserID:
		return nil, errCantUpdateMessage
	}
	edit(&msg)
	msg, _ = s.Store.Update(msg)
	return object{"channel": channelID, "ts": msg.ID, "text": msg.Text, "message": s.messageJSONLocked(msg)}, nil
}

// conversationsList serves conversations.list, paging with the cursor as an
// index: https://api.slack.com/methods/conversations.list
func (s *Server) conversationsList(req apiRequest) (object, error) {
	p := req.params
	limit := defaultPageSize
	if arg := p.Get("limit"); arg != "" {
		n, err := strconv.Atoi(arg)
		if err != nil {
			return nil, errInvalidArguments
		}
		if n > 0 {
			limit = min(n, maxPageSize)
		}
	}
	start := 0
	if arg := p.Get("cursor"); arg != "" {
		n, err := strconv.Atoi(arg)
		if err != nil || n < 0 {
			return nil, errInvalidCursor
		}
		start = n
	}
	types := strings.Split(cmp.Or(p.Get("types"), "public_channel"), ",")
	wantChannels, wantIMs := slices.Contains(types, "public_channel"), slices.Contains(types, "im")

	var listed []object
	for _, ch := range s.Store.Channels() {
		if (ch.User == "" && wantChannels) || (ch.User != "" && wantIMs) {
			listed = append(listed, channelJSON(ch))
		}
	}
	if start > len(listed) {
		return nil, errInvalidCursor
	}
	end := min(start+limit, len(listed))
	next := ""
	if end < len(listed) {
		next = strconv.Itoa(end)
	}
	page := listed[start:end]
	if page == nil {
		page = []object{}
	}
	return object{"channels": page, "response_metadata": object{"next_cursor": next}}, nil
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
	length, err := strconv.Atoi(req.params.Get("length"))
	if name == "" || err != nil || length < 1 {
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
	content, err := readUpload(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	s.mu.Lock()
	up := s.uploads[id]
	if up != nil {
		up.content, up.uploaded = content, true
	}
	s.mu.Unlock()
	if up == nil {
		http.Error(w, "unknown file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "OK - %d", len(content))
}

// readUpload returns the uploaded content of an upload request: its part
// named "file", or its whole body.
func readUpload(r *http.Request) (string, error) {
	if fake.MediaType(r) != "multipart/form-data" {
		body, err := io.ReadAll(r.Body)
		return string(body), err
	}
	var content []byte
	err := fake.ReadParts(r, func(part *multipart.Part, data []byte) {
		if part.FormName() == "file" && content == nil {
			content = data
		}
	})
	if err == nil && content == nil {
		err = errors.New(`no part named "file"`)
	}
	return string(content), err
}

// filesCompleteUploadExternal serves files.completeUploadExternal, sharing
// uploaded files to channel_id, or to each of channels, or to none:
// https://api.slack.com/methods/files.completeUploadExternal
func (s *Server) filesCompleteUploadExternal(req apiRequest) (object, error) {
	p := req.params
	var summaries []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(p.Get("files")), &summaries); err != nil || len(summaries) == 0 {
		return nil, errInvalidArguments
	}
	refs := strings.Split(p.Get("channels"), ",")
	if id := p.Get("channel_id"); id != "" {
		refs = []string{id}
	}

	var channelIDs []string
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		ch, ok := s.resolveChannel(ref)
		if !ok {
			return nil, errChannelNotFound
		}
		channelIDs = append(channelIDs, ch.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(channelIDs) == 0 {
		channelIDs = []string{""}
	}
	for _, sum := range summaries {
		if up := s.uploads[sum.ID]; up == nil || !up.uploaded {
			return nil, errFileNotFound
		}
	}
	shared := make([]object, 0, len(summaries))
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
