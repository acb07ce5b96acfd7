// Package discord is the Discord platform, with github.com/bwmarrin/discordgo:
// alerts as embeds with button and select components, commands from
// mentions and direct messages over the gateway (with the message content
// intent), and component interactions acknowledged at once and answered
// as replies. discordgo reconnects and resumes the gateway by itself.
//
// The bot needs the Message Content intent enabled in the developer
// portal, and View Channels, Send Messages, Embed Links, Attach Files and
// Read Message History in the channels it serves: docs/discord.md has the
// invite URL with that permissions integer, which setup_test.go
// derives from what this package calls.
package discord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/discord/endpoint"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/health"
)

// Intents are the gateway intents the agent identifies with: Guilds (the
// servers and channels that resolve finds names in), GuildMessages and
// DirectMessages (commands), and MessageContent, the one privileged intent,
// which must be switched on in the developer portal, or Discord refuses the
// connection. docs/discord.md lists them; setup_test.go checks the list.
const Intents = discordgo.IntentGuilds | discordgo.IntentGuildMessages |
	discordgo.IntentDirectMessages | discordgo.IntentMessageContent

// Settings configure one Discord bot.
type Settings struct {
	// BotToken is the bot's token from the developer portal.
	BotToken *config.Secret `yaml:"botToken"`
	// APIURL replaces https://discord.com (a proxy or a test server). It
	// applies to the whole process: one Discord server per agent.
	APIURL string `yaml:"apiURL"`
	// MaxConcurrentCommands bounds the commands handled at once (default 16).
	MaxConcurrentCommands int `yaml:"maxConcurrentCommands"`
}

type platform struct {
	name    string
	s       Settings
	session *discordgo.Session
	health  *health.Tracker
	log     *slog.Logger
}

// New builds a Discord platform from its settings block. It does not connect.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("discord %q: %w", name, err)
	}
	if s.BotToken == nil || s.BotToken.IsZero() {
		return nil, fmt.Errorf("discord %q: settings.botToken: is required", name)
	}
	if s.MaxConcurrentCommands < 0 {
		return nil, fmt.Errorf("discord %q: settings.maxConcurrentCommands: must be positive, got %d", name, s.MaxConcurrentCommands)
	}
	if s.APIURL != "" {
		if err := config.CheckHTTPURL("settings.apiURL", s.APIURL); err != nil {
			return nil, fmt.Errorf("discord %q: %w", name, err)
		}
	}
	if s.APIURL != "" {
		endpoint.Point(strings.TrimSuffix(s.APIURL, "/"))
	}
	token := s.BotToken.Reveal()
	if !strings.HasPrefix(token, "Bot ") {
		token = "Bot " + token
	}
	session, err := discordgo.New(token)
	if err != nil {
		return nil, fmt.Errorf("discord %q: %w", name, err)
	}
	if d.HTTPClient != nil {
		session.Client = d.HTTPClient
	}
	// 429s go back to our queue, which honours Retry-After without
	// holding discordgo's bucket lock.
	session.ShouldRetryOnRateLimit = false
	session.MaxRestRetries = 0 // 502s too: our queue retries, in order, within the deadline
	// Listen reconnects, and stops when its context ends. discordgo's own
	// reconnect loop has no way to stop: a heartbeat that fails while Close
	// runs would start it after Listen returned, and it would dial forever.
	session.ShouldReconnectOnError = false
	session.Identify.Intents = Intents
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &platform{name: name, s: s, session: session, health: d.Health, log: log.With("platform", name)}, nil
}

func (p *platform) Name() string { return p.name }

// Limits are one embed's: longer output is uploaded as a file.
func (p *platform) Limits() chat.Limits { return limits }

// EditInterval paces streamed edits: Discord's message edit bucket allows
// 5 edits per 5 seconds per channel
// (https://discord.com/developers/docs/topics/rate-limits).
func (p *platform) EditInterval() time.Duration { return time.Second }

// snowflake matches Discord ids.
var snowflake = regexp.MustCompile(`^[0-9]{5,20}$`)

// resolve turns a configured channel (an id, or a name in a guild the bot
// is in) into its id.
func (p *platform) resolve(ch string) (string, error) {
	ch = strings.TrimPrefix(ch, "#")
	if snowflake.MatchString(ch) {
		return ch, nil
	}
	for _, g := range p.session.State.Guilds {
		for _, c := range g.Channels {
			if c.Name == ch {
				return c.ID, nil
			}
		}
	}
	return "", chat.Permanent(fmt.Errorf("discord channel %q not found: use its id, or check the bot is in its server", ch))
}

// Post sends m as an embed with components: a new message, a reply to
// m.Thread, or an edit of m.Replace.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	id, err := p.resolve(to.ID)
	if err != nil {
		return chat.MessageRef{}, err
	}
	embeds, components := render(m)
	if m.Replace != nil {
		ch := m.Replace.Channel
		if !snowflake.MatchString(ch) {
			ch = id
		}
		_, err := p.session.ChannelMessageEditComplex(&discordgo.MessageEdit{ID: m.Replace.ID, Channel: ch, Embeds: &embeds, Components: &components},
			discordgo.WithContext(ctx))
		if err != nil {
			return chat.MessageRef{}, classify("edit message in "+to.ID, err)
		}
		ref := *m.Replace
		ref.Platform, ref.Channel = p.name, ch
		return ref, nil
	}
	send := &discordgo.MessageSend{Embeds: embeds, Components: components, AllowedMentions: &discordgo.MessageAllowedMentions{}}
	ref := chat.MessageRef{Platform: p.name, Channel: id}
	if m.Thread != nil && m.Thread.ID != "" {
		root := m.Thread.Root()
		send.Reference = &discordgo.MessageReference{MessageID: root, ChannelID: id}
		ref.Thread = root
	}
	msg, err := p.session.ChannelMessageSendComplex(id, send, discordgo.WithContext(ctx))
	if err != nil {
		return chat.MessageRef{}, classify("post message to "+to.ID, err)
	}
	ref.ID = msg.ID
	return ref, nil
}

// Permalink is Discord's message link,
// https://discord.com/channels/<guild>/<channel>/<message> (@me for the
// guild of a direct message): the guild is the channel's, from the
// gateway's state or, before it has it, from GET /channels/<id>.
func (p *platform) Permalink(ctx context.Context, ref chat.MessageRef) (string, error) {
	id, err := p.resolve(ref.Channel)
	if err != nil {
		return "", err
	}
	c, err := p.session.State.Channel(id)
	if err != nil {
		if c, err = p.session.Channel(id, discordgo.WithContext(ctx)); err != nil {
			return "", classify("look up channel "+ref.Channel, err)
		}
	}
	guild := c.GuildID
	if guild == "" {
		guild = "@me"
	}
	return "https://discord.com/channels/" + guild + "/" + id + "/" + ref.ID, nil
}

// Upload attaches f as a reply to thread.
func (p *platform) Upload(ctx context.Context, to chat.Channel, thread chat.MessageRef, f chat.File) error {
	id, err := p.resolve(to.ID)
	if err != nil {
		return err
	}
	send := &discordgo.MessageSend{
		Content:         f.Title,
		Files:           []*discordgo.File{{Name: f.Name, ContentType: "text/plain", Reader: bytes.NewReader([]byte(f.Content))}},
		AllowedMentions: &discordgo.MessageAllowedMentions{},
	}
	if thread.ID != "" {
		send.Reference = &discordgo.MessageReference{MessageID: thread.Root(), ChannelID: id}
	}
	_, err = p.session.ChannelMessageSendComplex(id, send, discordgo.WithContext(ctx))
	return classify("upload "+f.Name+" to "+to.ID, err)
}

// classify marks err for chat.Retry: rate limits with their delay, 5xx
// and network errors retried, other statuses permanent.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("discord %s: %w", op, err)
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) && rl.RateLimit != nil && rl.TooManyRequests != nil {
		return chat.RetryAfter(max(rl.RetryAfter, time.Second/10), wrapped)
	}
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil {
		switch code := re.Response.StatusCode; {
		case code == http.StatusTooManyRequests:
			return chat.RetryAfter(time.Second, wrapped)
		case code >= 500:
			return wrapped
		default:
			return chat.Permanent(wrapped)
		}
	}
	if errors.Is(err, discordgo.ErrUnauthorized) {
		return chat.Permanent(wrapped)
	}
	return wrapped
}

// ListensOverConnection marks Listen as opening the gateway: with leader
// election only the leader listens.
func (p *platform) ListensOverConnection() {}

// Listen opens the gateway and hands mentions, direct messages and
// component clicks to h until ctx ends. When the connection drops it opens
// it again (discordgo resumes the session where it can), until ctx ends;
// the platform's health follows the connection.
func (p *platform) Listen(ctx context.Context, h chat.Handler) error {
	component := "platform/" + p.name
	d := chat.NewDispatcher(p, h, p.s.MaxConcurrentCommands, p.log)
	dispatch := func(in chat.Inbound) { d.Dispatch(ctx, in) }
	dropped := make(chan struct{}, 1)
	removers := []func(){
		p.session.AddHandler(func(_ *discordgo.Session, _ *discordgo.Connect) { p.health.SetHealthy(component, true, "") }),
		p.session.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) {
			p.health.SetHealthy(component, false, "gateway disconnected")
			p.log.Warn("discord gateway disconnected; reconnecting")
			select {
			case dropped <- struct{}{}:
			default:
			}
		}),
		p.session.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
			p.health.SetHealthy(component, true, "")
			p.log.Info("connected to discord", "bot_user", r.User.ID)
		}),
		p.session.AddHandler(func(s *discordgo.Session, m *discordgo.MessageCreate) {
			if in, ok := p.message(s, m.Message); ok {
				dispatch(in)
			}
		}),
		p.session.AddHandler(func(s *discordgo.Session, i *discordgo.InteractionCreate) {
			if in, ok := p.interaction(s, i.Interaction); ok {
				dispatch(in)
			}
		}),
	}
connected:
	for p.open(ctx, component) {
		select {
		case <-dropped: // open it again
		case <-ctx.Done():
			break connected
		}
	}
	for _, remove := range removers {
		remove()
	}
	err := p.session.Close()
	d.Wait()
	if err != nil {
		p.log.Warn("closing the discord gateway", "err", err)
	}
	return nil
}

// open opens the gateway, retrying with a growing delay, and reports
// whether it is open; false means ctx ended first. A gateway already open
// counts as open.
func (p *platform) open(ctx context.Context, component string) bool {
	delay := time.Second
	for {
		err := p.session.Open()
		if err == nil || errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			return true
		}
		p.health.SetHealthy(component, false, err.Error())
		p.log.Error("cannot open the discord gateway; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Minute)
	}
}

// message turns a mention in a server channel, or any direct message, into a command.
func (p *platform) message(s *discordgo.Session, m *discordgo.Message) (chat.Inbound, bool) {
	if m.Author == nil || m.Author.Bot || s.State.User == nil {
		return chat.Inbound{}, false
	}
	bot := s.State.User.ID
	mentioned := false
	for _, u := range m.Mentions {
		mentioned = mentioned || u.ID == bot
	}
	if m.GuildID != "" && !mentioned {
		return chat.Inbound{}, false // not addressed to the bot
	}
	text := strings.NewReplacer("<@"+bot+">", "", "<@!"+bot+">", "").Replace(m.Content)
	text = strings.TrimSpace(text)
	if text == "" {
		return chat.Inbound{}, false
	}
	return chat.Inbound{
		Platform: p.name, Channel: p.channel(s, m.ChannelID), UserID: m.Author.ID, UserName: m.Author.Username,
		Text:   text,
		Thread: chat.MessageRef{Platform: p.name, Channel: m.ChannelID, ID: m.ID, Thread: m.ID},
	}, true
}

// interaction acknowledges a component click at once (Discord allows 3 s)
// and turns it into a click for the command handler; the answer comes as a reply.
func (p *platform) interaction(s *discordgo.Session, i *discordgo.Interaction) (chat.Inbound, bool) {
	if i.Type != discordgo.InteractionMessageComponent {
		return chat.Inbound{}, false
	}
	if err := s.InteractionRespond(i, &discordgo.InteractionResponse{Type: discordgo.InteractionResponseDeferredMessageUpdate}); err != nil {
		p.log.Warn("cannot acknowledge a discord interaction", "err", err)
	}
	data := i.MessageComponentData()
	user := i.User
	if i.Member != nil && i.Member.User != nil {
		user = i.Member.User
	}
	if user == nil {
		return chat.Inbound{}, false
	}
	in := chat.Inbound{
		Platform: p.name, Channel: p.channel(s, i.ChannelID), UserID: user.ID, UserName: user.Username,
		ButtonID: data.CustomID,
	}
	if len(data.Values) > 0 {
		in.Value = data.Values[0]
	}
	if i.Message != nil {
		root := i.Message.ID
		if i.Message.MessageReference != nil && i.Message.MessageReference.MessageID != "" {
			root = i.Message.MessageReference.MessageID
		}
		in.Thread = chat.MessageRef{Platform: p.name, Channel: i.ChannelID, ID: root, Thread: root}
	} else {
		in.Thread = chat.MessageRef{Platform: p.name, Channel: i.ChannelID}
	}
	return in, true
}

// channel names a channel id with its name when the gateway state knows it.
func (p *platform) channel(s *discordgo.Session, id string) chat.Channel {
	if c, err := s.State.Channel(id); err == nil && c != nil {
		return chat.Channel{ID: id, Name: c.Name}
	}
	return chat.Channel{ID: id}
}
