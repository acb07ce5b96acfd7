// Package webchat is kubechat's built-in web chat: a single page served by
// the agent itself, which shows alerts live and takes commands typed as
// "@kubechat kubectl get pods" (the mention is optional), button clicks
// and select choices. It needs no chat service and works offline: the
// page, its style and its script are embedded, with no external fonts or
// CDNs.
//
// The app mounts it at /chat/<name>/ (HTTPPrefix):
//
//	GET  /chat/<name>/                 the page (a sign-in form when needed)
//	GET  /chat/<name>/static/...       its style and script
//	POST /chat/<name>/login            token sign-in form; POST /logout ends it
//	GET  /chat/<name>/api/session      who is signed in, the channels
//	GET  /chat/<name>/api/events       Server-Sent Events: every message and edit
//	GET  /chat/<name>/api/files/<id>   an uploaded file
//	POST /chat/<name>/api/messages     a typed command: {"channel","text","thread"}
//	POST /chat/<name>/api/actions      a click: {"channel","message","action","value"}
//
// Every channel keeps its last messages (settings.history) in memory, so a
// page opened later shows recent alerts, and a page whose stream was cut
// reconnects with the id of the last event it got (Last-Event-ID) and
// receives everything it missed. The history does not survive a restart
// of the agent.
//
// Sign-in (settings.auth) is a shared token, HTTP basic auth, or - only
// when chosen explicitly - none. A browser presents the token once, in the
// sign-in form or as ?token= (then redirected to a clean address), and
// gets an HttpOnly, SameSite=Strict session cookie signed with a key
// derived from the token. POSTs are refused when they come from another
// origin (Sec-Fetch-Site and Origin, http.CrossOriginProtection) and must
// be JSON. The page renders text with the DOM, never as HTML, under a
// strict Content-Security-Policy.
package webchat

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/health"
)

// limits let the page show long output inline, in collapsible blocks; past
// Upload characters of code, the whole output becomes a file to view or
// download, with a preview in the message.
var limits = chat.Limits{Block: 20000, Message: 60000, Upload: 60000}

type platform struct {
	name    string
	s       Settings
	cluster string
	auth    *authenticator
	hub     *hub
	health  *health.Tracker
	log     *slog.Logger

	mu     sync.Mutex
	handle func(chat.Inbound) // set while Listen runs
}

// New builds a web chat from its settings block. It does not listen: the
// app serves HTTPHandler on its own port.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("webchat %q: %w", name, err)
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("webchat %q: %w", name, err)
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &platform{
		name: name, s: s, cluster: d.Cluster,
		auth:   newAuthenticator(name, s),
		hub:    newHub(s.Channels, s.History),
		health: d.Health,
		log:    log.With("platform", name),
	}, nil
}

func (p *platform) Name() string { return p.name }

// Limits are the page's: see limits.
func (p *platform) Limits() chat.Limits { return limits }

// EditInterval paces streamed edits: the web chat is ours, with no limit
// but the browser's; four edits a second read as a steady stream.
func (p *platform) EditInterval() time.Duration { return 250 * time.Millisecond }

// HTTPPrefix is where the app mounts HTTPHandler: /chat/<name>.
func (p *platform) HTTPPrefix() string { return "/chat/" + p.name }

// channel checks that to is one of settings.channels.
func (p *platform) channel(to chat.Channel) (string, error) {
	if !p.hub.known(to.ID) {
		return "", chat.Permanent(fmt.Errorf("webchat %q: channel %q is not in settings.channels (%s)",
			p.name, to.ID, strings.Join(p.s.Channels, ", ")))
	}
	return to.ID, nil
}

// Post shows m in the channel's page: a new message, a reply in
// m.Thread, or an edit of m.Replace in place. It never waits on anyone.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	if err := ctx.Err(); err != nil {
		return chat.MessageRef{}, err
	}
	ch, err := p.channel(to)
	if err != nil {
		return chat.MessageRef{}, err
	}
	msg := wireMessage{Channel: ch, Kind: kindBot, Time: time.Now().UTC()}
	msg.fromMessage(m)
	if m.Thread != nil && m.Thread.ID != "" {
		msg.Thread = m.Thread.Root()
	}
	var stored wireMessage
	if m.Replace != nil && m.Replace.ID != "" {
		var ok bool
		stored, ok = p.hub.edit(ch, m.Replace.ID, func(w *wireMessage) { w.fromEdit(msg) })
		if !ok {
			// The history dropped it (or the agent restarted): show the
			// new content as a message of its own, under the same id.
			msg.ID = m.Replace.ID
			if msg.Thread == "" {
				msg.Thread = m.Replace.Thread
			}
			stored = p.hub.add(msg, "")
		}
	} else {
		stored = p.hub.add(msg, "")
	}
	return chat.MessageRef{Platform: p.name, Channel: ch, ID: stored.ID, Thread: stored.Thread}, nil
}

// Permalink is the address of the message on the page, settings.url with
// #<channel>/<message id>: the page opens that channel and shows the
// message, while its history holds it. Without settings.url there is none.
func (p *platform) Permalink(_ context.Context, ref chat.MessageRef) (string, error) {
	if p.s.URL == "" {
		return "", nil
	}
	ch, err := p.channel(chat.Channel{ID: ref.Channel})
	if err != nil {
		return "", err
	}
	base, _, _ := strings.Cut(p.s.URL, "#")
	return base + "#" + url.PathEscape(ch) + "/" + url.PathEscape(ref.ID), nil
}

// Upload keeps f as a file message in thread, to view or download.
func (p *platform) Upload(ctx context.Context, to chat.Channel, thread chat.MessageRef, f chat.File) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ch, err := p.channel(to)
	if err != nil {
		return err
	}
	msg := wireMessage{Channel: ch, Kind: kindFile, Time: time.Now().UTC(), Title: f.Title,
		File: &wireFile{Name: f.Name, Title: f.Title, Size: len(f.Content)}}
	if thread.ID != "" {
		msg.Thread = thread.Root()
	}
	p.hub.add(msg, f.Content)
	return nil
}

// Listen takes commands and clicks from the page until ctx ends. The page
// itself and its event stream are served whether Listen runs or not;
// when Listen returns, the live streams end (so that the agent's HTTP
// server can shut down) and no new one starts until Listen runs again.
func (p *platform) Listen(ctx context.Context, h chat.Handler) error {
	component := "platform/" + p.name
	d := chat.NewDispatcher(p, h, p.s.MaxConcurrentCommands, p.log)
	if p.s.Auth == authNone {
		p.log.Warn("web chat without sign-in (settings.auth: none): anyone who reaches the agent's port can read the channels and run their commands with the channels' Kubernetes identities",
			"path", p.HTTPPrefix()+"/")
	}
	p.log.Info("web chat listening", "path", p.HTTPPrefix()+"/", "auth", p.s.Auth, "channels", strings.Join(p.s.Channels, ","))
	p.health.SetHealthy(component, true, "")
	p.hub.setStopped(false)
	p.mu.Lock()
	p.handle = func(in chat.Inbound) { d.Dispatch(ctx, in) }
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.handle = nil
	p.mu.Unlock()
	p.hub.setStopped(true)
	d.Wait()
	p.health.SetHealthy(component, false, "web chat stopped")
	return nil
}

// ready reports whether Listen takes commands.
func (p *platform) ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handle != nil
}
