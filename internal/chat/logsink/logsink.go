// Package logsink is the "log" chat platform: it writes every message to the
// agent's structured log instead of a chat service. It needs no credentials,
// which makes it the default for local runs and a handy audit trail next to a
// real platform. It receives no commands.
package logsink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

// Settings configure the log platform.
type Settings struct {
	// Level is the slog level of message lines: debug, info (default) or warn.
	Level string `yaml:"level"`
}

type platform struct {
	name  string
	level slog.Level
	log   *slog.Logger
	seq   atomic.Uint64
}

// New builds a log platform. It does not connect anywhere.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("log platform %q: %w", name, err)
	}
	var lvl slog.Level
	switch strings.ToLower(s.Level) {
	case "", "info":
		lvl = slog.LevelInfo
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	default:
		return nil, fmt.Errorf("log platform %q: settings.level: unknown level %q (known: debug, info, warn)", name, s.Level)
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &platform{name: name, level: lvl, log: log.With("platform", name)}, nil
}

func (p *platform) Name() string { return p.name }

// Post logs the message as one record.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	if err := ctx.Err(); err != nil {
		return chat.MessageRef{}, err
	}
	ref := chat.MessageRef{Platform: p.name, Channel: to.ID, ID: fmt.Sprintf("%d", p.seq.Add(1))}
	attrs := []any{"channel", to.Name, "message_id", ref.ID, "title", m.Title, "level", string(m.Level)}
	if m.Replace != nil {
		attrs = append(attrs, "replaces", m.Replace.ID)
		ref = *m.Replace
	}
	if m.Thread != nil {
		attrs = append(attrs, "thread", m.Thread.ID)
		ref.Thread = m.Thread.ID
	}
	attrs = append(attrs, "text", m.PlainText())
	p.log.Log(ctx, p.level, "chat message", attrs...)
	return ref, nil
}

// Listen has nothing to receive; it waits for ctx.
func (p *platform) Listen(ctx context.Context, _ chat.Handler) error {
	<-ctx.Done()
	return nil
}
