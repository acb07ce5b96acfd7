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
	ai       aiMetrics
}

// aiMetrics count the assistant's questions (kubechat_ai_*).
type aiMetrics struct {
	questions *prometheus.CounterVec
	toolCalls *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	stops     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
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
		ai: newAIMetrics(promauto.With(reg)),
	}
}

func newAIMetrics(f promauto.Factory) aiMetrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return f.NewCounterVec(prometheus.CounterOpts{Name: "kubechat_ai_" + name, Help: help}, labels)
	}
	return aiMetrics{
		questions: counter("questions_total", "Questions to an AI assistant by executor and result: answered, stopped (a budget ended the answer), failed (no answer), denied.",
			"executor", "result"),
		toolCalls: counter("tool_calls_total", "Tool calls an AI assistant made, by executor, tool and result: ok, refused, failed.",
			"executor", "tool", "result"),
		refusals: counter("refusals_total", "Tool calls of an AI assistant that were refused, by executor and reason: policy, rbac, privacy, unknown_tool.",
			"executor", "reason"),
		tokens: counter("tokens_total", "Tokens an AI assistant's provider counted, by executor and kind: prompt, completion.",
			"executor", "kind"),
		stops: counter("budget_stops_total", "Answers a budget ended early, by executor and budget: tool_calls, question_tokens, daily_tokens, time.",
			"executor", "budget"),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubechat_ai_question_duration_seconds",
			Help:    "Time from a question to an AI assistant to its full answer, by executor.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"executor"}),
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
	// via is set for a command an assistant ran ("ai"), for the question
	// of a user.
	via string
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
	if a.via != "" {
		attrs = append(attrs, "via", a.via)
	}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, "err", err)
		if result == resultError {
			level = slog.LevelError
		}
	}
	h.log.Log(ctx, level, "command", attrs...)
}
