package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// flaky records what it was asked to post; fail decides each attempt's error.
type flaky struct {
	mu     sync.Mutex
	fail   func(attempt int, m Message) error
	calls  int
	posted []Message
	files  []File
	limits Limits
}

func (f *flaky) Post(_ context.Context, _ Channel, m Message) (MessageRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		if err := f.fail(f.calls, m); err != nil {
			return MessageRef{}, err
		}
	}
	f.posted = append(f.posted, m)
	ref := MessageRef{ID: fmt.Sprint(len(f.posted))}
	if m.Thread != nil {
		ref.Thread = m.Thread.ID
	}
	return ref, nil
}

func (f *flaky) titles() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.posted {
		out = append(out, m.Title)
	}
	return out
}

func runQueue(t *testing.T, q *Queue) context.CancelFunc {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func waitIdle(t *testing.T, q *Queue) {
	require.Eventually(t, func() bool { return q.Pending() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func msg(title string) Job {
	return Job{Build: func() (Message, bool) { return Message{Title: title}, true }}
}

func TestQueueKeepsOrderThroughRateLimitsAndOutages(t *testing.T) {
	// 429s, then a stretch of 503s: every message arrives once, in order.
	n := &flaky{fail: func(attempt int, _ Message) error {
		switch {
		case attempt <= 3:
			return RetryAfter(20*time.Millisecond, errors.New("429 ratelimited"))
		case attempt <= 8:
			return errors.New("503 service unavailable")
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	metrics := NewDeliveryMetrics(reg)
	q := NewQueue(n, "fake", Channel{Name: "alerts"}, QueueOptions{PerSecond: 1000, Burst: 1000,
		Backoff: Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}, Metrics: metrics})
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprint("m", i))
		q.Enqueue(msg(want[i]))
	}
	runQueue(t, q)
	waitIdle(t, q)
	require.Equal(t, want, n.titles())
	require.Equal(t, 20.0, testutil.ToFloat64(metrics.total.WithLabelValues("fake", "alerts", ResultDelivered)))
	require.Equal(t, 3.0, testutil.ToFloat64(metrics.retries.WithLabelValues("fake", "rate_limited")))
	require.Equal(t, 5.0, testutil.ToFloat64(metrics.retries.WithLabelValues("fake", "error")))
	require.Equal(t, uint64(20), histogramCount(t, reg, "kubechat_delivery_duration_seconds"))
}

func TestQueueDeadLettersPastTheDeadline(t *testing.T) {
	down := true
	var mu sync.Mutex
	n := &flaky{fail: func(int, Message) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return errors.New("503")
		}
		return nil
	}}
	metrics := NewDeliveryMetrics(prometheus.NewRegistry())
	q := NewQueue(n, "fake", Channel{Name: "alerts"}, QueueOptions{PerSecond: 1000, Burst: 1000,
		Backoff: Backoff{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Deadline: 150 * time.Millisecond}, Metrics: metrics})
	var errs []error
	var errMu sync.Mutex
	for _, title := range []string{"lost-1", "lost-2"} {
		q.Enqueue(Job{Build: msg(title).Build, Done: func(_ context.Context, _ MessageRef, err error) {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}})
	}
	runQueue(t, q)
	waitIdle(t, q)
	mu.Lock()
	down = false
	mu.Unlock()
	q.Enqueue(msg("after"))
	waitIdle(t, q)
	require.Equal(t, []string{"after"}, n.titles())
	require.Len(t, errs, 2)
	for _, err := range errs {
		require.ErrorContains(t, err, "gave up after")
	}
	require.Equal(t, 2.0, testutil.ToFloat64(metrics.total.WithLabelValues("fake", "alerts", ResultDeadLetter)))
}

func TestQueueDeadLettersPermanentErrorsAtOnce(t *testing.T) {
	n := &flaky{fail: func(_ int, m Message) error {
		if m.Title == "bad" {
			return Permanent(errors.New("channel_not_found"))
		}
		return nil
	}}
	q := NewQueue(n, "fake", Channel{}, QueueOptions{PerSecond: 1000, Burst: 1000})
	q.Enqueue(msg("bad"))
	q.Enqueue(msg("good"))
	runQueue(t, q)
	waitIdle(t, q)
	require.Equal(t, []string{"good"}, n.titles())
}

func TestQueueBuildRunsAtSendTimeAndMaySkip(t *testing.T) {
	n := &flaky{}
	q := NewQueue(n, "fake", Channel{}, QueueOptions{PerSecond: 1000, Burst: 1000})
	var firstRef MessageRef
	q.Enqueue(Job{Build: msg("alert").Build, Done: func(_ context.Context, ref MessageRef, _ error) { firstRef = ref }})
	q.Enqueue(Job{Build: func() (Message, bool) { return Message{Title: "edit of " + firstRef.ID}, true }})
	q.Enqueue(Job{Build: func() (Message, bool) { return Message{Title: "skipped"}, false }})
	runQueue(t, q)
	waitIdle(t, q)
	require.Equal(t, []string{"alert", "edit of 1"}, n.titles())
}

func TestQueueDefersWhatIsLeftAtShutdown(t *testing.T) {
	n := &flaky{fail: func(int, Message) error { return errors.New("503") }}
	metrics := NewDeliveryMetrics(prometheus.NewRegistry())
	q := NewQueue(n, "fake", Channel{}, QueueOptions{PerSecond: 1000, Burst: 1000,
		Backoff: Backoff{Initial: time.Minute, Deadline: time.Hour}, Metrics: metrics})
	var deferred atomic.Int32
	for _, title := range []string{"a", "b"} {
		q.Enqueue(Job{Build: msg(title).Build, Done: func(_ context.Context, _ MessageRef, err error) {
			if errors.Is(err, ErrDeferred) {
				deferred.Add(1)
			}
		}})
	}
	cancel := runQueue(t, q)
	require.Eventually(t, func() bool { n.mu.Lock(); defer n.mu.Unlock(); return n.calls > 0 }, 5*time.Second, time.Millisecond)
	cancel()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(metrics.total.WithLabelValues("fake", "", ResultDeferred)) == 2
	}, 5*time.Second, time.Millisecond)
	require.EqualValues(t, 2, deferred.Load(), "each is told it was deferred, not lost")
}

func TestQueueRateLimits(t *testing.T) {
	n := &flaky{}
	q := NewQueue(n, "fake", Channel{}, QueueOptions{PerSecond: 20, Burst: 1})
	start := time.Now()
	for i := range 5 {
		q.Enqueue(msg(fmt.Sprint(i)))
	}
	runQueue(t, q)
	waitIdle(t, q)
	// 5 messages at 20/s with no burst take at least 4 intervals of 50 ms.
	require.GreaterOrEqual(t, time.Since(start), 190*time.Millisecond)
}

// sizedUploader is a platform with small limits that can upload.
type sizedUploader struct{ flaky }

func (s *sizedUploader) Limits() Limits { return s.limits }
func (s *sizedUploader) Upload(_ context.Context, _ Channel, thread MessageRef, f File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Title = thread.ID
	s.files = append(s.files, f)
	return nil
}

type sizedOnly struct{ flaky }

func (s *sizedOnly) Limits() Limits { return s.limits }

func TestSendSplitsLongOutputIntoThreadedParts(t *testing.T) {
	n := &sizedOnly{flaky{limits: Limits{Block: 100, Message: 200}}}
	code := strings.Repeat("0123456789abcdef\n", 40) // 680 characters
	ref, _, err := Send(t.Context(), n, Channel{}, Message{Title: "out", Sections: []Section{{Code: code, Buttons: []Button{{Label: "Run again"}}}}},
		Backoff{}, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, "1", ref.ID)
	require.Greater(t, len(n.posted), 3)
	var got strings.Builder
	for i, m := range n.posted {
		if i > 0 {
			require.NotNil(t, m.Thread, "part %d is not threaded", i)
			require.Equal(t, "1", m.Thread.ID)
		}
		require.Contains(t, m.Context, fmt.Sprintf("part %d/%d", i+1, len(n.posted)))
		for _, s := range m.Sections {
			got.WriteString(s.Code)
		}
	}
	require.Equal(t, code, got.String(), "output changed or truncated")
	last := n.posted[len(n.posted)-1]
	require.Equal(t, "Run again", last.Sections[len(last.Sections)-1].Buttons[0].Label)
}

func TestSendUploadsPastTheThreshold(t *testing.T) {
	n := &sizedUploader{flaky{limits: Limits{Block: 3000, Upload: 500}}}
	code := strings.Repeat("line of output\n", 100)
	_, _, err := Send(t.Context(), n, Channel{}, Message{Title: "kubectl get pods", Sections: []Section{{Code: code}}},
		Backoff{}, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, n.posted, 1)
	require.Len(t, n.files, 1)
	require.Equal(t, code, n.files[0].Content)
	require.Equal(t, "1", n.files[0].Title, "the file goes into the message's thread")
	text := n.posted[0].PlainText()
	require.Contains(t, text, "100 lines")
	require.Contains(t, text, "output.txt")
	require.Less(t, len(text), 1000)
}

func TestSendRepliesInTheGivenThread(t *testing.T) {
	n := &sizedUploader{flaky{limits: Limits{Block: 50, Upload: 0}}}
	thread := &MessageRef{ID: "root"}
	_, _, err := Send(t.Context(), n, Channel{}, Message{Thread: thread, Sections: []Section{{Text: strings.Repeat("word ", 40)}}},
		Backoff{}, time.Now().Add(time.Minute))
	require.NoError(t, err)
	for _, m := range n.posted {
		require.Equal(t, "root", m.Thread.ID)
	}
}

// histogramCount is the number of observations of the histogram name in reg.
func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
