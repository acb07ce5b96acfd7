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

// Delivery results, as counted in kubechat_deliveries_total{platform,result}.
const (
	ResultDelivered = "delivered"
	// ResultDeadLetter: the delivery deadline passed, or the platform
	// refused the message for good (a Permanent error).
	ResultDeadLetter = "dead_letter"
	// ResultDeferred: the agent stopped with the message still queued; it
	// stays in the outbox, and the next leader delivers it.
	ResultDeferred = "deferred"
)

// ErrDeferred is reported to a Job's Done when the queue stops before
// delivering it: the message is not lost, only not delivered by this run.
var ErrDeferred = errors.New("delivery deferred: the agent stopped first")

// DeliveryMetrics count the outcome of every queued message.
type DeliveryMetrics struct {
	total   *prometheus.CounterVec
	retries *prometheus.CounterVec
}

// NewDeliveryMetrics registers kubechat_deliveries_total{platform,result}
// and kubechat_delivery_retries_total{platform} with reg.
func NewDeliveryMetrics(reg prometheus.Registerer) *DeliveryMetrics {
	return &DeliveryMetrics{
		total: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_deliveries_total",
			Help: "Queued chat messages by platform and outcome: delivered, dead_letter (deadline passed or refused), deferred (agent stopped; kept in the outbox).",
		}, []string{"platform", "result"}),
		retries: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_delivery_retries_total",
			Help: "Delivery attempts beyond the first, by platform: 429s, 5xx and network errors.",
		}, []string{"platform"}),
	}
}

// Job is one queued message.
type Job struct {
	// Build returns the message to send, or false to skip it. It runs when
	// the job's turn comes, so it sees what earlier jobs delivered (the ref
	// of an alert that a later job edits).
	Build func() (Message, bool)
	// Done, if set, runs after the delivery: with the ref, or with the
	// error that dead-lettered or deferred (ErrDeferred) the message. ctx
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

	mu   sync.Mutex
	jobs []Job
	busy bool
	wake chan struct{}
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
	if o.Health != nil {
		component := "delivery/" + platform
		o.Health.Register(component)
		o.Health.SetReady(component, true)
		o.Backoff.OnAttempt = func(err error) {
			switch {
			case err == nil, IsPermanent(err):
				// A refusal (4xx) is an answer: the service is there.
				o.Health.SetHealthy(component, true, "")
			default:
				o.Health.SetHealthy(component, false, "deliveries failing: "+err.Error())
			}
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
	n := len(q.jobs)
	if q.busy {
		n++
	}
	return n
}

func (q *Queue) next(ctx context.Context) (Job, bool) {
	for {
		q.mu.Lock()
		q.busy = false
		if len(q.jobs) > 0 {
			j := q.jobs[0]
			q.jobs[0] = Job{}
			q.jobs = q.jobs[1:]
			q.busy = true
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
	for {
		j, ok := q.next(ctx)
		if !ok {
			q.defer_(ctx)
			return
		}
		m, send := j.Build()
		if !send {
			continue
		}
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
	if q.o.Metrics != nil {
		q.o.Metrics.total.WithLabelValues(q.platform, result).Inc()
		if attempts > 1 {
			q.o.Metrics.retries.WithLabelValues(q.platform).Add(float64(attempts - 1))
		}
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

// defer_ empties the queue at shutdown, reporting each message deferred.
func (q *Queue) defer_(ctx context.Context) {
	q.mu.Lock()
	jobs := q.jobs
	q.jobs = nil
	q.busy = false
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
