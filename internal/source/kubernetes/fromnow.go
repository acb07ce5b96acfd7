package kubernetes

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Events are watched from now at a start with nothing to replay. The API
// server keeps no watch cache for Events (kube-apiserver's default), so
// their list is read from etcd and filtered there: at 250k Events that
// is seconds of the API server's CPU before the agent is ready, for
// objects of which such a start reports none. The informer's first list
// is therefore only the collection's current resourceVersion, and its
// watch starts there. A start with a replay point (a restart, a
// hand-over, the return of the API server) lists them all, so that what
// happened since that point is replayed.

// fromNow is a ListerWatcher whose first list holds no objects, only the
// collection's resourceVersion; later lists (a relist after an expired
// watch) are whole.
type fromNow struct {
	*cache.ListWatch
	// probe lists at most one object, with no filter: the cheapest read
	// that gives the current resourceVersion.
	probe  func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)
	listed atomic.Bool
}

// ListWithContext lists nothing the first time (see fromNow).
func (l *fromNow) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	if l.listed.Load() {
		return l.ListWatch.ListWithContext(ctx, opts)
	}
	list, err := l.probe(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return nil, err
	}
	if err := meta.SetList(list, nil); err != nil {
		return nil, fmt.Errorf("list from now: %w", err)
	}
	acc, err := meta.ListAccessor(list)
	if err != nil {
		return nil, fmt.Errorf("list from now: %w", err)
	}
	acc.SetContinue("")
	acc.SetRemainingItemCount(nil)
	l.listed.Store(true)
	return list, nil
}

// List is ListWithContext for callers without a context.
func (l *fromNow) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

// IsWatchListSemanticsUnSupported keeps the reflector on list and watch:
// a streamed initial list would bring every object back.
func (l *fromNow) IsWatchListSemanticsUnSupported() bool { return true }

// eventsFromNow builds an informer of r (an Events resource) that watches
// from now; tweak is r's server-side filter.
func (s *Source) eventsFromNow(r *resource, tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	var (
		list    func(context.Context, metav1.ListOptions) (runtime.Object, error)
		watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)
		example runtime.Object
	)
	switch {
	case s.opts.Typed != nil && r.gvr == corev1.SchemeGroupVersion.WithResource("events"):
		c := s.opts.Typed.CoreV1().Events(metav1.NamespaceAll)
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, o) }
		watchFn, example = c.Watch, &corev1.Event{}
	case s.opts.Typed != nil && r.gvr == eventsv1.SchemeGroupVersion.WithResource("events"):
		c := s.opts.Typed.EventsV1().Events(metav1.NamespaceAll)
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, o) }
		watchFn, example = c.Watch, &eventsv1.Event{}
	default:
		c := s.client.Resource(r.gvr).Namespace(metav1.NamespaceAll)
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return c.List(ctx, o) }
		watchFn, example = c.Watch, &unstructured.Unstructured{}
	}
	lw := &fromNow{probe: list, ListWatch: &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchFn(ctx, o)
		},
	}}
	return cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{ResyncPeriod: s.opts.Resync})
}

// unlisted sorts an object r's informer adds after its first list, when
// r is watched from `from`: news (keep), a change of an object that
// existed before (update), or an object that existed before and has not
// occurred since, which a relist brought back (neither). Times are whole
// seconds in the API, so an object of from's own second counts as news.
func unlisted(obj runtime.Object, from time.Time) (keep, update bool) {
	from = from.Truncate(time.Second)
	m, err := meta.Accessor(obj)
	if err != nil || !m.GetCreationTimestamp().Time.Before(from) {
		return true, false
	}
	return !lastOccurred(obj).Before(from), true
}

// lastOccurred is when an Event last occurred: the latest of its
// timestamps (creation, last, event time, series), whichever API wrote it.
func lastOccurred(obj runtime.Object) time.Time {
	var ts []time.Time
	switch e := obj.(type) {
	case *corev1.Event:
		ts = []time.Time{e.CreationTimestamp.Time, e.LastTimestamp.Time, e.EventTime.Time}
		if e.Series != nil {
			ts = append(ts, e.Series.LastObservedTime.Time)
		}
	case *eventsv1.Event:
		ts = []time.Time{e.CreationTimestamp.Time, e.DeprecatedLastTimestamp.Time, e.EventTime.Time}
		if e.Series != nil {
			ts = append(ts, e.Series.LastObservedTime.Time)
		}
	case *unstructured.Unstructured:
		ts = []time.Time{e.GetCreationTimestamp().Time}
		for _, path := range [][]string{{"lastTimestamp"}, {"deprecatedLastTimestamp"}, {"eventTime"}, {"series", "lastObservedTime"}} {
			if v, ok, _ := unstructured.NestedString(e.Object, path...); ok {
				if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
					ts = append(ts, t)
				}
			}
		}
	}
	var last time.Time
	for _, t := range ts {
		if t.After(last) {
			last = t
		}
	}
	return last
}
