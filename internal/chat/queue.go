package chat

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"
)

// Delivery results, as counted in kubechat_deliveries_total{platform,result}.
const (
	ResultDelivered = "delivered"
	// ResultDeadLetter: the delivery deadline passed, or the platform
	// refused the message for good (a Permanent error).
	ResultDeadLetter = "dead_letter"
	// ResultAbandoned: the agent stopped with the message still queued.
	ResultAbandoned = "abandoned"
)

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
			Help: "Queued chat messages by platform and outcome: delivered, dead_letter (deadline passed or refused), abandoned (agent stopped).",
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
	// error that dead-lettered or abandoned the message.
	Done func(MessageRef, error)

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
// are abandoned: counted, logged and reported to their Done.
func (q *Queue) Run(ctx context.Context) {
	for {
		j, ok := q.next(ctx)
		if !ok {
			q.abandon(ctx.Err())
			return
		}
		m, send := j.Build()
		if !send {
			continue
		}
		if err := q.limiter.Wait(ctx); err != nil {
			q.finish(j, m, MessageRef{}, 0, err, ResultAbandoned)
			continue
		}
		ref, attempts, err := Send(ctx, q.n, q.to, m, q.o.Backoff, j.queued.Add(q.o.Backoff.Deadline))
		result := ResultDelivered
		switch {
		case err != nil && ctx.Err() != nil:
			result = ResultAbandoned
		case err != nil:
			result = ResultDeadLetter
		}
		q.finish(j, m, ref, attempts, err, result)
	}
}

func (q *Queue) finish(j Job, m Message, ref MessageRef, attempts int, err error, result string) {
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
	case result == ResultAbandoned:
		q.o.Log.Error("message abandoned at shutdown", "title", m.Title, "err", err)
	case attempts > 1:
		q.o.Log.Warn("message delivered after retries", "title", m.Title, "attempts", attempts,
			"queued_for", time.Since(j.queued).Round(time.Millisecond))
	}
	if j.Done != nil {
		j.Done(ref, err)
	}
}

// abandon empties the queue at shutdown, reporting each message.
func (q *Queue) abandon(err error) {
	q.mu.Lock()
	jobs := q.jobs
	q.jobs = nil
	q.busy = false
	q.mu.Unlock()
	for _, j := range jobs {
		m, send := j.Build()
		if send {
			q.finish(j, m, MessageRef{}, 0, err, ResultAbandoned)
		}
	}
}
