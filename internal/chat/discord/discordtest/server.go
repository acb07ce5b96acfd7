// Package discordtest is a fake Discord on loopback for tests.
//
// The real github.com/bwmarrin/discordgo client runs against it unchanged once
// its endpoint variables point at the fake (see Server.Point). The Server
// serves the REST calls a chat bot makes (gateway discovery, the current
// user, channels, sending and editing messages with embeds, components and
// files, threads started from messages, direct-message channels, interaction
// callbacks and interaction webhooks), keeps what it was sent, and runs the
// Gateway websocket: HELLO, IDENTIFY, READY, GUILD_CREATE, heartbeats and
// RESUME with replay of missed dispatches. Tests push user activity (Mention,
// DirectMessage, Click) as gateway dispatches and read back what the bot did
// (Messages, InteractionResponses). As on Discord, every new message, the
// bot's own included, is dispatched as MESSAGE_CREATE, every edit as
// MESSAGE_UPDATE, and a started thread as THREAD_CREATE (GUILDS intent).
//
// Payloads follow Discord's documented formats
// (https://discord.com/developers/docs/reference). Faults can be injected:
// failing or rate-limited REST calls (FailNext), an outage of the REST API
// (SetDown) and dropped gateway connections (Drop). A 429 is Discord's rate
// limit reply, {"message":"You are being rate limited.","retry_after":<seconds>,"global":false}
// with Retry-After and the X-RateLimit-* headers; other failures get
// {"message":"<status>","code":0}. discordgo retries a 429 by itself,
// without limit, and a 502 up to Session.MaxRestRetries (3) times; both
// consume failures here.
//
// discordgo v0.29.0 speaks API version 9 (discordgo.APIVersion); the fake
// serves both /api/v9/ and /api/v10/.
package discordtest

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
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
	"github.com/kubechat/kubechat/internal/chat/discord/endpoint"
)

const (
	// Token is the only bot token the fake accepts. Pass it to discordgo.New
	// unchanged; every authenticated REST call must carry exactly this value
	// in its Authorization header (otherwise the reply is
	// 401 {"message":"401: Unauthorized","code":0}), and IDENTIFY and RESUME
	// must carry it as their token.
	Token = "Bot kubechat-test-token"
	// BotUserID is the id of the bot user; its user name is "kubechat".
	BotUserID = "100000000000000001"
	// GuildID is the id of the only guild (server) the bot is in.
	GuildID = "200000000000000001"
	// AppID is the id of the bot's application. Interaction webhooks live
	// under /webhooks/{AppID}/{interaction token}.
	AppID = "300000000000000001"
)

const (
	botName   = "kubechat"
	guildName = "kubechat-test"

	// Channel types, as Discord numbers them.
	channelText         = 0
	channelDM           = 1
	channelPublicThread = 11

	// Message types.
	messageDefault = 0
	messageReply   = 19

	// Message flags. Clients may set SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS
	// and IS_COMPONENTS_V2 on any message; EPHEMERAL only on interaction
	// responses.
	flagSuppressEmbeds = 1 << 2
	flagEphemeral      = 1 << 6
	flagLoading        = 1 << 7
	flagSuppressNotify = 1 << 12
	flagComponentsV2   = 1 << 15
	clientFlags        = flagSuppressEmbeds | flagSuppressNotify | flagComponentsV2

	// Limits Discord enforces on a message.
	maxContentRunes   = 2000
	maxEmbeds         = 10
	maxEmbedTotal     = 6000
	maxActionRows     = 5
	maxRowComponents  = 5
	maxFiles          = 10
	maxCustomIDRunes  = 100
	maxThreadNameRune = 100

	// maxBodyBytes bounds every request body the server reads.
	maxBodyBytes = 32 << 20
	// discordEpochMS is the first millisecond of 2015, where snowflakes count from.
	discordEpochMS = 1420070400000
	// timeLayout is how Discord writes timestamps.
	timeLayout = "2006-01-02T15:04:05.000000-07:00"
)

// JSON error codes Discord uses, with their messages.
var (
	errUnauthorized  = &apiError{Status: http.StatusUnauthorized, Code: 0, Message: "401: Unauthorized"}
	errNotFound      = &apiError{Status: http.StatusNotFound, Code: 0, Message: "404: Not Found"}
	errUnknownChan   = &apiError{Status: http.StatusNotFound, Code: 10003, Message: "Unknown Channel"}
	errUnknownGuild  = &apiError{Status: http.StatusNotFound, Code: 10004, Message: "Unknown Guild"}
	errUnknownMsg    = &apiError{Status: http.StatusNotFound, Code: 10008, Message: "Unknown Message"}
	errUnknownHook   = &apiError{Status: http.StatusNotFound, Code: 10015, Message: "Unknown Webhook"}
	errUnknownInter  = &apiError{Status: http.StatusNotFound, Code: 10062, Message: "Unknown interaction"}
	errEmptyMessage  = &apiError{Status: http.StatusBadRequest, Code: 50006, Message: "Cannot send an empty message"}
	errInvalidJSON   = &apiError{Status: http.StatusBadRequest, Code: 50109, Message: "The request body contains invalid JSON."}
	errTooLarge      = &apiError{Status: http.StatusRequestEntityTooLarge, Code: 40005, Message: "Request entity too large"}
	errAcknowledged  = &apiError{Status: http.StatusBadRequest, Code: 40060, Message: "Interaction has already been acknowledged."}
	errThreadExists  = &apiError{Status: http.StatusBadRequest, Code: 160004, Message: "A thread has already been created for this message"}
	errWrongChanType = &apiError{Status: http.StatusBadRequest, Code: 50024, Message: "Cannot execute action on this channel type"}
)

// Errors of the test-side methods.
var (
	errClosed             = fake.ErrClosed
	errUnknownChannel     = fake.ErrUnknownChannel
	errUnknownMessage     = errors.New("unknown message")
	errUnknownInteraction = errors.New("unknown interaction")
	errNoSession          = errors.New("no gateway session: open a discordgo session first")
	errEmptyUser          = errors.New("empty user id")
	errEmptyCustomID      = errors.New("empty custom id")
	errSelf               = errors.New("the bot cannot message itself")
)

// Server is a fake Discord: a REST API and a Gateway on one loopback port.
// All its methods are safe for concurrent use.
type Server struct {
	// Server keeps the channels (threads among them), the messages, their
	// attachments as files, and the gateway websockets.
	*fake.Server[details, *gwConn]
	wsURL string // ws://127.0.0.1:PORT/gateway
	api   *http.ServeMux
	ids   fake.Monotonic // snowflakes

	mu           sync.Mutex // serializes changes; guards what follows
	archives     map[string]int
	interactions map[string]*interaction
	byToken      map[string]*interaction
	sessions     map[string]*gwSession
	resumes      int

	pointed []string // the status, Discord and CDN endpoints Point replaced, restored by Close; nil if not pointed
}

// Message is a message the server holds, whoever sent it.
type Message struct {
	// ID is the message's snowflake id.
	ID string
	// ChannelID is the channel the message is in: the thread's id for a
	// message in a thread.
	ChannelID string
	// Content is the message text.
	Content string
	// Embeds is the embeds array as it was last posted or edited, byte for
	// byte; nil when none was sent or when null was sent.
	Embeds json.RawMessage
	// Components is the components array as it was last posted or edited,
	// byte for byte; nil when none was sent or when null was sent.
	Components json.RawMessage
	// Attachments are the files uploaded with the message (multipart/form-data).
	Attachments []File
	// Reference is the id of the message this one replies to
	// (message_reference.message_id), "" if none.
	Reference string
	// Thread is the id of the thread channel the message is in, "" when it is
	// in the channel itself.
	Thread string
	// AuthorID is the id of the user who sent it: BotUserID for everything
	// the bot posted.
	AuthorID string
	// Edits counts the edits the message has had.
	Edits int
}

// File is a file uploaded with a message.
type File struct {
	// Name is the file name the client sent.
	Name string
	// Content is the file's content.
	Content string
}

type object = map[string]any

// message is a message as the server keeps it. A thread started from a
// message is a channel with the message's id.
type message = fake.Message[details]

// details is what the server keeps of a message beyond what every fake keeps.
type details struct {
	embeds, components json.RawMessage
	reference          string   // the id of the message replied to
	mentions           []string // the ids of the users mentioned
	flags              int
	webhookID          string
}

// New starts a fake Discord on a loopback port. The bot is in one guild
// (GuildID) with two text channels named "alerts" and "general"; ChannelID
// gives their ids. Call Close when done.
func New() *Server {
	s := &Server{
		Server:       fake.NewServer[details, *gwConn](outQueue),
		archives:     map[string]int{},
		interactions: map[string]*interaction{},
		byToken:      map[string]*interaction{},
		sessions:     map[string]*gwSession{},
	}
	for _, name := range []string{"alerts", "general"} {
		s.Store.AddChannel(fake.Channel{ID: s.nextID(), Name: name})
	}
	s.api = s.apiRoutes()
	s.Start(s.routes())
	s.wsURL = "ws" + strings.TrimPrefix(s.URL(), "http") + "/gateway"
	return s
}

// Close stops the server: it says goodbye to every gateway connection,
// waits for the handlers to finish, and restores discordgo's endpoint
// variables if Point changed them and nothing has re-pointed them since.
// Waits in progress fail. Close a discordgo session before closing the
// server it is connected to, or discordgo keeps trying to reconnect.
func (s *Server) Close() {
	s.Server.Close()
	s.unpoint()
}

// Messages returns the messages of a channel in the order they were created:
// those in the channel itself and those in threads started from its
// messages (with Thread set). For a thread id it returns the thread's
// messages only.
func (s *Server) Messages(channelID string) []Message {
	return fake.Convert(s.Store.Messages(channelID), s.export)
}

// WaitMessages waits until Messages(channelID) holds at least n messages and
// returns them. When ctx ends first, or the server closes, it returns the
// messages so far and an error.
func (s *Server) WaitMessages(ctx context.Context, channelID string, n int) ([]Message, error) {
	msgs, err := s.Store.WaitMessages(ctx, channelID, n)
	return fake.Convert(msgs, s.export), err
}

func (s *Server) export(m message) Message {
	out := Message{
		ID: m.ID, ChannelID: m.Channel, Content: m.Text, Embeds: bytes.Clone(m.X.embeds), Components: bytes.Clone(m.X.components),
		Reference: m.X.reference, Thread: m.Thread, AuthorID: m.Author, Edits: m.Edits,
	}
	for _, id := range m.Files {
		f, _ := s.Store.File(id)
		out.Attachments = append(out.Attachments, File{Name: f.Name, Content: f.Content})
	}
	return out
}

// nextID returns a new snowflake: milliseconds since the Discord epoch
// shifted left by 22 bits, strictly increasing.
func (s *Server) nextID() string {
	return strconv.FormatInt(s.ids.Next((time.Now().UnixMilli()-discordEpochMS)<<22), 10)
}

// snowflakeTime is the creation time encoded in a snowflake id.
func snowflakeTime(id string) time.Time {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return time.Now().UTC()
	}
	return time.UnixMilli(int64(n>>22) + discordEpochMS).UTC()
}

// --- HTTP plumbing ---

// apiError is Discord's JSON error body, with the HTTP status to send it with.
type apiError struct {
	Status  int             `json:"-"`
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Errors  json.RawMessage `json:"errors,omitempty"`
}

// formError is a 400 Invalid Form Body naming the offending field by its
// dotted path (like "embeds.0.title"), nested as Discord nests it.
func formError(path, code, msg string) *apiError {
	var v any = object{"_errors": []map[string]string{{"code": code, "message": msg}}}
	parts := strings.Split(path, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		v = object{parts[i]: v}
	}
	b, _ := json.Marshal(v) // maps of strings always encode
	return &apiError{Status: http.StatusBadRequest, Code: 50035, Message: "Invalid Form Body", Errors: b}
}

func writeError(w http.ResponseWriter, e *apiError) {
	fake.WriteJSON(w, e.Status, e)
}

// call is one REST call as a handler sees it: its request, its body, the
// message part of the body for a route that takes one, and what the path
// names, looked up: {cid} the channel and {mid} a message in it.
type call struct {
	*http.Request
	body *body
	in   *msgInput
	ch   fake.Channel
	m    message
}

type handler func(c *call) (int, any, *apiError)

// route adapts a handler to net/http. In order, as Discord checks them, it
// checks the bot token, reads the body and, with input, the message in it;
// then, holding s.mu, it looks up the channel and message the path names,
// and runs h.
func (s *Server) route(input bool, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body, apiErr := s.serve(r, input, h)
		switch {
		case apiErr != nil:
			writeError(w, apiErr)
		case status == http.StatusNoContent || body == nil:
			w.WriteHeader(cmp.Or(status, http.StatusNoContent))
		default:
			fake.WriteJSON(w, status, body)
		}
	}
}

func (s *Server) serve(r *http.Request, input bool, h handler) (int, any, *apiError) {
	c := &call{Request: r, body: &body{raw: json.RawMessage("{}")}}
	var apiErr *apiError
	switch {
	// Interaction callbacks and webhooks are authorized by the interaction's token in the path.
	case r.PathValue("token") == "" && r.Header.Get("Authorization") != Token:
		apiErr = errUnauthorized
	case r.Method != http.MethodGet:
		c.body, apiErr = readBody(r)
	}
	if apiErr == nil && input {
		c.in, apiErr = parseInput(c.body)
	}
	if apiErr != nil {
		return 0, nil, apiErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ok bool
	if cid := r.PathValue("cid"); cid != "" {
		if c.ch, ok = s.Store.Channel(cid); !ok {
			return 0, nil, errUnknownChan
		}
	}
	if mid := r.PathValue("mid"); mid != "" && c.ch.ID != "" {
		if c.m, ok = s.Store.Message(mid); !ok || c.m.Channel != c.ch.ID {
			return 0, nil, errUnknownMsg
		}
	}
	return h(c)
}

// routes is the top-level mux: the REST API, the gateway and the CDN.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("GET /gateway", s.serveGateway)
	mux.HandleFunc("GET /gateway/", s.serveGateway) // discordgo adds a trailing slash
	mux.HandleFunc("GET /cdn/attachments/{cid}/{aid}/{name}", s.serveAttachment)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeError(w, errNotFound) })
	return mux
}

// apiRoutes is the mux for paths below /api/v{9,10}. A thread's message is
// {id}, not {mid}: startThread checks the channel's type first.
func (s *Server) apiRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	for pattern, h := range map[string]handler{
		"GET /gateway":     func(*call) (int, any, *apiError) { return http.StatusOK, object{"url": s.wsURL}, nil },
		"GET /gateway/bot": s.getGatewayBot,
		"GET /users/@me":   func(*call) (int, any, *apiError) { return http.StatusOK, meJSON(), nil },
		"GET /users/{uid}": getUser,
		"GET /guilds/{gid}/channels": func(c *call) (int, any, *apiError) {
			if c.PathValue("gid") != GuildID {
				return 0, nil, errUnknownGuild
			}
			return http.StatusOK, s.channelsJSONLocked(s.guildChannels()), nil
		},
		"GET /channels/{cid}":                        func(c *call) (int, any, *apiError) { return http.StatusOK, s.channelJSONLocked(c.ch), nil },
		"POST /channels/{cid}/typing":                func(*call) (int, any, *apiError) { return http.StatusNoContent, nil, nil },
		"GET /channels/{cid}/messages":               s.listMessages,
		"GET /channels/{cid}/messages/{mid}":         func(c *call) (int, any, *apiError) { return http.StatusOK, s.messageJSONLocked(c.m), nil },
		"POST /channels/{cid}/messages/{id}/threads": s.startThread,
		"POST /users/@me/channels":                   s.createDM,
		"POST /interactions/{iid}/{token}/callback":  s.interactionCallback,
		"GET /webhooks/{wid}/{token}/messages/{mid}": func(c *call) (int, any, *apiError) { return s.answerLocked(s.webhookMessageLocked(c)) },
	} {
		mux.HandleFunc(pattern, s.route(false, h))
	}
	for pattern, h := range map[string]handler{
		"POST /channels/{cid}/messages":        func(c *call) (int, any, *apiError) { return s.answerLocked(s.postLocked(c.ch, BotUserID, c.in)) },
		"PATCH /channels/{cid}/messages/{mid}": s.editMessage,
		"POST /webhooks/{wid}/{token}":         s.followup,
		"PATCH /webhooks/{wid}/{token}/messages/{mid}": func(c *call) (int, any, *apiError) {
			m, apiErr := s.webhookMessageLocked(c)
			if apiErr != nil {
				return 0, nil, apiErr
			}
			return s.answerLocked(s.editLocked(m, c.in))
		},
	} {
		mux.HandleFunc(pattern, s.route(true, h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeError(w, errNotFound) })
	return mux
}

func (s *Server) answerLocked(m message, apiErr *apiError) (int, any, *apiError) {
	if apiErr != nil {
		return 0, nil, apiErr
	}
	return http.StatusOK, s.messageJSONLocked(m), nil
}

// serveAPI applies injected faults and hands the request to the API mux with
// the /api/vN prefix stripped.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if f, failed := s.Store.Next(); failed {
		writeFault(w, f)
		return
	}

	version, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/api/"), "/")
	if version != "v9" && version != "v10" {
		writeError(w, errNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	http.StripPrefix("/api/"+version, s.api).ServeHTTP(w, r)
}

// writeFault answers a REST call with an injected failure: an outage's 503
// is {"message":"503: Service Unavailable","code":0}, like other statuses
// but 429, which gets Discord's rate limit reply.
func writeFault(w http.ResponseWriter, f fake.Fault) {
	if f.Status == http.StatusTooManyRequests {
		writeRateLimited(w, f)
		return
	}
	f.SetRetryAfter(w.Header())
	writeError(w, &apiError{Status: f.Status, Message: fmt.Sprintf("%d: %s", f.Status, http.StatusText(f.Status))})
}

// writeRateLimited sends Discord's 429 reply, with a Retry-After header
// even when the failure names no wait.
func writeRateLimited(w http.ResponseWriter, f fake.Fault) {
	secs := f.RetryAfter.Seconds()
	for key, value := range map[string]string{
		"Retry-After": strconv.Itoa(f.RetryAfterSeconds()), "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":       strconv.FormatFloat(float64(time.Now().Add(f.RetryAfter).UnixMilli())/1000, 'f', 3, 64),
		"X-RateLimit-Reset-After": strconv.FormatFloat(secs, 'f', 3, 64),
		"X-RateLimit-Bucket":      "kubechat-test-bucket", "X-RateLimit-Scope": "user",
	} {
		w.Header().Set(key, value)
	}
	fake.WriteJSON(w, http.StatusTooManyRequests, object{"message": "You are being rate limited.", "retry_after": secs, "global": false})
}

// serveAttachment serves an uploaded file from the fake CDN.
func (s *Server) serveAttachment(w http.ResponseWriter, r *http.Request) {
	f, ok := s.Store.File(r.PathValue("aid"))
	if !ok || f.Channel != r.PathValue("cid") || f.Name != r.PathValue("name") {
		writeError(w, errNotFound)
		return
	}
	w.Header().Set("Content-Type", cmp.Or(f.ContentType, "application/octet-stream"))
	_, _ = io.WriteString(w, f.Content)
}

// --- request bodies ---

// body is a decoded request body: its JSON object (from the body, or from
// payload_json in a multipart body) and the files uploaded with it.
type body struct {
	raw   json.RawMessage // the JSON object as received
	files []upload
}

type upload struct {
	name, contentType string
	content           []byte
}

// readBody reads a JSON or multipart/form-data request body, which must
// hold a JSON object. An empty body is an empty object.
func readBody(r *http.Request) (*body, *apiError) {
	b := &body{}
	var err error
	if fake.MediaType(r) == "multipart/form-data" {
		err = fake.ReadParts(r, func(part *multipart.Part, data []byte) {
			switch {
			case part.FormName() == "payload_json":
				b.raw = data
			case part.FileName() != "":
				b.files = append(b.files, upload{name: part.FileName(), contentType: part.Header.Get("Content-Type"), content: data})
			}
		})
	} else {
		b.raw, err = io.ReadAll(r.Body)
	}
	switch {
	case fake.TooLarge(err):
		return nil, errTooLarge
	case err != nil:
		return nil, errInvalidJSON
	}
	if b.raw = bytes.TrimSpace(b.raw); len(b.raw) == 0 {
		b.raw = json.RawMessage("{}")
	}
	if b.raw[0] != '{' || !json.Valid(b.raw) {
		return nil, errInvalidJSON
	}
	return b, nil
}

// decode decodes the body's JSON object into v. A value of the wrong type
// is an Invalid Form Body naming its field, as Discord names it.
func (b *body) decode(v any) *apiError {
	var typeErr *json.UnmarshalTypeError
	switch err := json.Unmarshal(b.raw, v); {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		code := map[reflect.Kind]string{
			reflect.String: "STRING_TYPE_CONVERT", reflect.Slice: "LIST_TYPE_CONVERT",
			reflect.Struct: "MODEL_TYPE_CONVERT", reflect.Map: "MODEL_TYPE_CONVERT",
		}[typeErr.Type.Kind()]
		return formError(typeErr.Field, cmp.Or(code, "NUMBER_TYPE_COERCE"), "Value is not "+typeErr.Type.String()+".")
	}
	return errInvalidJSON
}

func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// msgInput is the message part of a request: what to set on a message.
// An absent or null field leaves the message's value alone (Discord treats
// null inconsistently across endpoints; send "" or [] to clear a field).
type msgInput struct {
	Content    *string         `json:"content"`
	Flags      *int            `json:"flags"`
	Embeds     json.RawMessage `json:"embeds"`
	Components json.RawMessage `json:"components"`
	Reference  *struct {
		MessageID       string `json:"message_id"`
		FailIfNotExists *bool  `json:"fail_if_not_exists"`
	} `json:"message_reference"`
	// Attachments lists the files an edit keeps.
	Attachments *[]struct {
		ID json.RawMessage `json:"id"`
	} `json:"attachments"`
	// StickerIDs and Poll make a message without content not empty.
	StickerIDs json.RawMessage `json:"sticker_ids"`
	Poll       json.RawMessage `json:"poll"`
	files      []upload
}

// parseInput reads content, embeds, components, flags, message_reference,
// attachments and files from a body and checks them against Discord's limits.
func parseInput(b *body) (*msgInput, *apiError) {
	in := &msgInput{files: b.files}
	if apiErr := b.decode(in); apiErr != nil {
		return nil, apiErr
	}
	switch {
	case len(in.files) > maxFiles:
		return nil, tooLong("files", maxFiles)
	case in.Content != nil && utf8.RuneCountInString(*in.Content) > maxContentRunes:
		return nil, tooLong("content", maxContentRunes)
	}
	if !present(in.Embeds) {
		in.Embeds = nil
	} else if apiErr := checkEmbeds(in.Embeds); apiErr != nil {
		return nil, apiErr
	}
	if !present(in.Components) {
		in.Components = nil
	} else if apiErr := checkComponents(in.Components, in.Flags != nil && *in.Flags&flagComponentsV2 != 0); apiErr != nil {
		return nil, apiErr
	}
	return in, nil
}

// keep returns the ids of the files an edit keeps, or nil to keep them all.
func (in *msgInput) keep() []string {
	if in.Attachments == nil {
		return nil
	}
	keep := []string{}
	for _, a := range *in.Attachments {
		var id string
		if json.Unmarshal(a.ID, &id) == nil {
			keep = append(keep, id)
		}
	}
	return keep
}

// nonEmpty reports whether stickers or a poll make a message without content not empty.
func (in *msgInput) nonEmpty() bool {
	return present(in.Poll) || rawLen(in.StickerIDs) > 0
}

func required(path string) *apiError {
	return formError(path, "BASE_TYPE_REQUIRED", "This field is required")
}

func tooLong(path string, limit int) *apiError {
	return formError(path, "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", limit))
}

// failIf returns e if failed is true, else nil: checks read as a list.
func failIf(failed bool, e *apiError) *apiError {
	if failed {
		return e
	}
	return nil
}

// checkEmbeds enforces Discord's embed limits.
func checkEmbeds(raw json.RawMessage) *apiError {
	var embeds []*struct {
		Title, Description string
		Fields             []struct{ Name, Value string }
		Footer             *struct{ Text string }
		Author             *struct{ Name string }
	}
	if err := json.Unmarshal(raw, &embeds); err != nil {
		return formError("embeds", "LIST_TYPE_CONVERT", "Only iterables of embed objects may be used.")
	}
	total := 0
	length := func(path, s string, limit int) *apiError {
		total += utf8.RuneCountInString(s)
		return failIf(utf8.RuneCountInString(s) > limit, tooLong(path, limit))
	}
	apiErr := failIf(len(embeds) > maxEmbeds, tooLong("embeds", maxEmbeds))
	for i, e := range embeds {
		p := fmt.Sprintf("embeds.%d.", i)
		if e == nil {
			return cmp.Or(apiErr, formError(p[:len(p)-1], "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType."))
		}
		apiErr = cmp.Or(apiErr, length(p+"title", e.Title, 256), length(p+"description", e.Description, 4096),
			failIf(len(e.Fields) > 25, tooLong(p+"fields", 25)))
		for j, f := range e.Fields {
			fp := fmt.Sprintf("%sfields.%d.", p, j)
			apiErr = cmp.Or(apiErr, failIf(f.Name == "", required(fp+"name")), failIf(f.Value == "", required(fp+"value")),
				length(fp+"name", f.Name, 256), length(fp+"value", f.Value, 1024))
		}
		if e.Footer != nil {
			apiErr = cmp.Or(apiErr, length(p+"footer.text", e.Footer.Text, 2048))
		}
		if e.Author != nil {
			apiErr = cmp.Or(apiErr, length(p+"author.name", e.Author.Name, 256))
		}
	}
	return cmp.Or(apiErr, failIf(total > maxEmbedTotal,
		formError("embeds", "MAX_EMBED_SIZE_EXCEEDED", fmt.Sprintf("Embed size exceeds maximum size of %d", maxEmbedTotal))))
}

// component is the part of a message component the fake checks.
type component struct {
	Type       *int        `json:"type"`
	Style      int         `json:"style"`
	CustomID   string      `json:"custom_id"`
	URL        string      `json:"url"`
	SKUID      string      `json:"sku_id"`
	Components []component `json:"components"`
}

// checkComponents enforces Discord's rules for legacy components: up to
// five action rows at the top, each holding up to five buttons or one
// select menu, with unique custom ids. Components V2 (flag 1<<15) are only
// checked to be typed objects.
func checkComponents(raw json.RawMessage, v2 bool) *apiError {
	var rows []component
	if err := json.Unmarshal(raw, &rows); err != nil {
		return formError("components", "LIST_TYPE_CONVERT", "Only iterables of component objects may be used.")
	}
	var typed func(path string, cs []component) *apiError
	typed = func(path string, cs []component) *apiError {
		for i, c := range cs {
			p := fmt.Sprintf("%s.%d.", path, i)
			if apiErr := cmp.Or(failIf(c.Type == nil, required(p+"type")), typed(p+"components", c.Components)); apiErr != nil {
				return apiErr
			}
		}
		return nil
	}
	if apiErr := typed("components", rows); apiErr != nil || v2 {
		return apiErr
	}
	if len(rows) > maxActionRows {
		return tooLong("components", maxActionRows)
	}
	seen := map[string]bool{}
	for i, row := range rows {
		p := fmt.Sprintf("components.%d.", i)
		if *row.Type != 1 {
			return formError(p+"type", "UNION_TYPE_CHOICES", "Top-level components must be action rows (type 1).")
		}
		if len(row.Components) == 0 || len(row.Components) > maxRowComponents {
			return formError(p+"components", "BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", maxRowComponents))
		}
		for j, c := range row.Components {
			cp := fmt.Sprintf("%scomponents.%d.", p, j)
			var apiErr *apiError
			switch t := *c.Type; {
			case t == 2 && (c.Style == 5 || c.Style == 6): // a link or a premium button: no custom id
				apiErr = cmp.Or(failIf(c.Style == 5 && c.URL == "", required(cp+"url")), failIf(c.Style == 6 && c.SKUID == "", required(cp+"sku_id")))
				if apiErr == nil {
					continue
				}
			case t == 2:
				apiErr = failIf(c.Style < 1 || c.Style > 4, formError(cp+"style", "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3, 4, 5, 6}."))
			case t == 3 || (t >= 5 && t <= 8):
				apiErr = failIf(len(row.Components) != 1,
					formError(p+"components", "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "The specified component exceeds the maximum width"))
			default:
				apiErr = formError(cp+"type", "UNION_TYPE_CHOICES", "Value of field \"type\" must be one of (2, 3, 5, 6, 7, 8).")
			}
			apiErr = cmp.Or(apiErr, failIf(c.CustomID == "", required(cp+"custom_id")),
				failIf(utf8.RuneCountInString(c.CustomID) > maxCustomIDRunes, tooLong(cp+"custom_id", maxCustomIDRunes)),
				failIf(seen[c.CustomID], formError(cp+"custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")))
			if apiErr != nil {
				return apiErr
			}
			seen[c.CustomID] = true
		}
	}
	return nil
}

func arrayOrEmpty(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("[]")
	}
	return bytes.Clone(raw)
}

func rawLen(raw json.RawMessage) int {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return 0
	}
	return len(items)
}

func empty(m message) bool {
	return m.Text == "" && rawLen(m.X.embeds) == 0 && rawLen(m.X.components) == 0 && len(m.Files) == 0
}

// --- messages ---

// postLocked creates a message from input in a channel, lets decorate
// adjust it, checks it is not empty, stores it and dispatches MESSAGE_CREATE.
func (s *Server) postLocked(ch fake.Channel, author string, in *msgInput, decorate ...func(*message)) (message, *apiError) {
	m := s.newMessage(ch, author, "")
	if ref := in.Reference; ref != nil && ref.MessageID != "" {
		if _, ok := s.Store.Message(ref.MessageID); !ok && (ref.FailIfNotExists == nil || *ref.FailIfNotExists) {
			return m, formError("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
		}
		m.X.reference = ref.MessageID
	}
	if apiErr := s.apply(&m, in); apiErr != nil {
		return m, apiErr
	}
	for _, f := range decorate {
		f(&m)
	}
	return s.storeLocked(m), nil
}

func (s *Server) newMessage(ch fake.Channel, author, content string) message {
	m := message{ID: s.nextID(), Channel: ch.ID, Author: author, Text: content}
	m.Created = snowflakeTime(m.ID)
	if ch.Parent != "" {
		m.Thread = ch.ID
	}
	return m
}

// apply sets the fields of m that input carries and uploads its files,
// unless that would leave m empty.
func (s *Server) apply(m *message, in *msgInput) *apiError {
	next := *m
	next.Text = *cmp.Or(in.Content, &next.Text)
	if in.Embeds != nil {
		next.X.embeds = bytes.Clone(in.Embeds)
	}
	if in.Components != nil {
		next.X.components = bytes.Clone(in.Components)
	}
	if in.Flags != nil {
		next.X.flags = next.X.flags&^clientFlags | *in.Flags&clientFlags
	}
	if keep := in.keep(); keep != nil {
		// Dropped files stay on the CDN, as they do on Discord's for a while.
		next.Files = slices.DeleteFunc(slices.Clone(next.Files), func(id string) bool { return !slices.Contains(keep, id) })
	}
	uploads := make([]fake.File, len(in.files))
	for i, f := range in.files {
		uploads[i] = fake.File{ID: s.nextID(), Channel: m.Channel, Message: m.ID, Name: f.name, ContentType: f.contentType, Content: string(f.content)}
		next.Files = append(next.Files, uploads[i].ID)
	}
	if empty(next) && !in.nonEmpty() {
		return errEmptyMessage
	}
	for _, f := range uploads {
		s.Store.AddFile(f)
	}
	*m = next
	return nil
}

func (s *Server) storeLocked(m message) message {
	m = s.Store.Post(m)
	s.dispatchMessageLocked("MESSAGE_CREATE", m)
	return m
}

// editLocked applies input to an existing message, refusing an edit that
// leaves it empty, and dispatches MESSAGE_UPDATE.
func (s *Server) editLocked(m message, in *msgInput) (message, *apiError) {
	if apiErr := s.apply(&m, in); apiErr != nil {
		return m, apiErr
	}
	m.X.flags &^= flagLoading
	m, _ = s.Store.Update(m)
	s.dispatchMessageLocked("MESSAGE_UPDATE", m)
	return m, nil
}

// dispatchMessageLocked dispatches a message event, as it carries the
// message: with the author's member object in guilds, to the sessions with
// the intent of the channel's messages.
func (s *Server) dispatchMessageLocked(event string, m message) {
	w := s.messageJSONLocked(m)
	intent := intentDirectMessages
	if w["guild_id"] != nil {
		intent = intentGuildMessages
	}
	if w["guild_id"] != nil && m.X.webhookID == "" {
		w["member"] = member(m.Author, false)
	}
	s.dispatchLocked(event, w, intent)
}

func channelType(ch fake.Channel) int {
	switch {
	case ch.User != "":
		return channelDM
	case ch.Parent != "":
		return channelPublicThread
	}
	return channelText
}

func guildOf(ch fake.Channel) string {
	if ch.User != "" {
		return ""
	}
	return GuildID
}

// --- JSON shapes ---

// userJSON renders the user with the id; the bot is "kubechat", and every
// other user's name is made up from its id.
func userJSON(id string) object {
	u := object{"id": id, "username": "user-" + id, "global_name": "user-" + id, "discriminator": "0", "avatar": nil}
	if id == BotUserID {
		u["username"], u["global_name"], u["bot"] = botName, botName, true
	}
	return u
}

// memberPermissions is what a member may do in the fake guild: view
// channels, send messages, read history.
const memberPermissions = "68608"

// member renders a user as a guild member, with the user or not.
func member(userID string, withUser bool) object {
	m := object{"roles": []string{}, "joined_at": snowflakeTime(GuildID).Format(timeLayout), "deaf": false, "mute": false, "flags": 0}
	if withUser {
		m["user"] = userJSON(userID)
	}
	return m
}

// messageJSONLocked renders a message as REST returns it.
func (s *Server) messageJSONLocked(m message) object {
	ch, _ := s.Store.Channel(m.Channel)
	w := object{
		"id": m.ID, "type": messageDefault, "channel_id": m.Channel, "author": userJSON(m.Author), "content": m.Text,
		"timestamp": snowflakeTime(m.ID).Format(timeLayout), "edited_timestamp": nil, "tts": false, "mention_everyone": false,
		"mentions": []object{}, "mention_roles": []string{}, "attachments": []object{}, "pinned": false, "flags": m.X.flags,
		"embeds": arrayOrEmpty(m.X.embeds), "components": arrayOrEmpty(m.X.components),
	}
	if guild := guildOf(ch); guild != "" {
		w["guild_id"] = guild
	}
	if m.X.webhookID != "" {
		w["webhook_id"], w["application_id"] = m.X.webhookID, AppID
	}
	if !m.Edited.IsZero() {
		w["edited_timestamp"] = m.Edited.UTC().Format(timeLayout)
	}
	for _, id := range m.X.mentions {
		w["mentions"] = append(w["mentions"].([]object), userJSON(id))
	}
	for _, id := range m.Files {
		a, _ := s.Store.File(id)
		url := fmt.Sprintf("%s/cdn/attachments/%s/%s/%s", s.URL(), a.Channel, a.ID, a.Name)
		attachment := object{"id": a.ID, "filename": a.Name, "size": len(a.Content), "url": url, "proxy_url": url}
		if a.ContentType != "" {
			attachment["content_type"] = a.ContentType
		}
		w["attachments"] = append(w["attachments"].([]object), attachment)
	}
	if m.X.reference != "" {
		ref, _ := s.Store.Message(m.X.reference)
		w["type"] = messageReply
		w["message_reference"] = object{"type": 0, "message_id": m.X.reference, "channel_id": cmp.Or(ref.Channel, m.Channel), "guild_id": guildOf(ch)}
	}
	if th, ok := s.Store.Channel(m.ID); ok && th.Parent != "" {
		w["thread"] = s.channelJSONLocked(th)
	}
	return w
}

// channelJSONLocked renders a channel.
func (s *Server) channelJSONLocked(ch fake.Channel) object {
	w := object{
		"id": ch.ID, "type": channelType(ch), "position": 0, "parent_id": nil, "nsfw": false, "last_message_id": nil,
		"rate_limit_per_user": 0, "flags": 0,
	}
	if guild := guildOf(ch); guild != "" {
		w["guild_id"] = guild
	}
	if ch.Name != "" {
		w["name"] = ch.Name
	}
	count := 0
	for _, m := range s.Store.Messages(ch.ID) {
		if m.Channel == ch.ID {
			count++
			w["last_message_id"] = m.ID
		}
	}
	switch channelType(ch) {
	case channelDM:
		w["recipients"] = []object{userJSON(ch.User)}
	case channelPublicThread:
		w["parent_id"], w["owner_id"], w["message_count"], w["member_count"] = ch.Parent, BotUserID, count, 1
		w["thread_metadata"] = object{
			"archived": false, "auto_archive_duration": s.archives[ch.ID], "archive_timestamp": ch.Created.UTC().Format(timeLayout), "locked": false,
		}
	default:
		w["topic"] = ""
		w["position"] = slices.IndexFunc(s.guildChannels(), func(c fake.Channel) bool { return c.ID == ch.ID })
	}
	return w
}

// guildChannels returns the guild's channels, threads excluded, by position.
func (s *Server) guildChannels() []fake.Channel {
	return slices.DeleteFunc(s.Store.Channels(), func(ch fake.Channel) bool { return channelType(ch) != channelText })
}

// --- REST handlers ---

func (s *Server) getGatewayBot(*call) (int, any, *apiError) {
	return http.StatusOK, object{"url": s.wsURL, "shards": 1, "session_start_limit": map[string]int{
		"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1,
	}}, nil
}

// meJSON is the bot's user object, as GET /users/@me and READY carry it.
func meJSON() object {
	me := maps.Clone(userJSON(BotUserID))
	maps.Copy(me, object{"global_name": nil, "verified": true, "mfa_enabled": false, "flags": 0})
	return me
}

func getUser(c *call) (int, any, *apiError) {
	id := c.PathValue("uid")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return 0, nil, formError("user_id", "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not snowflake.", id))
	}
	return http.StatusOK, userJSON(id), nil
}

// createDM returns the DM channel with recipient_id, creating it once.
func (s *Server) createDM(c *call) (int, any, *apiError) {
	var req struct {
		RecipientID string `json:"recipient_id"`
	}
	if apiErr := c.body.decode(&req); apiErr != nil {
		return 0, nil, apiErr
	}
	if req.RecipientID == "" || req.RecipientID == BotUserID {
		return 0, nil, formError("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
	}
	return http.StatusOK, s.channelJSONLocked(s.dm(req.RecipientID)), nil
}

func (s *Server) dm(userID string) fake.Channel {
	return s.Store.DirectChannel(userID, func() fake.Channel { return fake.Channel{ID: s.nextID()} })
}

func (s *Server) channelsJSONLocked(chs []fake.Channel) []object {
	out := []object{}
	for _, ch := range chs {
		out = append(out, s.channelJSONLocked(ch))
	}
	return out
}

// listMessages returns a channel's own messages, newest first, up to
// ?limit= (default 50, at most 100).
func (s *Server) listMessages(c *call) (int, any, *apiError) {
	limit := 50
	if v := c.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return 0, nil, formError("limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 100.")
		}
		limit = n
	}
	msgs := s.Store.Messages(c.ch.ID)
	out := []object{}
	for i := len(msgs) - 1; i >= 0 && len(out) < limit; i-- {
		if msgs[i].Channel == c.ch.ID {
			out = append(out, s.messageJSONLocked(msgs[i]))
		}
	}
	return http.StatusOK, out, nil
}

// editMessage edits a message: the bot edits only its own messages' content.
func (s *Server) editMessage(c *call) (int, any, *apiError) {
	if c.m.Author != BotUserID && (c.in.Content != nil || c.in.Embeds != nil || c.in.Components != nil || len(c.in.files) > 0) {
		return 0, nil, &apiError{Status: http.StatusForbidden, Code: 50005, Message: "Cannot edit a message authored by another user"}
	}
	return s.answerLocked(s.editLocked(c.m, c.in))
}

// startThread starts a public thread from a message. Like Discord, the
// thread's id is the message's id.
func (s *Server) startThread(c *call) (int, any, *apiError) {
	var req struct {
		Name    string `json:"name"`
		Archive int    `json:"auto_archive_duration"`
	}
	if apiErr := c.body.decode(&req); apiErr != nil {
		return 0, nil, apiErr
	}
	if n := utf8.RuneCountInString(req.Name); n < 1 || n > maxThreadNameRune {
		return 0, nil, formError("name", "BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between 1 and %d in length.", maxThreadNameRune))
	}
	switch req.Archive {
	case 0:
		req.Archive = 4320
	case 60, 1440, 4320, 10080:
	default:
		return 0, nil, formError("auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}.")
	}
	if channelType(c.ch) != channelText {
		return 0, nil, errWrongChanType
	}
	m, ok := s.Store.Message(c.PathValue("id"))
	if !ok || m.Channel != c.ch.ID {
		return 0, nil, errUnknownMsg
	}
	if _, started := s.Store.Channel(m.ID); started {
		return 0, nil, errThreadExists
	}
	s.archives[m.ID] = req.Archive
	th := s.Store.AddChannel(fake.Channel{ID: m.ID, Name: req.Name, Parent: c.ch.ID})
	wire := s.channelJSONLocked(th)
	created := maps.Clone(wire)
	created["newly_created"] = true
	s.dispatchLocked("THREAD_CREATE", created, intentGuilds)
	return http.StatusCreated, wire, nil
}

// --- discordgo endpoints ---

// endpointsMu serializes Point and the restore in Close across servers.
var endpointsMu sync.Mutex

// Point aims discordgo at this server by reassigning every string endpoint
// variable of discordgo's endpoints.go, as endpoint.Point does:
// EndpointDiscord becomes URL()+"/", EndpointAPI
// URL()+"/api/v"+discordgo.APIVersion+"/", EndpointCDN URL()+"/cdn/", and
// every variable derived from them is recomputed the way discordgo
// computes it. The function-valued endpoints (EndpointChannelMessages, ...)
// read those variables each time they are called, so they follow. Close
// puts the previous values back.
//
// Point mutates discordgo's package-level variables without any
// synchronization discordgo could take part in: call it before creating or
// opening any discordgo session, and do not run tests that use it in
// parallel (t.Parallel) with each other or with anything else using
// discordgo in the same test binary.
func (s *Server) Point() {
	endpointsMu.Lock()
	defer endpointsMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pointed == nil {
		s.pointed = []string{discordgo.EndpointStatus, discordgo.EndpointDiscord, discordgo.EndpointCDN}
	}
	endpoint.Point(s.URL())
}

// unpoint restores the endpoints Point replaced, unless they have been
// re-pointed elsewhere since.
func (s *Server) unpoint() {
	endpointsMu.Lock()
	defer endpointsMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pointed == nil {
		return
	}
	if discordgo.EndpointDiscord == s.URL()+"/" {
		endpoint.Set(s.pointed[0], s.pointed[1], s.pointed[2])
	}
	s.pointed = nil
}
