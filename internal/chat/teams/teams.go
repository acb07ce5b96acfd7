// Package teams is the Microsoft Teams platform, speaking the Bot
// Framework protocol: Teams POSTs activities to the agent's endpoint
// /teams/<name>/api/messages, and the agent answers and posts alerts
// through the Bot Connector REST API at the activity's serviceUrl
// (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference).
//
// Every inbound request carries a JWT that is checked before anything
// else, with golang-jwt and a JWKS from the Bot Framework's OpenID
// metadata (keyfunc): signature, issuer, audience (the app id), expiry and
// the serviceurl claim. Anything else gets 401. Outbound calls use an OAuth
// client-credentials token, cached until it expires (x/oauth2).
//
// Alerts are proactive messages: the conversation reference of a channel
// (its serviceUrl and tenant) is captured when the app is installed or
// first mentioned there, and kept in the agent's state, so alerts keep
// flowing after a restart.
package teams

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

// Settings configure one Azure Bot registration.
type Settings struct {
	// AppID is the bot's Microsoft App ID: the audience of inbound tokens.
	AppID string `yaml:"appID"`
	// AppPassword is the client secret of the app registration.
	AppPassword *config.Secret `yaml:"appPassword"`
	// TenantID, for a single-tenant bot, is the Entra tenant that issues
	// outbound tokens (default: botframework.com, for multi-tenant bots).
	TenantID string `yaml:"tenantID"`
	// ServiceURL is where alerts go for a channel no one has talked to the
	// bot in yet (default https://smba.trafficmanager.net/teams/).
	ServiceURL string `yaml:"serviceURL"`
	// OpenIDURL and TokenURL replace the Bot Framework's endpoints (tests, sovereign clouds).
	OpenIDURL string `yaml:"openIDURL"`
	TokenURL  string `yaml:"tokenURL"`
	// MaxConcurrentCommands bounds the commands handled at once (default 16).
	MaxConcurrentCommands int `yaml:"maxConcurrentCommands"`
}

// Bot Framework endpoints and the issuer of the tokens it signs.
const (
	defaultOpenIDURL   = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	defaultServiceURL  = "https://smba.trafficmanager.net/teams/"
	botFrameworkScope  = "https://api.botframework.com/.default"
	botFrameworkIssuer = "https://api.botframework.com"
	// maxActivityBytes bounds an inbound request body.
	maxActivityBytes = 1 << 20
)

type platform struct {
	name   string
	s      Settings
	client *http.Client
	tokens oauth2.TokenSource
	state  chat.StateStore
	log    *slog.Logger

	mu       sync.Mutex
	verifier *verifier          // set once Listen has the signing keys
	handle   func(chat.Inbound) // set by Listen
	memory   map[string]string  // state when the agent has no cluster
}

// New builds a Teams platform from its settings block. It does not connect.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("teams %q: %w", name, err)
	}
	var errs []error
	if s.AppID == "" {
		errs = append(errs, errors.New("settings.appID: is required (the Azure Bot's Microsoft App ID)"))
	}
	if s.AppPassword == nil || s.AppPassword.IsZero() {
		errs = append(errs, errors.New("settings.appPassword: is required (the app registration's client secret)"))
	}
	for field, u := range map[string]string{"serviceURL": s.ServiceURL, "openIDURL": s.OpenIDURL, "tokenURL": s.TokenURL} {
		if u != "" {
			errs = append(errs, config.CheckHTTPURL("settings."+field, u))
		}
	}
	if s.MaxConcurrentCommands < 0 {
		errs = append(errs, fmt.Errorf("settings.maxConcurrentCommands: must be positive, got %d", s.MaxConcurrentCommands))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("teams %q: %w", name, err)
	}
	if s.ServiceURL == "" {
		s.ServiceURL = defaultServiceURL
	}
	if s.OpenIDURL == "" {
		s.OpenIDURL = defaultOpenIDURL
	}
	if s.TokenURL == "" {
		tenant := s.TenantID
		if tenant == "" {
			tenant = "botframework.com"
		}
		s.TokenURL = "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: chat.PostTimeout}
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc := clientcredentials.Config{ClientID: s.AppID, ClientSecret: s.AppPassword.Reveal(), TokenURL: s.TokenURL, Scopes: []string{botFrameworkScope}}
	// The token source outlives any one request: it caches the token until
	// it expires, so it gets a detached context that only carries the client.
	tokens := cc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, client))
	return &platform{
		name: name, s: s, client: client, tokens: tokens, state: d.State,
		log: log.With("platform", name), memory: map[string]string{},
	}, nil
}

func (p *platform) Name() string { return p.name }

// Limits keep cards small; Teams bots cannot upload files to channels, so
// long output is split over replies in the thread.
func (p *platform) Limits() chat.Limits { return limits }

// EditInterval paces streamed edits (updateActivity): the Bot Framework
// throttles a bot per conversation at a few operations a second
// (https://learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit).
func (p *platform) EditInterval() time.Duration { return time.Second }

// HTTPPrefix is where the app mounts HTTPHandler: /teams/<name>.
func (p *platform) HTTPPrefix() string { return "/teams/" + p.name }

// reference is what the agent remembers of a channel to message it unprompted.
type reference struct {
	ServiceURL string `json:"serviceUrl"`
	TenantID   string `json:"tenantId,omitempty"`
	TeamID     string `json:"teamId,omitempty"`
	Name       string `json:"name,omitempty"`
	// GroupID is the team's Microsoft 365 group id, which message links name.
	GroupID string `json:"groupId,omitempty"`
}

// stateKey makes a state key from parts that may hold any character
// (channel ids have ':' and '@', names spaces): ConfigMap keys allow only
// [-._a-zA-Z0-9], so the variable part is base32-encoded.
func (p *platform) stateKey(kind, value string) string {
	return "teams." + p.name + "." + kind + "." + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(value))
}

func (p *platform) refKey(channel string) string { return p.stateKey("ref", channel) }
func (p *platform) nameKey(name string) string   { return p.stateKey("name", name) }

// get reads the agent's memory first, then the persisted state.
func (p *platform) get(key string) (string, bool) {
	p.mu.Lock()
	v, ok := p.memory[key]
	p.mu.Unlock()
	if ok || p.state == nil {
		return v, ok
	}
	return p.state.Get(key)
}

// set keeps value in memory, so this process can use it even when the
// state cannot be written, and persists it.
func (p *platform) set(ctx context.Context, key, value string) {
	if v, ok := p.get(key); ok && v == value {
		return
	}
	p.mu.Lock()
	p.memory[key] = value
	p.mu.Unlock()
	if p.state != nil {
		if err := p.state.Set(ctx, key, value); err != nil {
			p.log.Error("conversation reference not saved; after a restart, alerts to this channel wait for a mention", "key", key, "err", err)
		}
	}
}

// remember stores the conversation reference of channel.
func (p *platform) remember(ctx context.Context, channel string, ref reference) {
	if channel == "" || ref.ServiceURL == "" {
		return
	}
	if old, ok := p.lookup(channel); ok {
		ref.Name = cmp.Or(ref.Name, old.Name)
		if ref.TeamID == old.TeamID {
			ref.GroupID = cmp.Or(ref.GroupID, old.GroupID)
		}
	}
	b, _ := json.Marshal(ref)
	p.set(ctx, p.refKey(channel), string(b))
	if ref.Name != "" {
		p.set(ctx, p.nameKey(ref.Name), channel)
	}
}

func (p *platform) lookup(channel string) (reference, bool) {
	v, ok := p.get(p.refKey(channel))
	var ref reference
	if !ok || json.Unmarshal([]byte(v), &ref) != nil {
		return reference{}, false
	}
	return ref, true
}

// teamsChannel matches Teams channel ids: 19:<id>@thread.tacv2 (or .skype).
var teamsChannel = regexp.MustCompile(`^19:[^;/]+@thread\.[a-z0-9]+$`)

// resolve turns a configured channel (an id, or a name the bot has seen)
// into its id and conversation reference.
func (p *platform) resolve(ch string) (string, reference, error) {
	id := ch
	if !teamsChannel.MatchString(ch) {
		v, ok := p.get(p.nameKey(strings.TrimPrefix(ch, "#")))
		if !ok {
			return "", reference{}, chat.Permanent(fmt.Errorf("teams channel %q unknown: configure its id (19:...@thread.tacv2), or install the app or mention the bot there once", ch))
		}
		id = v
	}
	ref, ok := p.lookup(id)
	if !ok {
		ref = reference{ServiceURL: p.s.ServiceURL, TenantID: p.s.TenantID}
	}
	return id, ref, nil
}

// Post sends m as an Adaptive Card: a new post in the channel, a reply in
// m.Thread, or an update of m.Replace.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	id, ref, err := p.resolve(to.ID)
	if err != nil {
		return chat.MessageRef{}, err
	}
	act := activity(m)
	base := strings.TrimSuffix(ref.ServiceURL, "/") + "/v3/conversations"
	switch {
	case m.Replace != nil:
		root := m.Replace.Root()
		u := base + "/" + url.PathEscape(id+";messageid="+root) + "/activities/" + url.PathEscape(m.Replace.ID)
		if _, err := p.call(ctx, http.MethodPut, u, act); err != nil {
			return chat.MessageRef{}, fmt.Errorf("teams update message in %s: %w", to.ID, err)
		}
		out := *m.Replace
		out.Platform, out.Channel = p.name, id
		return out, nil
	case m.Thread != nil && m.Thread.ID != "":
		root := m.Thread.Root()
		u := base + "/" + url.PathEscape(id+";messageid="+root) + "/activities"
		body, err := p.call(ctx, http.MethodPost, u, act)
		if err != nil {
			return chat.MessageRef{}, fmt.Errorf("teams reply in %s: %w", to.ID, err)
		}
		return chat.MessageRef{Platform: p.name, Channel: id, ID: body.ID, Thread: root}, nil
	default:
		req := object{"isGroup": true, "activity": act, "channelData": object{"channel": object{"id": id}}}
		if ref.TenantID != "" {
			req["channelData"].(object)["tenant"] = object{"id": ref.TenantID}
		}
		body, err := p.call(ctx, http.MethodPost, base, req)
		if err != nil {
			return chat.MessageRef{}, fmt.Errorf("teams post to %s: %w", to.ID, err)
		}
		msgID := body.ActivityID
		if msgID == "" {
			_, msgID, _ = strings.Cut(body.ID, ";messageid=")
		}
		return chat.MessageRef{Platform: p.name, Channel: id, ID: msgID}, nil
	}
}

// Permalink is a Teams deep link to the message in its channel
// conversation: https://teams.microsoft.com/l/message/<channel>/<message>
// with the tenant, the team's group and the thread's root message
// (parentMessageId). It needs what the agent learnt of the channel from
// Teams (an install or a mention there): its tenant and team, whose group
// id comes with the install or from GET v3/teams/<team>. A channel the
// agent has not heard from has no link.
func (p *platform) Permalink(ctx context.Context, ref chat.MessageRef) (string, error) {
	id, _, err := p.resolve(ref.Channel)
	if err != nil {
		return "", err
	}
	known, ok := p.lookup(id)
	if !ok || known.TenantID == "" || known.TeamID == "" {
		return "", nil
	}
	if known.GroupID == "" {
		u := strings.TrimSuffix(known.ServiceURL, "/") + "/v3/teams/" + url.PathEscape(known.TeamID)
		team, err := p.call(ctx, http.MethodGet, u, nil)
		if err != nil {
			return "", fmt.Errorf("teams team details of %s: %w", known.TeamID, err)
		}
		if team.AADGroupID == "" {
			return "", nil
		}
		known.GroupID = team.AADGroupID
		p.remember(ctx, id, known)
	}
	q := url.Values{"tenantId": {known.TenantID}, "groupId": {known.GroupID}, "parentMessageId": {ref.Root()}}
	if known.Name != "" {
		q.Set("channelName", known.Name)
	}
	return "https://teams.microsoft.com/l/message/" + url.PathEscape(id) + "/" + url.PathEscape(ref.ID) + "?" + q.Encode(), nil
}

// connectorResponse is what the Connector API answers: to posts, the
// activity's id; to GET v3/teams/{id}, the team's, with its group id.
type connectorResponse struct {
	ID         string `json:"id"`
	ActivityID string `json:"activityId"`
	AADGroupID string `json:"aadGroupId"`
}

// call sends one Connector API request with a bearer token and classifies
// its failure for chat.Retry.
func (p *platform) call(ctx context.Context, method, u string, body any) (connectorResponse, error) {
	var out connectorResponse
	tok, err := p.tokens.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && re.Response.StatusCode != http.StatusTooManyRequests {
			return out, chat.Permanent(fmt.Errorf("get bot token from %s: HTTP %d %s", p.s.TokenURL, re.Response.StatusCode, re.ErrorCode))
		}
		return out, fmt.Errorf("get bot token from %s: %w", p.s.TokenURL, err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return out, chat.Permanent(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return out, chat.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return out, chat.RetryAfter(max(time.Duration(after)*time.Second, time.Second), err)
		case resp.StatusCode >= 500:
			return out, err
		default:
			return out, chat.Permanent(err)
		}
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return out, fmt.Errorf("decode connector response: %w", err)
		}
	}
	return out, nil
}

// Listen loads the Bot Framework's signing keys, then accepts activities
// on HTTPHandler until ctx ends, passing commands and card actions to h.
func (p *platform) Listen(ctx context.Context, h chat.Handler) error {
	v, err := newVerifier(ctx, p.client, p.s.OpenIDURL, p.s.AppID, p.log)
	for err != nil {
		p.log.Error("cannot load the Bot Framework signing keys; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
		}
		v, err = newVerifier(ctx, p.client, p.s.OpenIDURL, p.s.AppID, p.log)
	}
	d := chat.NewDispatcher(p, h, p.s.MaxConcurrentCommands, p.log)
	p.mu.Lock()
	p.verifier = v
	// Requests come in on the HTTP server's goroutines; the command runs
	// on the dispatcher's, so Teams gets its answer to the request at once.
	p.handle = func(in chat.Inbound) { d.Dispatch(ctx, in) }
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.handle = nil
	p.mu.Unlock()
	d.Wait()
	return nil
}

// HTTPHandler serves POST /api/messages for the Bot Connector.
func (p *platform) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/messages", p.serveActivity)
	return mux
}

// inboundActivity is the part of a Bot Framework activity the agent reads.
type inboundActivity struct {
	Type       string `json:"type"`
	ID         string `json:"id"`
	Name       string `json:"name"`
	ServiceURL string `json:"serviceUrl"`
	ChannelID  string `json:"channelId"`
	ReplyToID  string `json:"replyToId"`
	Text       string `json:"text"`
	From       struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		AADObjectID string `json:"aadObjectId"`
	} `json:"from"`
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	Conversation struct {
		ID       string `json:"id"`
		TenantID string `json:"tenantId"`
	} `json:"conversation"`
	ChannelData struct {
		Channel struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"channel"`
		Team struct {
			ID         string `json:"id"`
			AADGroupID string `json:"aadGroupId"`
		} `json:"team"`
		Tenant struct {
			ID string `json:"id"`
		} `json:"tenant"`
		EventType string `json:"eventType"`
	} `json:"channelData"`
	MembersAdded []struct {
		ID string `json:"id"`
	} `json:"membersAdded"`
	Value json.RawMessage `json:"value"`
}

// actionValue is the value of an Action.Execute invoke or an Action.Submit.
type actionValue struct {
	Action struct {
		Verb string         `json:"verb"`
		Data map[string]any `json:"data"`
	} `json:"action"`
	ActionID string `json:"actionId"`
	Choice   string `json:"value"`
}

func (p *platform) serveActivity(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	v, handle := p.verifier, p.handle
	p.mu.Unlock()
	if v == nil || handle == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActivityBytes))
	if err != nil {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	var act inboundActivity
	if err := json.Unmarshal(body, &act); err != nil {
		// Authenticate first anyway, so an unauthenticated caller learns nothing.
		if v.check(r.Context(), r.Header.Get("Authorization"), "", "") != nil {
			p.unauthorized(w, r, err)
			return
		}
		http.Error(w, "activity is not JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := v.check(r.Context(), r.Header.Get("Authorization"), act.ServiceURL, act.ChannelID); err != nil {
		p.unauthorized(w, r, err)
		return
	}
	channel := act.ChannelData.Channel.ID
	if channel == "" {
		channel, _, _ = strings.Cut(act.Conversation.ID, ";messageid=")
	}
	tenant := act.ChannelData.Tenant.ID
	if tenant == "" {
		tenant = act.Conversation.TenantID
	}
	ref := reference{ServiceURL: act.ServiceURL, TenantID: tenant, TeamID: act.ChannelData.Team.ID, Name: act.ChannelData.Channel.Name,
		GroupID: act.ChannelData.Team.AADGroupID}
	switch act.Type {
	case "conversationUpdate":
		// Installed in a team: its General channel has the team's id.
		if act.ChannelData.Team.ID != "" {
			if ref.Name == "" && act.ChannelData.Team.ID == channel {
				ref.Name = "General"
			}
			p.remember(r.Context(), act.ChannelData.Team.ID, ref)
		}
		if channel != "" && channel != act.ChannelData.Team.ID {
			p.remember(r.Context(), channel, ref)
		}
		w.WriteHeader(http.StatusOK)
	case "message":
		p.remember(r.Context(), channel, ref)
		in := p.inbound(act, channel)
		if len(act.Value) > 0 && string(act.Value) != "null" { // Action.Submit
			var val actionValue
			if json.Unmarshal(act.Value, &val) == nil && val.ActionID != "" {
				in.ButtonID, in.Value, in.Text = val.ActionID, val.Choice, ""
			}
		}
		if in.Text != "" || in.ButtonID != "" {
			handle(in)
		}
		w.WriteHeader(http.StatusOK)
	case "invoke":
		if act.Name != "adaptiveCard/action" {
			w.WriteHeader(http.StatusOK)
			return
		}
		p.remember(r.Context(), channel, ref)
		var val actionValue
		if err := json.Unmarshal(act.Value, &val); err != nil || val.Action.Verb != actionVerb {
			invokeResponse(w, http.StatusBadRequest, "this action is not kubechat's")
			return
		}
		in := p.inbound(act, channel)
		in.Text = ""
		in.ButtonID, _ = val.Action.Data["actionId"].(string)
		in.Value, _ = val.Action.Data["value"].(string)
		if in.ButtonID == "" {
			invokeResponse(w, http.StatusBadRequest, "the action carries no action id")
			return
		}
		handle(in)
		invokeResponse(w, http.StatusOK, "Working on it…")
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (p *platform) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Warn("refused an unauthenticated Teams request", "remote", r.RemoteAddr, "err", err)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}

// invokeResponse answers an adaptiveCard/action invoke with a short message
// (https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/universal-actions-for-adaptive-cards/).
func invokeResponse(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(object{"statusCode": status, "type": "application/vnd.microsoft.activity.message", "value": text})
}

// atMention is the markup Teams puts around a mention in the text.
var atMention = regexp.MustCompile(`<at[^>]*>[^<]*</at>`)

// inbound turns an activity into what the command handler handles; a reply goes into the activity's thread.
func (p *platform) inbound(act inboundActivity, channel string) chat.Inbound {
	root := act.ID
	if _, id, ok := strings.Cut(act.Conversation.ID, ";messageid="); ok {
		root = id
	} else if act.ReplyToID != "" {
		root = act.ReplyToID
	}
	user := act.From.AADObjectID
	if user == "" {
		user = act.From.ID
	}
	text := atMention.ReplaceAllString(act.Text, "")
	text = strings.TrimSpace(html.UnescapeString(strings.ReplaceAll(text, "&nbsp;", " ")))
	name := ""
	if ref, ok := p.lookup(channel); ok {
		name = ref.Name
	}
	return chat.Inbound{
		Platform: p.name, Channel: chat.Channel{ID: channel, Name: name},
		UserID: user, UserName: act.From.Name, Text: text,
		Thread: chat.MessageRef{Platform: p.name, Channel: channel, ID: root, Thread: root},
	}
}
