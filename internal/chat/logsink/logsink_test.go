package logsink

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

func TestPostLogsMessage(t *testing.T) {
	var buf bytes.Buffer
	p, err := New("local", config.Raw{}, chat.Deps{Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	require.NoError(t, err)
	ref, err := p.Post(t.Context(), chat.Channel{Name: "alerts", ID: "alerts"}, chat.Message{
		Title: "Pod default/web created", Sections: []chat.Section{{Fields: []chat.Field{{Name: "Kind", Value: "Pod"}}}},
	})
	require.NoError(t, err)
	require.Equal(t, chat.MessageRef{Platform: "local", Channel: "alerts", ID: "1"}, ref)

	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	require.Equal(t, "chat message", rec["msg"])
	require.Equal(t, "local", rec["platform"])
	require.Equal(t, "Pod default/web created\nKind: Pod", rec["text"])

	ref2, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "resolved", Replace: &ref})
	require.NoError(t, err)
	require.Equal(t, ref.ID, ref2.ID, "an edit keeps the message id")
}

func TestPostHonoursCancel(t *testing.T) {
	p, err := New("local", config.Raw{}, chat.Deps{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = p.Post(ctx, chat.Channel{ID: "x"}, chat.Message{Title: "t"})
	require.ErrorIs(t, err, context.Canceled)
}

func TestSettingsErrors(t *testing.T) {
	raw, err := config.RawFromYAML("level: loud\n")
	require.NoError(t, err)
	_, err = New("local", raw, chat.Deps{})
	require.EqualError(t, err, `log platform "local": settings.level: unknown level "loud" (known: debug, info, warn)`)

	raw, err = config.RawFromYAML("levle: info\n")
	require.NoError(t, err)
	_, err = New("local", raw, chat.Deps{})
	require.EqualError(t, err, `log platform "local": settings:1: settings.levle: unknown field "levle" (known: level)`)
}
