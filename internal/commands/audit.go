package commands

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kubechat/kubechat/internal/chat"
)

// Command results, as counted in kubechat_commands_total{result}.
const (
	resultOK           = "ok"
	resultFailed       = "failed"
	resultSyntax       = "syntax_error"
	resultUnknown      = "unknown"
	resultPolicyDenied = "denied_policy"
	resultRBACDenied   = "denied_rbac"
	resultError        = "error"
	// resultAwaitingConfirmation: the command waits for its Confirm button.
	resultAwaitingConfirmation = "awaiting_confirmation"
)

// Metrics count commands: kubechat_commands_total and
// kubechat_command_duration_seconds (see docs/metrics.md). One agent
// builds them once and hands them to every handler it builds, so that a
// config reload keeps counting in the same series.
type Metrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the command metrics with reg (nil: kept unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		total: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_commands_total",
			Help: "Commands by executor (or built-in) and result.",
		}, []string{"executor", "result"}),
		duration: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubechat_command_duration_seconds",
			Help:    "Time from a command's arrival to its reply, by executor (or built-in) and result.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"executor", "result"}),
	}
}

// audit records one command: who, where, what executor and verb, the
// decision and the duration. Raw argv is never logged: flags such as
// --from-literal carry secrets.
type audit struct {
	in       chat.Inbound
	executor string
	verb     string
	identity string
	start    time.Time
}

func (h *Handler) record(ctx context.Context, a audit, result string, err error) {
	d := time.Since(a.start)
	name := a.executor
	if name == "" {
		name = "none"
	}
	h.metrics.total.WithLabelValues(name, result).Inc()
	h.metrics.duration.WithLabelValues(name, result).Observe(d.Seconds())
	attrs := []any{"executor", name, "verb", a.verb, "platform", a.in.Platform, "channel", a.in.Channel.Name,
		"user_id", a.in.UserID, "user", a.in.UserName, "identity", a.identity, "result", result, "duration_ms", d.Milliseconds()}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, "err", err)
		if result == resultError {
			level = slog.LevelError
		}
	}
	h.log.Log(ctx, level, "command", attrs...)
}
