// Package agent is the agent's side of a fleet: the chat platform of type
// "hub". An agent configured with it holds no chat credentials: it
// publishes its messages to its cluster's JetStream stream, which the hub
// delivers, and answers the commands the hub sends it, running policy,
// identity and executors as it does for any platform.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kubechat/kubechat/internal/buildinfo"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
)

// Settings configure the hub platform.
type Settings struct {
	// NATS is how the agent reaches the fleet's NATS.
	NATS config.NATS `yaml:"nats"`
	// Platform is the hub's platform instance this one stands for
	// (default: this platform's own name).
	Platform string `yaml:"platform"`
	// ConcurrentCommands bounds the commands run at once (default 16).
	ConcurrentCommands int `yaml:"concurrentCommands" jsonschema:"minimum=0"`
}

type platform struct {
	name, hubPlatform, cluster string
	nats                       config.NATS
	limit                      int
	log                        *slog.Logger

	mu sync.Mutex
	nc *nats.Conn
	js jetstream.JetStream
}

// New builds a hub platform. It does not connect.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("hub platform %q: %w", name, err)
	}
	if d.Cluster == "" {
		return nil, fmt.Errorf("hub platform %q: cluster.name is required: it names this agent's subjects", name)
	}
	if s.NATS.URL == "" {
		return nil, fmt.Errorf("hub platform %q: settings.nats.url is required", name)
	}
	if s.Platform == "" {
		s.Platform = name
	}
	if s.NATS.NKeySeedFile != "" && s.NATS.CredentialsFile != "" {
		return nil, fmt.Errorf("hub platform %q: settings.nats: set nkeySeedFile or credentialsFile, not both", name)
	}
	if t := s.NATS.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		return nil, fmt.Errorf("hub platform %q: settings.nats.tls: certFile and keyFile go together", name)
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limit := s.ConcurrentCommands
	if limit <= 0 {
		limit = chat.DefaultConcurrentCommands
	}
	return &platform{name: name, hubPlatform: s.Platform, cluster: d.Cluster, nats: s.NATS, limit: limit, log: log.With("platform", name)}, nil
}

func (p *platform) Name() string { return p.name }

// ListensOverConnection: only the leader takes commands, as on any
// platform that dials out.
func (p *platform) ListensOverConnection() {}

// conn connects on first use; the connection retries for ever, so a
// NATS outage delays messages and loses none.
func (p *platform) conn() (*nats.Conn, jetstream.JetStream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nc != nil && !p.nc.IsClosed() {
		return p.nc, p.js, nil
	}
	// The seed or credentials file is read here, not in New, which
	// touches nothing (check-config runs New).
	opts, err := fleet.Options(p.nats, "kubechat agent "+p.cluster, fleet.AgentInbox(p.cluster))
	if err != nil {
		return nil, nil, fmt.Errorf("settings.%w", err)
	}
	opts = append(opts,
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { p.log.Warn("disconnected from NATS", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { p.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { p.log.Warn("NATS error", "err", err) }),
	)
	nc, err := nats.Connect(p.nats.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	p.nc, p.js = nc, js
	return nc, js, nil
}

// Post publishes m to the cluster's stream and returns once JetStream
// stored it. The message's id is its stable key, so a retry after a lost
// acknowledgement is dropped by the stream. The ref it returns stands for
// the chat message the hub posts; the hub swaps it back in edits and
// replies.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	_, js, err := p.conn()
	if err != nil {
		return chat.MessageRef{}, err
	}
	body, err := json.Marshal(fleet.Post{Platform: p.hubPlatform, Channel: to, Message: m})
	if err != nil {
		return chat.MessageRef{}, chat.Permanent(fmt.Errorf("encode message: %w", err))
	}
	id := fleet.MessageID(p.hubPlatform, to, m, body)
	msg := nats.NewMsg(fleet.OutSubject(p.cluster))
	msg.Data = body
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return chat.MessageRef{}, fmt.Errorf("publish to %s: %w", fleet.Stream(p.cluster), err)
	}
	if m.Replace != nil {
		return *m.Replace, nil
	}
	return fleet.AgentRef(p.name, to, id, m.Thread), nil
}

// Listen answers the hub's commands until ctx ends, and says hello
// meanwhile, so that the hub shows this cluster as connected.
func (p *platform) Listen(ctx context.Context, h chat.Handler) error {
	nc, _, err := p.conn()
	if err != nil {
		return err
	}
	defer p.close()
	sem := make(chan struct{}, p.limit)
	var wg sync.WaitGroup
	defer wg.Wait()
	sub, err := nc.QueueSubscribe(fleet.CommandSubject(p.cluster, p.hubPlatform), "agent", func(msg *nats.Msg) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			p.answer(ctx, h, msg)
		})
	})
	if err != nil {
		return fmt.Errorf("subscribe to commands: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	t := time.NewTicker(fleet.HeartbeatInterval)
	defer t.Stop()
	for {
		hello, _ := json.Marshal(fleet.Hello{Cluster: p.cluster, Version: buildinfo.Get().Version, Sent: time.Now().UTC()})
		if err := nc.Publish(fleet.HelloSubject(p.cluster), hello); err != nil {
			p.log.Debug("hello not sent", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// answer runs one command and replies to the hub.
func (p *platform) answer(ctx context.Context, h chat.Handler, msg *nats.Msg) {
	var req fleet.Request
	var reply fleet.Reply
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		reply.Error = "the agent could not read the request: " + err.Error()
	} else {
		in := req.Inbound
		// The agent's own platform name: its channels and users are
		// configured under it.
		in.Platform = p.name
		reply.Message = h.Handle(ctx, in)
	}
	body, err := json.Marshal(reply)
	if err == nil {
		err = msg.Respond(body)
	}
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		p.log.Error("reply not sent to the hub", "err", err)
	}
}

func (p *platform) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nc != nil {
		// Drain sends what was published before closing.
		_ = p.nc.Drain()
		p.nc = nil
	}
}
