// Package slack is the Slack platform: alerts and replies as Block Kit
// messages through the Web API, and commands and button clicks received
// over Socket Mode, which needs only egress (no public endpoint). It uses
// github.com/slack-go/slack unchanged.
//
// The Slack app is configs/slack/app-manifest.yaml: Socket Mode and
// interactivity on, the app_mention and message.im events, and the bot
// scopes the calls below need, which manifest_test.go checks against the
// methods this package sends; the app-level token has connections:write.
// When the agents of several clusters share a workspace, each has its own
// app (Socket Mode hands each event to one connection of an app, so agents
// cannot share one), from configs/slack/app-manifest-multicluster.yaml: with
// peerBots set, an app also subscribes to message.channels and
// message.groups (channels:history, groups:history) to overhear commands
// addressed to its peers' bots.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/health"
)

// Settings configure one Slack app.
type Settings struct {
	// BotToken (xoxb-...) posts, edits and uploads.
	BotToken *config.Secret `yaml:"botToken"`
	// AppToken (xapp-...) opens the Socket Mode connection.
	AppToken *config.Secret `yaml:"appToken"`
	// APIURL replaces https://slack.com/api/ (a proxy, or a test server).
	APIURL string `yaml:"apiURL"`
	// MaxConcurrentCommands bounds the commands handled at once (default 16).
	MaxConcurrentCommands int `yaml:"maxConcurrentCommands"`
	// PeerBots are the bot user ids (U...) of the kubechat apps of other
	// clusters that share this workspace. A channel message that starts by
	// mentioning one of them is heard here too (it needs the
	// message.channels and message.groups events), and answered when
	// --cluster or the channel's default cluster names this cluster.
	PeerBots []string `yaml:"peerBots"`
}

type platform struct {
	name   string
	api    *slack.Client
	s      Settings
	log    *slog.Logger
	health *health.Tracker

	mu      sync.Mutex
	byName  map[string]string // channel name -> id
	names   map[string]string // channel id -> name
	botUser string
}

// New builds a Slack platform from its settings block. It does not connect.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("slack %q: %w", name, err)
	}
	var errs []error
	if s.BotToken == nil || s.BotToken.IsZero() {
		errs = append(errs, errors.New("settings.botToken: is required (a bot token, xoxb-...)"))
	} else if !strings.HasPrefix(s.BotToken.Reveal(), "xoxb-") {
		errs = append(errs, fmt.Errorf("settings.botToken: from %s is not a bot token (want xoxb-...)", s.BotToken.Source()))
	}
	if s.AppToken == nil || s.AppToken.IsZero() {
		errs = append(errs, errors.New("settings.appToken: is required for Socket Mode (an app-level token, xapp-...)"))
	} else if !strings.HasPrefix(s.AppToken.Reveal(), "xapp-") {
		errs = append(errs, fmt.Errorf("settings.appToken: from %s is not an app-level token (want xapp-...)", s.AppToken.Source()))
	}
	if s.APIURL != "" {
		errs = append(errs, config.CheckHTTPURL("settings.apiURL", s.APIURL))
	}
	for i, id := range s.PeerBots {
		if !userID.MatchString(id) {
			errs = append(errs, fmt.Errorf("settings.peerBots[%d]: %q is not a Slack user id (U...; the bot user of the other cluster's app)", i, id))
		}
	}
	if s.MaxConcurrentCommands < 0 {
		errs = append(errs, fmt.Errorf("settings.maxConcurrentCommands: must be positive, got %d", s.MaxConcurrentCommands))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("slack %q: %w", name, err)
	}
	opts := []slack.Option{slack.OptionAppLevelToken(s.AppToken.Reveal())}
	if s.APIURL != "" {
		u := s.APIURL
		if !strings.HasSuffix(u, "/") {
			u += "/"
		}
		opts = append(opts, slack.OptionAPIURL(u))
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: chat.PostTimeout}
	}
	opts = append(opts, slack.OptionHTTPClient(client))
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &platform{
		name: name, api: slack.New(s.BotToken.Reveal(), opts...), s: s,
		log: log.With("platform", name), health: d.Health,
		byName: map[string]string{}, names: map[string]string{},
	}, nil
}

func (p *platform) Name() string { return p.name }

// Limits are Block Kit's: 3000 characters a section; longer output is uploaded.
func (p *platform) Limits() chat.Limits { return limits }

// EditInterval paces streamed edits (chat.update): Slack allows about one
// message update a second per channel over a sustained run
// (https://api.slack.com/apis/rate-limits).
func (p *platform) EditInterval() time.Duration { return time.Second }

// userID matches Slack's user ids.
var userID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// channelID matches Slack's channel ids: public C..., private G..., direct D....
var channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{6,}$`)

// resolve turns a configured channel (an id, or a name with or without #) into its id.
func (p *platform) resolve(ctx context.Context, ch string) (string, error) {
	ch = strings.TrimPrefix(ch, "#")
	if channelID.MatchString(ch) {
		return ch, nil
	}
	p.mu.Lock()
	id, ok := p.byName[ch]
	p.mu.Unlock()
	if ok {
		return id, nil
	}
	if err := p.loadChannels(ctx); err != nil {
		return "", err
	}
	p.mu.Lock()
	id, ok = p.byName[ch]
	p.mu.Unlock()
	if !ok {
		return "", chat.Permanent(fmt.Errorf("slack channel %q not found: check the name, and invite the bot to private channels", ch))
	}
	return id, nil
}

// loadChannels reads every channel the bot can see (conversations.list, paged).
func (p *platform) loadChannels(ctx context.Context) error {
	params := &slack.GetConversationsParameters{Types: []string{"public_channel", "private_channel"}, Limit: 1000, ExcludeArchived: true}
	byName, names := map[string]string{}, map[string]string{}
	for {
		chans, cursor, err := p.api.GetConversationsContext(ctx, params)
		if err != nil {
			return classify("list channels", err)
		}
		for _, c := range chans {
			byName[c.Name] = c.ID
			names[c.ID] = c.Name
		}
		if cursor == "" {
			break
		}
		params.Cursor = cursor
	}
	p.mu.Lock()
	p.byName, p.names = byName, names
	p.mu.Unlock()
	return nil
}

// Post sends m, or edits m.Replace in place.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	id, err := p.resolve(ctx, to.ID)
	if err != nil {
		return chat.MessageRef{}, err
	}
	blocks, text := render(m)
	opts := []slack.MsgOption{slack.MsgOptionBlocks(blocks...), slack.MsgOptionText(text, false)}
	if m.Replace != nil {
		ch := m.Replace.Channel
		if !channelID.MatchString(ch) {
			ch = id
		}
		if _, _, _, err := p.api.UpdateMessageContext(ctx, ch, m.Replace.ID, opts...); err != nil {
			return chat.MessageRef{}, classify("update message in "+to.ID, err)
		}
		ref := *m.Replace
		ref.Platform, ref.Channel = p.name, ch
		return ref, nil
	}
	ref := chat.MessageRef{Platform: p.name, Channel: id}
	if m.Thread != nil && m.Thread.ID != "" {
		ref.Thread = m.Thread.Root()
		opts = append(opts, slack.MsgOptionTS(ref.Thread))
	}
	_, ts, err := p.api.PostMessageContext(ctx, id, opts...)
	if err != nil {
		return chat.MessageRef{}, classify("post message to "+to.ID, err)
	}
	ref.ID = ts
	return ref, nil
}

// Permalink asks Slack for the message's address (chat.getPermalink); a
// reply's address opens it in its thread.
func (p *platform) Permalink(ctx context.Context, ref chat.MessageRef) (string, error) {
	id, err := p.resolve(ctx, ref.Channel)
	if err != nil {
		return "", err
	}
	link, err := p.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: id, Ts: ref.ID})
	if err != nil {
		return "", classify("permalink of "+ref.ID+" in "+ref.Channel, err)
	}
	return link, nil
}

// Upload attaches f to thread with Slack's external upload flow.
func (p *platform) Upload(ctx context.Context, to chat.Channel, thread chat.MessageRef, f chat.File) error {
	id, err := p.resolve(ctx, to.ID)
	if err != nil {
		return err
	}
	_, err = p.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Channel: id, ThreadTimestamp: thread.Root(), Filename: f.Name, Title: f.Title,
		Content: f.Content, FileSize: len(f.Content), SnippetType: "text",
	})
	return classify("upload "+f.Name+" to "+to.ID, err)
}

// transient are Slack error codes worth retrying
// (https://api.slack.com/methods/chat.postMessage#errors).
var transient = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true,
	"request_timeout": true, "ratelimited": true, "rate_limited": true,
}

// classify marks err for chat.Retry: 429s with their Retry-After, 5xx,
// network errors and Slack's transient codes are retried; other HTTP
// statuses and API errors (channel_not_found, invalid_auth, ...) are
// permanent. slack-go keeps tokens out of its errors.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("slack %s: %w", op, err)
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return chat.RetryAfter(rl.RetryAfter, err)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		switch {
		case sc.Code == http.StatusTooManyRequests:
			return chat.RetryAfter(time.Second, err)
		case sc.Code >= 500:
			return err
		default:
			return chat.Permanent(err)
		}
	}
	var api slack.SlackErrorResponse
	if errors.As(err, &api) {
		if transient[api.Err] {
			return err
		}
		return chat.Permanent(err)
	}
	return err // network errors, timeouts: retry
}

// ListensOverConnection marks Listen as opening Socket Mode: with leader
// election only the leader listens.
func (p *platform) ListensOverConnection() {}

// Listen keeps a Socket Mode connection up until ctx ends, reconnecting on
// its own, and hands mentions, direct messages and button clicks to h.
// The platform's health turns bad while it is disconnected; /healthz fails
// once that lasts longer than http.unhealthyAfter (2 min by default).
func (p *platform) Listen(ctx context.Context, h chat.Handler) error {
	component := "platform/" + p.name
	d := chat.NewDispatcher(p, h, p.s.MaxConcurrentCommands, p.log)
	defer d.Wait()
	delay := time.Second
	for ctx.Err() == nil {
		err := p.connect(ctx, d)
		if ctx.Err() != nil {
			break
		}
		p.health.SetHealthy(component, false, err.Error())
		p.log.Error("slack connection failed; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Minute)
	}
	return nil
}

// connect runs one socketmode client until it gives up or ctx ends.
func (p *platform) connect(ctx context.Context, d *chat.Dispatcher) error {
	component := "platform/" + p.name
	auth, err := p.api.AuthTestContext(ctx)
	if err != nil {
		return classify("auth.test", err)
	}
	p.mu.Lock()
	p.botUser = auth.UserID
	p.mu.Unlock()
	if err := p.loadChannels(ctx); err != nil {
		p.log.Warn("cannot list channels; commands will show channel ids", "err", err)
	}
	sm := socketmode.New(p.api, socketmode.OptionLog(slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- sm.RunContext(cctx) }()
	for {
		select {
		case <-ctx.Done():
			cancel()
			<-runErr
			return ctx.Err()
		case err := <-runErr:
			if err == nil {
				err = errors.New("socket mode client stopped")
			}
			return classify("socket mode", err)
		case evt := <-sm.Events:
			switch evt.Type {
			case socketmode.EventTypeConnecting:
				p.log.Debug("connecting to slack")
			case socketmode.EventTypeConnectionError, socketmode.EventTypeDisconnect:
				p.health.SetHealthy(component, false, "socket mode disconnected")
				p.log.Warn("slack socket mode disconnected; reconnecting", "event", string(evt.Type))
			case socketmode.EventTypeInvalidAuth:
				p.health.SetHealthy(component, false, "invalid app token")
			case socketmode.EventTypeConnected:
				p.health.SetHealthy(component, true, "")
				p.log.Info("connected to slack", "bot_user", auth.UserID)
			case socketmode.EventTypeEventsAPI, socketmode.EventTypeInteractive:
				if evt.Request != nil {
					if err := sm.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
						p.log.Warn("cannot ack slack envelope", "err", err)
					}
				}
				for _, in := range p.inbound(evt) {
					d.Dispatch(ctx, in)
				}
			}
		}
	}
}

// mention matches the bot mention Slack puts in the text: <@U123> or <@U123|name>.
var mention = regexp.MustCompile(`<@([A-Z0-9]+)(\|[^>]*)?>`)

// inbound turns a Socket Mode event into what the command handler handles.
func (p *platform) inbound(evt socketmode.Event) []chat.Inbound {
	p.mu.Lock()
	bot := p.botUser
	p.mu.Unlock()
	switch data := evt.Data.(type) {
	case slackevents.EventsAPIEvent:
		switch e := data.InnerEvent.Data.(type) {
		case *slackevents.AppMentionEvent:
			if e.BotID != "" || e.User == bot {
				return nil
			}
			return []chat.Inbound{p.command(e.Channel, e.User, e.Text, e.TimeStamp, e.ThreadTimeStamp, bot)}
		case *slackevents.MessageEvent:
			if e.BotID != "" || e.SubType != "" || e.User == bot {
				return nil
			}
			if e.ChannelType == "im" {
				return []chat.Inbound{p.command(e.Channel, e.User, e.Text, e.TimeStamp, e.ThreadTimeStamp, bot)}
			}
			// In channels, mentions of this bot arrive as app_mention; a
			// message to a peer cluster's bot is overheard, for --cluster.
			peer := p.peerMention(e.Text)
			if peer == "" || strings.Contains(e.Text, "<@"+bot+">") || strings.Contains(e.Text, "<@"+bot+"|") {
				return nil
			}
			in := p.command(e.Channel, e.User, e.Text, e.TimeStamp, e.ThreadTimeStamp, peer)
			in.Overheard = true
			return []chat.Inbound{in}
		}
	case slack.InteractionCallback:
		if data.Type != slack.InteractionTypeBlockActions {
			return nil
		}
		ch := data.Channel.ID
		if ch == "" {
			ch = data.Container.ChannelID
		}
		root := data.Container.MessageTs
		if data.Container.ThreadTs != "" {
			root = data.Container.ThreadTs
		} else if data.Message.ThreadTimestamp != "" {
			root = data.Message.ThreadTimestamp
		}
		var out []chat.Inbound
		for _, a := range data.ActionCallback.BlockActions {
			if strings.HasPrefix(a.ActionID, "link:") {
				continue // a URL button: the browser opened it
			}
			in := chat.Inbound{
				Platform: p.name, Channel: p.channel(ch), UserID: data.User.ID, UserName: data.User.Name,
				ButtonID: a.ActionID, Value: a.Value,
				Thread: chat.MessageRef{Platform: p.name, Channel: ch, ID: root, Thread: root},
			}
			if a.SelectedOption.Value != "" {
				in.Value = a.SelectedOption.Value
			}
			out = append(out, in)
		}
		return out
	}
	return nil
}

// peerMention returns the peer bot a message starts by mentioning, or "".
func (p *platform) peerMention(text string) string {
	m := mention.FindStringSubmatchIndex(strings.TrimSpace(text))
	if m == nil || m[0] != 0 {
		return ""
	}
	id := strings.TrimSpace(text)[m[2]:m[3]]
	if slices.Contains(p.s.PeerBots, id) {
		return id
	}
	return ""
}

func (p *platform) command(ch, user, text, ts, threadTS, bot string) chat.Inbound {
	root := ts
	if threadTS != "" {
		root = threadTS
	}
	text = mention.ReplaceAllStringFunc(text, func(m string) string {
		if mention.FindStringSubmatch(m)[1] == bot {
			return ""
		}
		return m
	})
	return chat.Inbound{
		Platform: p.name, Channel: p.channel(ch), UserID: user,
		Text:   strings.TrimSpace(unescape(text)),
		Thread: chat.MessageRef{Platform: p.name, Channel: ch, ID: root, Thread: root},
	}
}

// channel names a channel id with its name, when known, so the command handler can
// match a channel configured by name.
func (p *platform) channel(id string) chat.Channel {
	p.mu.Lock()
	defer p.mu.Unlock()
	return chat.Channel{ID: id, Name: p.names[id]}
}
