// Package mattermost is the Mattermost platform, with the server's own Go
// client (model.Client4 and its websocket client): alerts as message
// attachments with interactive buttons and selects, edits with PatchPost,
// commands from mentions and direct messages over the websocket, replies
// in the thread, and long output uploaded as a file.
//
// Buttons are integration actions: Mattermost POSTs a click to kubechat's
// /hooks/<name>/actions (settings.actionsURL must be that URL as the
// Mattermost server reaches it) with the signed action id in the context.
// Mattermost does not sign these requests, so the action id is what
// authorises a click: it is HMAC-signed, bound to its channel, expiring and
// single-use, and the click is then re-authorised for the user named in
// the request, as if typed.
//
// The websocket client does not reconnect by itself: Listen does, with
// backoff, resuming with the connection id and last sequence number so
// that the server can replay what was missed.
package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost/server/public/model"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/health"
)

// Settings configure one Mattermost bot account.
type Settings struct {
	// URL is the Mattermost server, for example https://chat.example.com.
	URL string `yaml:"url"`
	// Token is the bot account's access token.
	Token *config.Secret `yaml:"token"`
	// Team is the team whose channels config names (channels may also be given by id).
	Team string `yaml:"team"`
	// ActionsURL is where Mattermost sends button clicks:
	// https://<kubechat host>/hooks/<platform name>/actions. Without it, messages have no buttons.
	ActionsURL string `yaml:"actionsURL"`
	// MaxConcurrentCommands bounds the commands handled at once (default 16).
	MaxConcurrentCommands int `yaml:"maxConcurrentCommands"`
}

type platform struct {
	name   string
	s      Settings
	client *model.Client4
	health *health.Tracker
	log    *slog.Logger

	mu       sync.Mutex
	channels map[string]string // name -> id
	teams    map[string]string // id -> name
	site     string            // the server's SiteURL, once read
	bot      *model.User
	handle   func(chat.Inbound) // set while Listen runs
}

// New builds a Mattermost platform from its settings block. It does not connect.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("mattermost %q: %w", name, err)
	}
	var errs []error
	errs = append(errs, config.CheckHTTPURL("settings.url", s.URL))
	if s.Token == nil || s.Token.IsZero() {
		errs = append(errs, errors.New("settings.token: is required (the bot account's access token)"))
	}
	if s.ActionsURL != "" {
		errs = append(errs, config.CheckHTTPURL("settings.actionsURL", s.ActionsURL))
	}
	if s.MaxConcurrentCommands < 0 {
		errs = append(errs, fmt.Errorf("settings.maxConcurrentCommands: must be positive, got %d", s.MaxConcurrentCommands))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mattermost %q: %w", name, err)
	}
	s.URL = strings.TrimSuffix(s.URL, "/")
	client := model.NewAPIv4Client(s.URL)
	client.SetToken(s.Token.Reveal())
	if d.HTTPClient != nil {
		client.HTTPClient = d.HTTPClient
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &platform{name: name, s: s, client: client, health: d.Health, log: log.With("platform", name), channels: map[string]string{}, teams: map[string]string{}}, nil
}

func (p *platform) Name() string { return p.name }

// Limits keep posts inside the default MaxPostSize; longer output is uploaded.
func (p *platform) Limits() chat.Limits { return limits }

// EditInterval paces streamed edits (PatchPost): the server's default rate
// limit is 10 requests a second per client, shared with every other post;
// one edit a second leaves room for the rest.
func (p *platform) EditInterval() time.Duration { return time.Second }

// mattermostID matches Mattermost's 26-character ids.
var mattermostID = regexp.MustCompile(`^[a-z0-9]{26}$`)

// resolve turns a configured channel (an id, or a name in settings.team) into its id.
func (p *platform) resolve(ctx context.Context, ch string) (string, error) {
	ch = strings.TrimPrefix(ch, "~")
	if mattermostID.MatchString(ch) {
		return ch, nil
	}
	p.mu.Lock()
	id, ok := p.channels[ch]
	p.mu.Unlock()
	if ok {
		return id, nil
	}
	if p.s.Team == "" {
		return "", chat.Permanent(fmt.Errorf("mattermost channel %q: give its id, or set settings.team to find it by name", ch))
	}
	c, resp, err := p.client.GetChannelByNameForTeamName(ctx, ch, p.s.Team, "")
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return "", chat.Permanent(fmt.Errorf("mattermost channel %q not found in team %q", ch, p.s.Team))
		}
		return "", classify("find channel "+ch, resp, err)
	}
	p.mu.Lock()
	p.channels[ch] = c.Id
	p.mu.Unlock()
	return c.Id, nil
}

// Post sends m as a message attachment: a new post, a reply in m.Thread,
// or a patch of m.Replace.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	id, err := p.resolve(ctx, to.ID)
	if err != nil {
		return chat.MessageRef{}, err
	}
	props := model.StringInterface{model.PostPropsAttachments: []*model.MessageAttachment{render(m, p.s.ActionsURL)}}
	if m.Replace != nil {
		empty := ""
		if _, resp, err := p.client.PatchPost(ctx, m.Replace.ID, &model.PostPatch{Message: &empty, Props: &props}); err != nil {
			return chat.MessageRef{}, classify("edit post in "+to.ID, resp, err)
		}
		ref := *m.Replace
		ref.Platform, ref.Channel = p.name, id
		return ref, nil
	}
	post := &model.Post{ChannelId: id}
	post.SetProps(props)
	ref := chat.MessageRef{Platform: p.name, Channel: id}
	if m.Thread != nil && m.Thread.ID != "" {
		post.RootId = m.Thread.Root()
		ref.Thread = post.RootId
	}
	created, resp, err := p.client.CreatePost(ctx, post)
	if err != nil {
		return chat.MessageRef{}, classify("post to "+to.ID, resp, err)
	}
	ref.ID = created.Id
	return ref, nil
}

// Permalink is Mattermost's link to a post, <site URL>/<team>/pl/<post id>:
// the site URL is the one the server reports (its SiteURL, else
// settings.url), the team the channel's; a direct message's channel has
// no team, and its posts link under settings.team, or have no link.
func (p *platform) Permalink(ctx context.Context, ref chat.MessageRef) (string, error) {
	id, err := p.resolve(ctx, ref.Channel)
	if err != nil {
		return "", err
	}
	site, err := p.siteURL(ctx)
	if err != nil {
		return "", err
	}
	c, resp, err := p.client.GetChannel(ctx, id)
	if err != nil {
		return "", classify("look up channel "+ref.Channel, resp, err)
	}
	team := p.s.Team
	if c.TeamId != "" {
		if team, err = p.teamName(ctx, c.TeamId); err != nil {
			return "", err
		}
	}
	if team == "" {
		return "", nil
	}
	return site + "/" + url.PathEscape(team) + "/pl/" + url.PathEscape(ref.ID), nil
}

// siteURL is the address people open the server at, read once.
func (p *platform) siteURL(ctx context.Context) (string, error) {
	p.mu.Lock()
	site := p.site
	p.mu.Unlock()
	if site != "" {
		return site, nil
	}
	cfg, resp, err := p.client.GetClientConfig(ctx, "")
	if err != nil {
		return "", classify("read the client config", resp, err)
	}
	site = strings.TrimSuffix(cfg["SiteURL"], "/")
	if site == "" {
		site = p.s.URL
	}
	p.mu.Lock()
	p.site = site
	p.mu.Unlock()
	return site, nil
}

// teamName is the name (URL slug) of the team with id, read once.
func (p *platform) teamName(ctx context.Context, id string) (string, error) {
	p.mu.Lock()
	name, ok := p.teams[id]
	p.mu.Unlock()
	if ok {
		return name, nil
	}
	t, resp, err := p.client.GetTeam(ctx, id, "")
	if err != nil {
		return "", classify("look up team "+id, resp, err)
	}
	p.mu.Lock()
	p.teams[id] = t.Name
	p.mu.Unlock()
	return t.Name, nil
}

// Upload attaches f to a post in thread.
func (p *platform) Upload(ctx context.Context, to chat.Channel, thread chat.MessageRef, f chat.File) error {
	id, err := p.resolve(ctx, to.ID)
	if err != nil {
		return err
	}
	up, resp, err := p.client.UploadFile(ctx, []byte(f.Content), id, f.Name)
	if err != nil {
		return classify("upload "+f.Name+" to "+to.ID, resp, err)
	}
	post := &model.Post{ChannelId: id, Message: f.Title}
	for _, info := range up.FileInfos {
		post.FileIds = append(post.FileIds, info.Id)
	}
	if thread.ID != "" {
		post.RootId = thread.Root()
	}
	_, resp, err = p.client.CreatePost(ctx, post)
	return classify("post "+f.Name+" to "+to.ID, resp, err)
}

// classify marks err for chat.Retry from the HTTP status: 429 with its
// Retry-After, 5xx and network errors retried, other statuses permanent.
func classify(op string, resp *model.Response, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("mattermost %s: %w", op, err)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	var appErr *model.AppError
	if status == 0 && errors.As(err, &appErr) {
		status = appErr.StatusCode
	}
	switch {
	case status == http.StatusTooManyRequests:
		after := time.Second
		if resp != nil {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				after = time.Duration(s) * time.Second
			}
		}
		return chat.RetryAfter(after, wrapped)
	case status == 0 || status >= 500:
		return wrapped
	default:
		return chat.Permanent(wrapped)
	}
}

// ListensOverConnection marks Listen as opening the websocket: with leader
// election only the leader listens.
func (p *platform) ListensOverConnection() {}

// Listen keeps a websocket to the server until ctx ends, reconnecting
// with backoff, and hands mentions and direct messages to h; clicks come
// through HTTPHandler while it runs.
func (p *platform) Listen(ctx context.Context, h chat.Handler) error {
	component := "platform/" + p.name
	d := chat.NewDispatcher(p, h, p.s.MaxConcurrentCommands, p.log)
	p.mu.Lock()
	p.handle = func(in chat.Inbound) { d.Dispatch(ctx, in) }
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.handle = nil
		p.mu.Unlock()
		d.Wait()
	}()
	wsURL := "ws" + strings.TrimPrefix(p.s.URL, "http")
	var connID string
	var seq int64
	delay := time.Second
	for ctx.Err() == nil {
		connected, err := p.session(ctx, d, wsURL, &connID, &seq)
		if ctx.Err() != nil {
			break
		}
		if connected {
			delay = time.Second // a working connection broke: come back quickly
		}
		p.health.SetHealthy(component, false, err.Error())
		p.log.Warn("mattermost websocket lost; reconnecting", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
	return nil
}

// session runs one websocket connection until it breaks or ctx ends; it
// reports whether the server greeted it.
func (p *platform) session(ctx context.Context, d *chat.Dispatcher, wsURL string, connID *string, seq *int64) (connected bool, err error) {
	me, resp, err := p.client.GetMe(ctx, "")
	if err != nil {
		return false, classify("get bot user", resp, err)
	}
	p.mu.Lock()
	p.bot = me
	p.mu.Unlock()
	dialer := &websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: http.ProxyFromEnvironment}
	var ws *model.WebSocketClient
	if *connID != "" {
		ws, err = model.NewReliableWebSocketClientWithDialer(dialer, wsURL, p.s.Token.Reveal(), *connID, int(*seq+1), true)
	} else {
		ws, err = model.NewWebSocketClient4WithDialer(dialer, wsURL, p.s.Token.Reveal())
	}
	if err != nil {
		return false, fmt.Errorf("connect websocket: %w", err)
	}
	ws.Listen()
	defer ws.Close()
	component := "platform/" + p.name
	for {
		select {
		case <-ctx.Done():
			return connected, ctx.Err()
		case <-ws.PingTimeoutChannel:
			return connected, errors.New("no ping from the server")
		case _, ok := <-ws.ResponseChannel:
			if !ok {
				return connected, listenError(ws)
			}
		case ev, ok := <-ws.EventChannel:
			if !ok {
				return connected, listenError(ws)
			}
			*seq = ev.GetSequence()
			switch ev.EventType() {
			case model.WebsocketEventHello:
				connected = true
				if id, ok := ev.GetData()["connection_id"].(string); ok {
					*connID = id
				}
				p.health.SetHealthy(component, true, "")
				p.log.Info("connected to mattermost", "bot_user", me.Username)
			case model.WebsocketEventPosted:
				if in, ok := p.posted(ev, me); ok {
					d.Dispatch(ctx, in)
				}
			}
		}
	}
}

func listenError(ws *model.WebSocketClient) error {
	if ws.ListenError != nil {
		return ws.ListenError
	}
	return errors.New("websocket closed")
}

// posted turns a post that mentions the bot, or any direct message, into a command.
func (p *platform) posted(ev *model.WebSocketEvent, me *model.User) (chat.Inbound, bool) {
	data := ev.GetData()
	raw, _ := data["post"].(string)
	var post model.Post
	if json.Unmarshal([]byte(raw), &post) != nil || post.UserId == me.Id || post.Type != "" {
		return chat.Inbound{}, false
	}
	channelType, _ := data["channel_type"].(string)
	var mentions []string
	if s, ok := data["mentions"].(string); ok {
		_ = json.Unmarshal([]byte(s), &mentions)
	}
	mentioned := false
	for _, id := range mentions {
		mentioned = mentioned || id == me.Id
	}
	if channelType != string(model.ChannelTypeDirect) && !mentioned {
		return chat.Inbound{}, false
	}
	text := strings.TrimSpace(strings.ReplaceAll(post.Message, "@"+me.Username, ""))
	if text == "" {
		return chat.Inbound{}, false
	}
	root := post.RootId
	if root == "" {
		root = post.Id
	}
	name, _ := data["channel_name"].(string)
	sender, _ := data["sender_name"].(string)
	return chat.Inbound{
		Platform: p.name, Channel: chat.Channel{ID: post.ChannelId, Name: name},
		UserID: post.UserId, UserName: strings.TrimPrefix(sender, "@"), Text: text,
		Thread: chat.MessageRef{Platform: p.name, Channel: post.ChannelId, ID: root, Thread: root},
	}, true
}

// HTTPHandler receives button clicks at /actions.
func (p *platform) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /actions", p.serveAction)
	return mux
}

// serveAction answers Mattermost at once and runs the click on the dispatcher.
func (p *platform) serveAction(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	handle := p.handle
	p.mu.Unlock()
	if handle == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	var req model.PostActionIntegrationRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "not an integration request: "+err.Error(), http.StatusBadRequest)
		return
	}
	actionID, _ := req.Context[actionContextKey].(string)
	if actionID == "" || req.UserId == "" || req.ChannelId == "" || req.PostId == "" {
		http.Error(w, "the request carries no action id, user, channel or post", http.StatusBadRequest)
		return
	}
	value, _ := req.Context["selected_option"].(string)
	// A click on a reply is answered in the reply's thread, which render
	// put in the context; a top-level message starts its own.
	root, _ := req.Context[rootContextKey].(string)
	if root == "" {
		root = req.PostId
	}
	handle(chat.Inbound{
		Platform: p.name, Channel: chat.Channel{ID: req.ChannelId, Name: req.ChannelName},
		UserID: req.UserId, UserName: req.UserName, ButtonID: actionID, Value: value,
		Thread: chat.MessageRef{Platform: p.name, Channel: req.ChannelId, ID: root, Thread: root},
	})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(model.PostActionIntegrationResponse{})
}
