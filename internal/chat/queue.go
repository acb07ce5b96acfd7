package chat

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"

	"github.com/kubechat/kubechat/internal/health"
)

// Notification results, as counted in
// kubechat_notifications_total{platform,channel,result}.
const (
	ResultDelivered = "delivered"
	// ResultDeadLetter: the delivery deadline passed, or the platform
	// refused the message for good (a Permanent error).
	ResultDeadLetter = "dead_letter"
	// ResultDeferred: the agent stopped with the message still queued; it
	// stays in the outbox, and the next leader delivers it.
	ResultDeferred = "deferred"
	// ResultSkipped: there was nothing to send (the resolution of an
	// alert that was never posted: counted by the caller, which drops it
	// before the queue, or by the queue when its turn came).
	ResultSkipped = "skipped"
	// ResultDuplicate: already queued or delivered (a replay after a
	// restart); counted by the caller, which drops it before the queue.
	ResultDuplicate = "duplicate"
)

// ErrDeferred is reported to a Job's Done when the queue stops before
// delivering it: the message is not lost, only not delivered by this run.
var ErrDeferred = errors.New("delivery deferred: the agent stopped first")

// ErrSkipped is reported to a Job's Done when its Build had nothing to send.
var ErrSkipped = errors.New("nothing to send")

// DrainTimeout bounds how long a stopping agent or hub keeps delivering
// what is queued (see Drain); what is left is handed on (to the outbox,
// or back to JetStream).
const DrainTimeout = 5 * time.Second

// Drain waits until pending reports nothing queued or in flight, or
// DrainTimeout passed.
func Drain(pending func() int) {
	deadline := time.Now().Add(DrainTimeout)
	for pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// DeliveryMetrics count the outcome of every queued message, its retries
// and how long it took.
type DeliveryMetrics struct {
	total   *prometheus.CounterVec
	retries *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// NewDeliveryMetrics registers kubechat_notifications_total,
// kubechat_delivery_retries_total and kubechat_delivery_duration_seconds
// with reg (see docs/metrics.md).
func NewDeliveryMetrics(reg prometheus.Registerer) *DeliveryMetrics {
	return &DeliveryMetrics{
		total: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_notifications_total",
			Help: "Messages for a channel by outcome: delivered, dead_letter (deadline passed or refused), deferred (agent stopped; kept in the outbox), skipped (nothing to send: a resolution without an alert), duplicate (already queued or delivered: a replay).",
		}, []string{"platform", "channel", "result"}),
		retries: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_delivery_retries_total",
			Help: "Delivery attempts that failed and were retried, by platform and reason: rate_limited (429 or the platform's rate-limit answer), timeout (the attempt took too long), error (5xx, network).",
		}, []string{"platform", "reason"}),
		latency: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kubechat_delivery_duration_seconds",
			Help:    "Time from a message being queued to its delivery, retries and rate limits included.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600},
		}, []string{"platform"}),
	}
}

// Count adds one message for channel on platform with result (for outcomes
// decided before the queue, such as ResultDuplicate).
func (d *DeliveryMetrics) Count(platform, channel, result string) {
	if d != nil {
		d.total.WithLabelValues(platform, channel, result).Inc()
	}
}

func hasRetryAfter(err error) bool { _, ok := RetryAfterOf(err); return ok }

// retried counts one failed attempt that will be retried.
func (d *DeliveryMetrics) retried(platform string, err error) {
	if d == nil {
		return
	}
	reason := "error"
	switch {
	case hasRetryAfter(err):
		reason = "rate_limited"
	case errors.Is(err, context.DeadlineExceeded):
		reason = "timeout"
	}
	d.retries.WithLabelValues(platform, reason).Inc()
}

// Job is one queued message.
type Job struct {
	// Build returns the message to send, or false to skip it. It runs when
	// the job's turn comes, so it sees what earlier jobs delivered (the ref
	// of an alert that a later job edits). It must not change anything: a
	// Queue over a Batcher may call it again later.
	Build func() (Message, bool)
	// Done, if set, runs after the delivery: with the ref, or with the
	// error that dead-lettered, deferred (ErrDeferred) or skipped
	// (ErrSkipped) the message. ctx
	// is the queue's, which outlives the sources: state written here is
	// written even during a shutdown's drain.
	Done func(ctx context.Context, ref MessageRef, err error)

	queued time.Time
}

// QueueOptions tune a Queue.
type QueueOptions struct {
	// PerSecond and Burst rate-limit the channel (default 1/s, bursts of 10).
	PerSecond float64
	Burst     int
	// Backoff tunes retries; Backoff.Deadline counts from Enqueue.
	Backoff Backoff
	Metrics *DeliveryMetrics
	Log     *slog.Logger
	// Health, if set, hears whether deliveries go through, as the
	// component "delivery/<platform>": the same rule for every platform,
	// with or without a connection of its own.
	Health *health.Tracker
}

// Queue delivers messages to one channel of one platform, in order: one
// sender, a token-bucket rate limit, retries with backoff that honour
// Retry-After, and a deadline after which a message is dead-lettered
// (logged and counted). A message waits behind the ones before it, so an
// outage shorter than the deadline delays messages but loses none. Run
// delivers; Enqueue never blocks.
type Queue struct {
	n        Notifier
	platform string
	to       Channel
	o        QueueOptions
	limiter  *rate.Limiter

	mu       sync.Mutex
	jobs     []Job
	inflight int // jobs taken by the sender and not finished
	wake     chan struct{}
}

// NewQueue returns the queue of channel to on platform n, named platform in metrics and logs.
func NewQueue(n Notifier, platform string, to Channel, o QueueOptions) *Queue {
	if o.PerSecond <= 0 {
		o.PerSecond = 1
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	o.Backoff = o.Backoff.withDefaults()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Log = o.Log.With("platform", platform, "channel", to.Name)
	component := "delivery/" + platform
	if o.Health != nil {
		o.Health.Register(component)
		o.Health.SetReady(component, true)
	}
	o.Backoff.OnAttempt = func(err error) {
		if err != nil && !IsPermanent(err) {
			o.Metrics.retried(platform, err)
		}
		if o.Health == nil {
			return
		}
		switch {
		case err == nil, IsPermanent(err):
			// A refusal (4xx) is an answer: the service is there.
			o.Health.SetHealthy(component, true, "")
		default:
			o.Health.SetHealthy(component, false, "deliveries failing: "+err.Error())
		}
	}
	return &Queue{
		n: n, platform: platform, to: to, o: o,
		limiter: rate.NewLimiter(rate.Limit(o.PerSecond), o.Burst),
		wake:    make(chan struct{}, 1),
	}
}

// Enqueue adds j at the end of the queue.
func (q *Queue) Enqueue(j Job) {
	j.queued = time.Now()
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Pending is the number of queued or in-flight messages.
func (q *Queue) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.jobs) + q.inflight
}

func (q *Queue) next(ctx context.Context) (Job, bool) {
	for {
		q.mu.Lock()
		q.inflight = 0
		if len(q.jobs) > 0 {
			j := q.jobs[0]
			q.jobs[0] = Job{}
			q.jobs = q.jobs[1:]
			q.inflight = 1
			q.mu.Unlock()
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Job{}, false
		case <-q.wake:
		}
	}
}

// Run delivers queued messages until ctx ends. Messages still queued then
// are deferred: counted and reported to their Done with ErrDeferred.
func (q *Queue) Run(ctx context.Context) {
	if b, ok := q.n.(Batcher); ok {
		q.runBatches(ctx, b)
		return
	}
	for {
		j, ok := q.next(ctx)
		if !ok {
			q.defer_(ctx)
			return
		}
		m, send := j.Build()
		if !send {
			q.skip(ctx, j)
			continue
		}
		m.Queued = j.queued
		if err := q.limiter.Wait(ctx); err != nil {
			q.finish(ctx, j, m, MessageRef{}, 0, errors.Join(ErrDeferred, err), ResultDeferred)
			continue
		}
		ref, attempts, err := Send(ctx, q.n, q.to, m, q.o.Backoff, j.queued.Add(q.o.Backoff.Deadline))
		result := ResultDelivered
		switch {
		case err != nil && ctx.Err() != nil:
			result, err = ResultDeferred, errors.Join(ErrDeferred, err)
		case err != nil:
			result = ResultDeadLetter
		}
		q.finish(ctx, j, m, ref, attempts, err, result)
	}
}

func (q *Queue) finish(ctx context.Context, j Job, m Message, ref MessageRef, attempts int, err error, result string) {
	q.o.Metrics.Count(q.platform, q.to.Name, result)
	if result == ResultDelivered && q.o.Metrics != nil {
		q.o.Metrics.latency.WithLabelValues(q.platform).Observe(time.Since(j.queued).Seconds())
	}
	switch {
	case result == ResultDeadLetter:
		q.o.Log.Error("message dead-lettered", "title", m.Title, "attempts", attempts,
			"queued_for", time.Since(j.queued).Round(time.Millisecond), "err", err)
	case result == ResultDeferred:
		q.o.Log.Info("message left queued at shutdown", "title", m.Title)
	case attempts > 1:
		q.o.Log.Warn("message delivered after retries", "title", m.Title, "attempts", attempts,
			"queued_for", time.Since(j.queued).Round(time.Millisecond))
	}
	if j.Done != nil {
		j.Done(context.WithoutCancel(ctx), ref, err)
	}
}

// skip reports a job that had nothing to send.
func (q *Queue) skip(ctx context.Context, j Job) {
	q.o.Metrics.Count(q.platform, q.to.Name, ResultSkipped)
	if j.Done != nil {
		j.Done(context.WithoutCancel(ctx), MessageRef{}, ErrSkipped)
	}
}

// defer_ empties the queue at shutdown, reporting each message deferred.
func (q *Queue) defer_(ctx context.Context) {
	q.mu.Lock()
	jobs := q.jobs
	q.jobs = nil
	q.inflight = 0
	q.mu.Unlock()
	for _, j := range jobs {
		q.finish(ctx, j, Message{}, MessageRef{}, 0, ErrDeferred, ResultDeferred)
	}
}

// Oldest is when the oldest queued message was queued (zero when none).
func (q *Queue) Oldest() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) == 0 {
		return time.Time{}
	}
	return q.jobs[0].queued
}
