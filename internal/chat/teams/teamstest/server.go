// Package teamstest is a fake of Microsoft Teams on loopback, as a bot sees
// it through the Bot Framework protocol, for tests.
//
// One Server plays three services:
//
//   - Microsoft Entra ID's token endpoint (TokenURL), which grants the bot
//     Bot Connector access tokens with the client credentials grant;
//   - the Bot Connector REST API (ServiceURL), which the bot posts, replies
//     to and updates channel messages through;
//   - the Bot Connector Service posting activities to the bot's endpoint
//     (Mention, Install, Execute, Post), signed with a JWT that the bot
//     validates against the OpenID metadata (OpenIDURL) and JWKS (JWKSURL).
//
// The fake holds one team, "Platform", whose channels start as "alerts" and
// "General" and keeps every message posted to them, edits applied.
// Payloads follow the documented formats
// (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference,
// https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).
// Faults can be injected into the REST API, not into the token endpoint,
// OpenID metadata or JWKS: failures of the next calls (FailNext) and an
// outage (SetDown), answered with Bot Connector errors such as
// {"error":{"code":"Throttled","message":"..."}}, a 429 with a Retry-After
// header in whole seconds, rounded up, when it names a wait.
package teamstest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

const (
	// AppID is the bot's Microsoft App ID: the client_id of the token
	// endpoint and the aud of the tokens that come with inbound activities.
	AppID = "3f6a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
	// AppPassword is the bot's client secret, the only one the token endpoint accepts.
	AppPassword = "teams-test-client-secret"
	// TenantID is the Microsoft Entra tenant the team belongs to.
	TenantID = "72f988bf-0000-4000-8000-000000000001"
	// Issuer is the iss of the tokens the fake signs for inbound activities.
	Issuer = "https://api.botframework.com"
	// BotName is the bot's display name, as it appears in mentions.
	BotName = "kubechat"
	// GroupID is the Microsoft 365 group behind the team (its aadGroupId).
	GroupID = "0a1b2c3d-0000-4000-8000-000000007ea3"
)

const (
	teamName       = "Platform"
	generalName    = "General" // the team's default channel, whose id is the team id
	channelIDTeams = "msteams" // the Bot Framework channelId of Microsoft Teams
	locale         = "en-US"
	installerID    = "installer" // the user who installs the app in Install
	// servicePath is the path of ServiceURL, as in https://smba.trafficmanager.net/amer/.
	servicePath = "/amer/"
	// threadMarker separates a channel id from the thread root in a conversation id.
	threadMarker     = ";messageid="
	adaptiveCardType = "application/vnd.microsoft.card.adaptive"
	maxBodyBytes     = 1 << 20       // bounds every request and response body the server reads
	botAccountID     = "28:" + AppID // the bot's id in Teams, the From of its activities
)

type object = map[string]any

// Errors of the inbound methods.
var (
	errClosed      = fake.ErrClosed
	errNoEndpoint  = errors.New("no bot endpoint set (SetBotEndpoint)")
	errUnknownChan = fake.ErrUnknownChannel
	errUnknownAct  = errors.New("unknown activity")
	errEmptyUserID = errors.New("empty user id")
)

// Server is a fake Microsoft Teams with one team, on loopback. Create it
// with New and release it with Close. All its methods are safe for
// concurrent use.
type Server struct {
	*fake.Server[activity, *fake.Conn]
	key       *rsa.PrivateKey // signs inbound activities; its public half is in the JWKS
	connector *http.ServeMux  // the Connector REST routes
	ids       fake.Monotonic  // activity ids, in Unix milliseconds
	teamID    string          // the General channel's id

	mu       sync.Mutex
	tokens   map[string]time.Time // access tokens issued, with their expiry
	issued   int
	endpoint string
}

// activity is what the fake keeps of an activity beyond what every fake keeps.
type activity struct {
	replyTo     string
	attachments json.RawMessage
}

// Activity is one message in a conversation as the fake holds it, edits applied.
type Activity struct {
	// ID is the activity id: Unix milliseconds, unique and increasing, as in Teams.
	ID string
	// Conversation is the conversation id it was posted to: the channel id
	// for a top-level post, or "<channel id>;messageid=<root id>" for a reply.
	Conversation string
	// Channel is the channel id: Conversation without ";messageid=...".
	Channel string
	// ThreadRoot is the id of the thread's root activity, or "" for a top-level post.
	ThreadRoot string
	// ReplyToID is the activity a reply answered, or "" if none was given.
	ReplyToID string
	// From is the sender id: "28:"+AppID for the bot, "29:"+user id for users.
	From string
	// Text is the text as posted or last updated.
	Text string
	// Attachments is the attachments JSON array as posted or last updated, or
	// nil if there are none. Adaptive Cards have the contentType
	// "application/vnd.microsoft.card.adaptive".
	Attachments json.RawMessage
	// Edits counts the successful updates of the activity.
	Edits int
}

// New starts a fake Teams on loopback with one RSA-2048 signing key (kid
// "fake-key-1") and the team "Platform", whose channels are "alerts" and
// "General". As in Teams, the General channel's id is the team id.
func New() *Server {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		panic("teamstest: generate signing key: " + err.Error())
	}
	s := &Server{Server: fake.NewServer[activity, *fake.Conn](0), key: key, tokens: map[string]time.Time{}}
	s.AddChannel("alerts")
	s.teamID = s.AddChannel(generalName)
	s.connector = s.connectorRoutes()
	mux := http.NewServeMux()
	mux.HandleFunc(openIDPath, s.serveOpenID)
	mux.HandleFunc(jwksPath, s.serveJWKS)
	mux.HandleFunc(tokenPath, s.serveToken)
	mux.HandleFunc(tenantTokenPath, s.serveToken)
	mux.HandleFunc(servicePath, s.serveConnector)
	s.Start(mux)
	return s
}

// ServiceURL returns the base URL of the Bot Connector REST API, the
// serviceUrl of inbound activities. It ends with "/".
func (s *Server) ServiceURL() string {
	return s.URL() + servicePath
}

// TeamID returns the id of the team, which is also the id of its General channel.
func (s *Server) TeamID() string {
	return s.teamID
}

// AddChannel adds a channel to the team and returns its id, made of the
// name's letters and digits and a sequence number, like Teams'
// "19:deploys0002@thread.tacv2". A name that exists already returns that
// channel's id, and "" adds nothing and returns "".
func (s *Server) AddChannel(name string) (id string) {
	return s.Store.EnsureChannel(name, func(n int) string {
		slug := strings.Map(func(r rune) rune {
			if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return unicode.ToLower(r)
			}
			return -1
		}, name)
		return fmt.Sprintf("19:%s%04d@thread.tacv2", slug[:min(len(slug), 24)], n)
	})
}

// Activities returns the activities of a channel, in every thread, the bot's
// and injected users' alike, in posting order.
func (s *Server) Activities(channelID string) []Activity {
	return fake.Convert(s.Store.Messages(channelID), export)
}

// WaitActivities waits until the channel holds at least n activities and
// returns them all. When ctx ends, or the server closes, first it returns
// the activities so far with an error.
func (s *Server) WaitActivities(ctx context.Context, channelID string, n int) ([]Activity, error) {
	acts, err := s.Store.WaitMessages(ctx, channelID, n)
	return fake.Convert(acts, export), err
}

// SetBotEndpoint sets the URL inbound activities are POSTed to, such as
// http://127.0.0.1:8080/teams/ops-teams/api/messages.
func (s *Server) SetBotEndpoint(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoint = url
}

func export(m fake.Message[activity]) Activity {
	return Activity{
		ID: m.ID, Conversation: conversationID(m.Channel, m.Thread), Channel: m.Channel, ThreadRoot: m.Thread,
		ReplyToID: m.X.replyTo, From: m.Author, Text: m.Text, Attachments: bytes.Clone(m.X.attachments), Edits: m.Edits,
	}
}

func (s *Server) activityIn(channelID, id string) (fake.Message[activity], bool) {
	m, ok := s.Store.Message(id)
	return m, ok && m.Channel == channelID
}

// nextID returns a new activity id: the clock in Unix milliseconds, made
// later than any id before it.
func (s *Server) nextID() string {
	return strconv.FormatInt(s.ids.Next(time.Now().UnixMilli()), 10)
}

// addActivity stores a new activity in the channel: a top-level post when
// root is "", else a reply in root's thread.
func (s *Server) addActivity(channelID, root, replyTo, from, text string, attachments json.RawMessage) fake.Message[activity] {
	s.mu.Lock() // ids increase in posting order
	defer s.mu.Unlock()
	return s.Store.Post(fake.Message[activity]{
		ID: s.nextID(), Channel: channelID, Thread: root, Author: from, Text: text,
		X: activity{replyTo: replyTo, attachments: bytes.Clone(attachments)},
	})
}

// conversationID returns the id of a channel's conversation: the channel id
// itself, or the thread's conversation when root is set.
func conversationID(channelID, root string) string {
	if root == "" {
		return channelID
	}
	return channelID + threadMarker + root
}

// ---- Bot Connector REST API ----

// apiError is a Bot Connector error, answered as
// {"error":{"code":code,"message":message}} with the HTTP status. The codes
// are those Teams documents.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func writeAPIError(w http.ResponseWriter, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = newAPIError(http.StatusInternalServerError, "ServiceError", "%v", err)
	}
	fake.WriteJSON(w, e.status, object{"error": object{"code": e.code, "message": e.message}})
}

// serveConnector serves the Bot Connector REST API under ServiceURL: it
// injects faults and checks the access token, then routes the call.
func (s *Server) serveConnector(w http.ResponseWriter, r *http.Request) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if f, failed := s.Store.Next(); failed {
		writeFault(w, f)
	} else if !strings.EqualFold(scheme, "Bearer") || !s.validAccessToken(strings.TrimSpace(token)) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeAPIError(w, newAPIError(http.StatusUnauthorized, "Unauthorized", "Authorization has been denied for this request."))
	} else {
		s.connector.ServeHTTP(w, r)
	}
}

func writeFault(w http.ResponseWriter, f fake.Fault) {
	code := "ServiceError"
	switch {
	case f.Status == http.StatusTooManyRequests:
		code = "Throttled"
		f.SetRetryAfter(w.Header())
	case f.Status == http.StatusServiceUnavailable:
		code = "ServiceUnavailable"
	case f.Status < http.StatusInternalServerError:
		code = strings.ReplaceAll(http.StatusText(f.Status), " ", "")
	}
	writeAPIError(w, newAPIError(f.Status, code, "injected failure: %d %s", f.Status, http.StatusText(f.Status)))
}

// handler serves one method of a Connector REST resource; it returns the
// HTTP status and the JSON body of a success.
type handler func(r *http.Request, body []byte) (int, any, error)

// connectorRoutes routes the Connector REST calls. A ServeMux matches path
// segments unescaped, so that a conversation id may come escaped
// ("19%3Aa%40thread.tacv2%3Bmessageid%3D1") or not.
func (s *Server) connectorRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	for path, methods := range map[string]map[string]handler{
		"v3/conversations":                                      {http.MethodPost: s.createConversation},
		"v3/conversations/{conversation}/activities":            {http.MethodPost: s.sendToConversation},
		"v3/conversations/{conversation}/activities/{activity}": {http.MethodPost: s.sendToConversation, http.MethodPut: s.updateActivity},
		"v3/teams/{team}":                                       {http.MethodGet: s.teamDetails},
		"v3/teams/{team}/conversations":                         {http.MethodGet: s.teamChannels},
	} {
		for method, handle := range methods {
			mux.HandleFunc(method+" "+servicePath+path, func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
				switch {
				case fake.TooLarge(err):
					writeAPIError(w, newAPIError(http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "the request body exceeds %d bytes", maxBodyBytes))
				case err != nil:
					writeAPIError(w, newAPIError(http.StatusBadRequest, "BadArgument", "read body: %v", err))
				default:
					if status, result, err := handle(r, body); err != nil {
						writeAPIError(w, err)
					} else {
						fake.WriteJSON(w, status, result)
					}
				}
			})
		}
		allow := strings.Join(slices.Sorted(maps.Keys(methods)), ", ")
		mux.HandleFunc(servicePath+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeAPIError(w, newAPIError(http.StatusMethodNotAllowed, "MethodNotAllowed", "%s is not allowed here", r.Method))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, newAPIError(http.StatusNotFound, "NotFound", "no resource at %s", r.URL.EscapedPath()))
	})
	return mux
}

type message struct {
	text        string
	attachments json.RawMessage // nil when there are none
	replyToID   string
}

func badArgument(format string, args ...any) error {
	return newAPIError(http.StatusBadRequest, "BadArgument", format, args...)
}

// parseMessage decodes and checks an activity the bot sends: it must be a
// message with text or attachments, whose attachments are objects with a
// contentType, and whose Adaptive Cards are objects of type "AdaptiveCard".
func parseMessage(raw []byte) (message, error) {
	var act struct {
		Type, Text, ReplyToID string
		Attachments           json.RawMessage
	}
	var attachments []struct {
		ContentType string          `json:"contentType"`
		Content     json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(raw, &act); err != nil {
		return message{}, badArgument("malformed activity JSON: %v", err)
	}
	switch act.Type {
	case "message":
	case "":
		return message{}, badArgument("the activity has no type")
	default:
		return message{}, badArgument("unsupported activity type %q", act.Type)
	}
	msg := message{text: act.Text, replyToID: act.ReplyToID}
	if len(act.Attachments) > 0 && string(act.Attachments) != "null" {
		if err := json.Unmarshal(act.Attachments, &attachments); err != nil {
			return message{}, badArgument("attachments must be an array of objects: %v", err)
		}
		msg.attachments = act.Attachments
	}
	for i, a := range attachments {
		var card struct{ Type string }
		switch {
		case a.ContentType == "":
			return message{}, badArgument("attachment %d has no contentType", i)
		case a.ContentType == adaptiveCardType && (json.Unmarshal(a.Content, &card) != nil || card.Type != "AdaptiveCard"):
			return message{}, badArgument("attachment %d is not an Adaptive Card object (content.type must be \"AdaptiveCard\")", i)
		}
	}
	if msg.text == "" && msg.attachments == nil {
		return message{}, badArgument("the message has neither text nor attachments")
	}
	return msg, nil
}

// conversation reads the message activity of a request and resolves its
// path's conversation id: a channel id, or a channel id with ";messageid="
// and the id of a top-level post of that channel.
func (s *Server) conversation(r *http.Request, body []byte) (msg message, channelID, root string, err error) {
	if msg, err = parseMessage(body); err != nil {
		return msg, "", "", err
	}
	conversation := r.PathValue("conversation")
	channelID, root, threaded := strings.Cut(conversation, threadMarker)
	if _, ok := s.Store.Channel(channelID); !ok {
		return msg, "", "", newAPIError(http.StatusNotFound, "ConversationNotFound", "conversation %q not found", conversation)
	}
	if act, ok := s.activityIn(channelID, root); threaded && (!ok || act.Thread != "") {
		return msg, "", "", newAPIError(http.StatusNotFound, "ConversationNotFound", "conversation %q not found: no thread %q in %s", conversation, root, channelID)
	}
	return msg, channelID, root, nil
}

func (s *Server) activityOf(r *http.Request, channelID string) (fake.Message[activity], error) {
	act, ok := s.activityIn(channelID, r.PathValue("activity"))
	if !ok {
		return act, newAPIError(http.StatusNotFound, "NotFound", "activity %q not found in %s", r.PathValue("activity"), channelID)
	}
	return act, nil
}

// createConversation serves POST v3/conversations, which in a Teams channel
// makes a new top-level post, the root of a new thread:
// https://learn.microsoft.com/microsoftteams/platform/bots/how-to/conversations/send-proactive-messages
func (s *Server) createConversation(_ *http.Request, body []byte) (int, any, error) {
	var params struct {
		ChannelData struct{ Channel, Tenant struct{ ID string } }
		TenantID    string
		Activity    json.RawMessage
	}
	if err := json.Unmarshal(body, &params); err != nil {
		return 0, nil, badArgument("malformed conversation parameters JSON: %v", err)
	}
	channelID := params.ChannelData.Channel.ID
	switch tenant := cmp.Or(params.ChannelData.Tenant.ID, params.TenantID); {
	case channelID == "":
		return 0, nil, badArgument("channelData.channel.id is required to post in a channel")
	case tenant != "" && tenant != TenantID:
		return 0, nil, badArgument("tenant %q is not the team's tenant", tenant)
	case len(params.Activity) == 0 || string(params.Activity) == "null":
		return 0, nil, badArgument("activity is required to post in a channel")
	}
	msg, err := parseMessage(params.Activity)
	if err != nil {
		return 0, nil, err
	}
	if _, ok := s.Store.Channel(channelID); !ok {
		return 0, nil, newAPIError(http.StatusNotFound, "ConversationNotFound", "channel %q not found", channelID)
	}
	act := s.addActivity(channelID, "", "", botAccountID, msg.text, msg.attachments)
	return http.StatusCreated, object{"id": conversationID(channelID, act.ID), "activityId": act.ID, "serviceUrl": s.ServiceURL()}, nil
}

// sendToConversation serves POST v3/conversations/{conversationId}/activities
// and, as replyToActivity, .../activities/{activityId}. The reply to an
// activity, which must be in the channel, lands in its thread; else it is a
// reply in the thread when the conversation id names one, or a new
// top-level post (a replyToId in the body does not make a thread then).
func (s *Server) sendToConversation(r *http.Request, body []byte) (int, any, error) {
	msg, channelID, root, err := s.conversation(r, body)
	switch {
	case err != nil:
		return 0, nil, err
	case r.PathValue("activity") != "":
		target, err := s.activityOf(r, channelID)
		if err != nil {
			return 0, nil, err
		}
		root, msg.replyToID = cmp.Or(target.Thread, target.ID), target.ID
	case root == "":
		msg.replyToID = ""
	}
	act := s.addActivity(channelID, root, msg.replyToID, botAccountID, msg.text, msg.attachments)
	return http.StatusCreated, object{"id": act.ID}, nil
}

// updateActivity serves PUT v3/conversations/{conversationId}/activities/{activityId}:
// the new activity replaces the text and attachments of one of the bot's
// own activities in the channel.
func (s *Server) updateActivity(r *http.Request, body []byte) (int, any, error) {
	msg, channelID, _, err := s.conversation(r, body)
	if err != nil {
		return 0, nil, err
	}
	act, err := s.activityOf(r, channelID)
	switch {
	case err != nil:
		return 0, nil, err
	case act.Author != botAccountID:
		return 0, nil, newAPIError(http.StatusForbidden, "Forbidden", "the bot can only update its own activities")
	}
	act.Text, act.X.attachments = msg.text, bytes.Clone(msg.attachments)
	s.Store.Update(act)
	return http.StatusOK, object{"id": act.ID}, nil
}

// teamDetails serves GET v3/teams/{teamId}.
func (s *Server) teamDetails(r *http.Request, _ []byte) (int, any, error) {
	if r.PathValue("team") != s.teamID {
		return 0, nil, newAPIError(http.StatusNotFound, "NotFound", "team %q not found", r.PathValue("team"))
	}
	return http.StatusOK, object{"id": s.teamID, "name": teamName, "aadGroupId": GroupID}, nil
}

// teamChannels serves GET v3/teams/{teamId}/conversations, the team's
// channels. As in Teams, the General channel is listed without a name.
func (s *Server) teamChannels(r *http.Request, body []byte) (int, any, error) {
	if _, _, err := s.teamDetails(r, body); err != nil {
		return 0, nil, err
	}
	list := []object{}
	for _, ch := range s.Store.Channels() {
		entry := object{"id": ch.ID}
		if ch.ID != s.teamID {
			entry["name"] = ch.Name
		}
		list = append(list, entry)
	}
	return http.StatusOK, object{"conversations": list}, nil
}

// ---- Inbound activities ----

// newInbound returns an activity of the type from the user in the
// conversation of the channel, with the fields every Teams channel activity has.
func (s *Server) newInbound(typ, id, channelID, conversation, userID string) object {
	return object{
		"type": typ, "id": id, "timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"),
		"serviceUrl": s.ServiceURL(), "channelId": channelIDTeams, "locale": locale, "from": userAccount(userID),
		"conversation": object{"id": conversation, "conversationType": "channel", "isGroup": true, "tenantId": TenantID},
		"recipient":    object{"id": botAccountID, "name": BotName},
		"entities":     []object{{"type": "clientInfo", "locale": locale, "country": "US", "platform": "Web", "timezone": "Etc/UTC"}},
		"channelData": object{
			"teamsChannelId": channelID, "teamsTeamId": s.teamID, "channel": object{"id": channelID},
			"team": object{"id": s.teamID}, "tenant": object{"id": TenantID},
		},
	}
}

// userAccount returns the Teams account of a user: id "29:"+userID, name
// "User "+userID and an Entra object id derived from userID.
func userAccount(userID string) object {
	sum := sha256.Sum256([]byte(userID))
	aad := fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
	return object{"id": "29:" + userID, "name": "User " + userID, "aadObjectId": aad}
}

func (s *Server) ready() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.Store.Closed():
		return "", errClosed
	case s.endpoint == "":
		return "", errNoEndpoint
	}
	return s.endpoint, nil
}

// Mention posts, as the user, the channel message "<at>kubechat</at> "+text
// with a mention entity of the bot into the channel as a new thread, records
// it in Activities and POSTs the activity, signed, to the bot endpoint. The
// activity's conversation id is "<channel id>;messageid=<activity id>", as
// Teams sends it. It returns the activity id and the bot's HTTP status; it
// fails, posting nothing, for an unknown channel or when no bot endpoint is set.
func (s *Server) Mention(channelID, userID, text string) (activityID string, status int, err error) {
	_, err = s.ready()
	switch _, known := s.Store.Channel(channelID); {
	case userID == "":
		err = errEmptyUserID
	case err == nil && !known:
		err = errUnknownChan
	}
	if err != nil {
		return "", 0, fmt.Errorf("mention in %s: %w", channelID, err)
	}
	mention := "<at>" + BotName + "</at>"
	stored := s.addActivity(channelID, "", "", "29:"+userID, mention+" "+text, nil)
	act := s.newInbound("message", stored.ID, channelID, conversationID(channelID, stored.ID), userID)
	act["text"], act["textFormat"] = stored.Text, "plain"
	act["entities"] = append([]object{{"type": "mention", "text": mention, "mentioned": object{"id": botAccountID, "name": BotName}}},
		act["entities"].([]object)...)
	if status, _, err = s.postActivity(act); err != nil {
		return stored.ID, 0, fmt.Errorf("mention in %s: %w", channelID, err)
	}
	return stored.ID, status, nil
}

// Install posts to the bot the conversationUpdate activity Teams sends when
// the app is installed in the team: membersAdded holds the bot,
// channelData.eventType is "teamMemberAdded" and the conversation is the
// General channel, whose id is the team id. It returns the bot's HTTP status.
func (s *Server) Install() (status int, err error) {
	if _, err := s.ready(); err != nil {
		return 0, fmt.Errorf("install in %s: %w", teamName, err)
	}
	act := s.newInbound("conversationUpdate", "f:"+s.nextID(), s.teamID, s.teamID, installerID)
	act["membersAdded"] = []object{{"id": botAccountID}}
	channelData := act["channelData"].(object)
	channelData["eventType"] = "teamMemberAdded"
	channelData["team"] = object{"id": s.teamID, "name": teamName, "aadGroupId": GroupID}
	if status, _, err = s.postActivity(act); err != nil {
		return 0, fmt.Errorf("install in %s: %w", teamName, err)
	}
	return status, nil
}

// Execute posts to the bot the invoke activity a user's click on an
// Adaptive Card's Action.Execute makes: name "adaptiveCard/action", value
// {"action":{"type":"Action.Execute","verb":verb,"data":data},"trigger":"manual"},
// replyToId the card's activity id and the conversation of the card's
// thread ("<channel id>;messageid=<root id>"). The card must be an activity
// of the channel. It returns the bot's HTTP status and response body, the
// invoke response.
func (s *Server) Execute(channelID, cardActivityID, userID, verb string, data map[string]any) (status int, body []byte, err error) {
	_, err = s.ready()
	card, known := s.activityIn(channelID, cardActivityID)
	switch {
	case userID == "":
		err = errEmptyUserID
	case err == nil && !known:
		err = fmt.Errorf("in %s: %w", channelID, errUnknownAct)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("execute %q on %s: %w", verb, cardActivityID, err)
	}
	action := object{"type": "Action.Execute", "verb": verb}
	if data != nil {
		action["data"] = data
	}
	act := s.newInbound("invoke", "f:"+s.nextID(), channelID, conversationID(channelID, cmp.Or(card.Thread, card.ID)), userID)
	act["name"], act["replyToId"], act["value"] = "adaptiveCard/action", cardActivityID, object{"action": action, "trigger": "manual"}
	if status, body, err = s.postActivity(act); err != nil {
		return 0, nil, fmt.Errorf("execute %q on %s: %w", verb, cardActivityID, err)
	}
	return status, body, nil
}

// Post sends the activity JSON to the bot endpoint as is, with the given
// Authorization header value ("" sends none), and returns the bot's HTTP
// status. Tests use it to check that the bot rejects bad tokens.
func (s *Server) Post(activity []byte, authorization string) (status int, err error) {
	status, _, err = s.post(activity, authorization)
	if err != nil {
		return 0, fmt.Errorf("post activity: %w", err)
	}
	return status, nil
}

// postActivity encodes the activity and POSTs it to the bot with a token
// signed for ServiceURL.
func (s *Server) postActivity(act object) (int, []byte, error) {
	payload, err := json.Marshal(act)
	if err != nil {
		return 0, nil, fmt.Errorf("encode %s activity: %w", act["type"], err)
	}
	token, err := s.signToken(s.ServiceURL())
	if err != nil {
		return 0, nil, err
	}
	return s.post(payload, "Bearer "+token)
}

// post POSTs an activity to the bot endpoint and returns the bot's status
// and response body.
func (s *Server) post(payload []byte, authorization string) (int, []byte, error) {
	endpoint, err := s.ready()
	if err != nil {
		return 0, nil, err
	}
	header := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "User-Agent": {"Microsoft-SkypeBotApi (Microsoft-BotFramework 3.0)"}}
	if authorization != "" {
		header.Set("Authorization", authorization)
	}
	return s.Bot.Call(endpoint, header, payload, maxBodyBytes)
}
