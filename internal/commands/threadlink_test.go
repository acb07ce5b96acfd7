package commands

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

// linking is an executor whose "report" links back to its thread
// (Analysis.LinksThread); it records the callers it ran for.
type linking struct {
	mu      sync.Mutex
	callers []executor.Caller
}

func (l *linking) Name() string { return "linking" }
func (l *linking) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	return executor.Analysis{Verb: args[0], LinksThread: args[0] == "report"}, nil
}
func (l *linking) Execute(_ context.Context, req executor.Request) (executor.Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.callers = append(l.callers, req.Caller)
	return executor.Result{Output: "ok\n"}, nil
}

func (l *linking) last() executor.Caller {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.callers[len(l.callers)-1]
}

// linked is a chat platform whose messages have addresses.
type linked struct{ posts }

func (l *linked) Permalink(_ context.Context, ref chat.MessageRef) (string, error) {
	return "https://chat.example.com/" + ref.Channel + "/" + ref.ID, nil
}

const threadLinkConfig = `cluster:
  name: dev
platforms:
  - name: chat
    type: log
  - name: plain
    type: log
channels:
  - name: ops
    platform: chat
    bindings:
      executors: [linking]
    identity:
      user: nobody
  - name: other
    platform: plain
    bindings:
      executors: [linking]
    identity:
      user: nobody
executors:
  - name: linking
    type: linking
    policy:
      verbs: ["*"]
`

// TestThreadURLOnlyForCommandsThatLinkBack: a command whose analysis
// links back to its thread is told the thread's address, its root's, from
// the platform (chat.Permalinker); other commands, and commands on a
// platform without addresses, are told none.
func TestThreadURLOnlyForCommandsThatLinkBack(t *testing.T) {
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"linking"}},
		config.File{Name: "links.yaml", Data: []byte(threadLinkConfig)})
	require.NoError(t, err)
	ex := &linking{}
	h, err := New(cfg, Options{Executors: map[string]executor.Executor{"linking": ex},
		Platforms: map[string]chat.Platform{"chat": &linked{}, "plain": &posts{}}}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	say := func(platform, channel, text string) {
		t.Helper()
		m := h.Handle(t.Context(), chat.Inbound{Platform: platform, Channel: chat.Channel{Name: channel, ID: "C-" + channel}, UserID: "U1", Text: text,
			Thread: chat.MessageRef{Platform: platform, Channel: "C-" + channel, ID: "M2", Thread: "M1"}})
		require.Contains(t, m.PlainText(), "```\nok\n```")
	}

	say("chat", "ops", "linking report")
	require.Equal(t, "https://chat.example.com/C-ops/M1", ex.last().ThreadURL, "the thread's root")
	say("chat", "ops", "linking get")
	require.Empty(t, ex.last().ThreadURL, "a command that does not link back costs no lookup")
	say("plain", "other", "linking report")
	require.Empty(t, ex.last().ThreadURL, "a platform without addresses gives none")
}
