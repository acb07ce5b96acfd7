// Package kubernetes is the Kubernetes event source: dynamic shared informers
// for the configured resources, whose handlers only enqueue, and workers that
// filter and turn changes into events. Objects that exist when the agent
// starts are never reported: only changes seen after the caches synced are.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// Options tune a Source.
type Options struct {
	// Workers is the number of queue workers (default 2).
	Workers int
	// Own are the agent's own objects (its ConfigMaps and Lease, as
	// "group/resource namespace/name"), which it never reports: it writes
	// them itself, and an alert about each write would write them again.
	Own []string
	// Resync is the informer resync period (default 0: never). Resyncs are never reported.
	Resync time.Duration
	// OnSynced is called once the informer caches have synced.
	OnSynced func()
	// Since, when set, replays what the initial list shows happened after
	// it: objects created and workloads that started failing since then.
	// The leader sets it to the previous leader's checkpoint, so a
	// hand-over loses nothing. Zero reports nothing from the initial list.
	Since time.Time
	// Replayed, if set, is called once, when the replay of the initial
	// list is queued (every object listed at the start was handled). It is
	// not called when Start returns before that: the replay point must
	// then stay where it is, for the next leader to replay from.
	Replayed func()
	// Metadata reads object metadata: Secrets are watched through it, so
	// that their values never enter the agent, and the Ingress
	// recommendation reads Services with it.
	Metadata metadata.Interface
	// PendingGrace is how long a Helm release may stay pending before it
	// counts as failing (default DefaultPendingGrace).
	PendingGrace time.Duration
	// OnWatch hears whether the watches run (false, with the reason, when
	// one broke; true once they synced again).
	OnWatch func(ok bool, reason string)
	// Probe asks the API server whether it is ready; after a broken watch
	// the source calls it every second and relists once it answers.
	Probe func(context.Context) error
	// Typed, when set, watches built-in resources with typed informers over
	// protobuf, which decode faster and take far less memory than
	// unstructured objects; other resources (CRDs) use the dynamic client.
	Typed kubernetes.Interface
}

// Source watches the resources of one configured kubernetes source.
type Source struct {
	name      string
	cluster   string
	client    dynamic.Interface
	resources []*resource
	opts      Options
	log       *slog.Logger
	// queue holds object keys; pending holds each key's changes in the
	// order they came, so that the changes of one object are handled in
	// order (the queue never hands one key to two workers at once).
	queue     workqueue.TypedRateLimitingInterface[objectKey]
	pendMu    sync.Mutex
	pending   map[objectKey][]item
	recommend config.Recommendations
	meta      metadata.Interface
	argo      config.ArgoCDAlerts

	// initial counts the listed objects still to handle; replayed calls
	// opts.Replayed once.
	initial  atomic.Int64
	synced   atomic.Bool
	since    atomic.Pointer[time.Time]
	replayed sync.Once
}

// resource is one configured resource with its filters compiled.
type resource struct {
	gvr     schema.GroupVersionResource
	events  map[event.Type]bool
	include []*regexp.Regexp
	exclude []*regexp.Regexp
	name    *regexp.Regexp
	labels  labels.Selector
	annots  labels.Selector
	reasons map[string]bool
	message *regexp.Regexp
	fields  []config.FieldPath
	// metadataOnly resources (Secrets) are watched without their contents.
	metadataOnly bool
	// watchedFrom, when set, is when the informer began to watch without
	// listing (Events at a start with nothing to replay, see fromNow).
	watchedFrom time.Time
	// own are the agent's own objects of this resource, by namespace/name.
	own map[string]bool
	// store is the informer's cache, set by Start.
	store cache.Indexer
}

// item is one queued informer notification: typed objects for built-in
// resources, unstructured ones for the rest. Pointers keep it comparable.
type item struct {
	res     *resource
	typ     event.Type
	obj     runtime.Object
	old     runtime.Object
	initial bool
	// recheck items come back after a grace period to see whether a
	// deferred failure (a pending Helm release) still stands, once due.
	recheck bool
	due     time.Time
}

// change is an item with its objects in unstructured form, as filters read them.
type change struct {
	res     *resource
	typ     event.Type
	obj     *unstructured.Unstructured
	old     *unstructured.Unstructured
	initial bool // from the initial list, not a change seen live
}

// New compiles the filters of a kubernetes source. It does not contact the API server.
func New(cfg config.Source, cluster string, client dynamic.Interface, log *slog.Logger, opts Options) (*Source, error) {
	if cfg.Kubernetes == nil {
		return nil, fmt.Errorf("kubernetes source %q: no kubernetes block", cfg.Name)
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.PendingGrace <= 0 {
		opts.PendingGrace = DefaultPendingGrace
	}
	s := &Source{name: cfg.Name, cluster: cluster, client: client, opts: opts, log: log.With("source", cfg.Name),
		recommend: cfg.Kubernetes.Recommendations, meta: opts.Metadata, argo: argoSettings(cfg.Kubernetes)}
	var errs []error
	for i, rc := range cfg.Kubernetes.Resources {
		r, err := compile(rc, cfg.Kubernetes.Namespaces)
		if err != nil {
			errs = append(errs, fmt.Errorf("kubernetes source %q: resources[%d]: %w", cfg.Name, i, err))
			continue
		}
		for _, o := range opts.Own {
			if gr, obj, ok := strings.Cut(o, " "); ok && gr == r.gvr.GroupResource().String() {
				if r.own == nil {
					r.own = map[string]bool{}
				}
				r.own[obj] = true
			}
		}
		s.resources = append(s.resources, r)
	}
	return s, errors.Join(errs...)
}

func compile(rc config.Resource, defaultNS config.Namespaces) (*resource, error) {
	gvr, err := config.ParseGVR(rc.Type)
	if err != nil {
		return nil, err
	}
	r := &resource{gvr: gvr, events: map[event.Type]bool{}, labels: labels.Everything(), annots: labels.Everything()}
	events := rc.Events
	if len(events) == 0 {
		events = config.EventTypes
	}
	for _, e := range events {
		r.events[event.Type(e)] = true
	}
	ns := defaultNS
	if rc.Namespaces != nil {
		ns = *rc.Namespaces
	}
	for _, expr := range ns.Include {
		re, err := config.CompileAnchored(expr)
		if err != nil {
			return nil, err
		}
		r.include = append(r.include, re)
	}
	for _, expr := range ns.Exclude {
		re, err := config.CompileAnchored(expr)
		if err != nil {
			return nil, err
		}
		r.exclude = append(r.exclude, re)
	}
	if rc.Name != "" {
		if r.name, err = config.CompileAnchored(rc.Name); err != nil {
			return nil, err
		}
	}
	if rc.Labels != "" {
		if r.labels, err = labels.Parse(rc.Labels); err != nil {
			return nil, fmt.Errorf("labels %q: %w", rc.Labels, err)
		}
	}
	if rc.Annotations != "" {
		if r.annots, err = labels.Parse(rc.Annotations); err != nil {
			return nil, fmt.Errorf("annotations %q: %w", rc.Annotations, err)
		}
	}
	if len(rc.Reasons) > 0 {
		r.reasons = map[string]bool{}
		for _, reason := range rc.Reasons {
			r.reasons[reason] = true
		}
	}
	if rc.Message != "" {
		if r.message, err = regexp.Compile(rc.Message); err != nil {
			return nil, fmt.Errorf("message %q: %w", rc.Message, err)
		}
	}
	for _, f := range rc.Fields {
		p, err := config.ParseFieldPath(f)
		if err != nil {
			return nil, err
		}
		r.fields = append(r.fields, p)
	}
	return r, nil
}

// SetReplay sets the replay point and what to call once it is queued (see
// Options.Since and Replayed); call it before Start.
func (s *Source) SetReplay(since time.Time, replayed func()) {
	s.opts.Since, s.opts.Replayed = since, replayed
	s.since.Store(&since)
}

// after reports whether t (an API timestamp, whole seconds) is at or after
// the replay point's second. What was reported already is weeded out by
// its key downstream (the alerting pipeline's outbox).
func (s *Source) after(t time.Time) bool {
	since := s.replayPoint()
	return !since.IsZero() && !t.Before(since.Truncate(time.Second))
}

// replayPoint is where replays start: Options.Since, later moved to when a
// watch broke.
func (s *Source) replayPoint() time.Time {
	if p := s.since.Load(); p != nil {
		return *p
	}
	return s.opts.Since
}

// replayDone calls opts.Replayed, once.
func (s *Source) replayDone() {
	s.replayed.Do(func() {
		if s.opts.Replayed != nil {
			s.opts.Replayed()
		}
	})
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// Start runs the informers and workers until ctx is done. When a watch
// breaks (the API server is gone), it probes the server every second and,
// as soon as it answers, starts its informers afresh, relisting and
// replaying what happened during the gap, instead of waiting out
// client-go's watch backoff (up to a minute after a long outage).
func (s *Source) Start(ctx context.Context, emit func(context.Context, event.Event)) error {
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[objectKey](),
		workqueue.TypedRateLimitingQueueConfig[objectKey]{Name: "source_" + s.name})
	s.pending = map[objectKey][]item{}
	var workers sync.WaitGroup
	defer func() { s.queue.ShutDown(); workers.Wait() }()
	for first := true; ; first = false {
		back, err := s.generation(ctx, func() {
			if !first {
				return
			}
			s.log.Info("kubernetes source synced", "resources", len(s.resources))
			if s.opts.OnSynced != nil {
				s.opts.OnSynced()
			}
			s.synced.Store(true)
			if s.initial.Load() == 0 {
				s.replayDone()
			}
			for range s.opts.Workers {
				workers.Go(func() {
					for s.processNext(ctx, emit) {
					}
				})
			}
		})
		if err != nil || !back {
			return err
		}
	}
}

// generation runs one set of informers until ctx ends (false) or the API
// server came back after an outage (true: run a new one, which replays
// from when the outage began). synced runs once its caches synced.
func (s *Source) generation(ctx context.Context, synced func()) (bool, error) {
	gctx, stop := context.WithCancel(ctx)
	var informersWG sync.WaitGroup
	defer func() { stop(); informersWG.Wait() }()
	back := make(chan struct{})
	var outageAt atomic.Pointer[time.Time]
	// lost records the start of an outage, once.
	var lost sync.Once
	markLost := func(since time.Time, reason string) {
		lost.Do(func() {
			outageAt.Store(&since)
			s.log.Warn("the API server is out of reach; the watches wait for it", "reason", reason)
			if s.opts.OnWatch != nil {
				s.opts.OnWatch(false, reason)
			}
		})
	}
	onError := func(_ *cache.Reflector, err error) {
		if outage(err) {
			markLost(time.Now(), "watch broken: "+err.Error())
		}
	}
	if s.opts.Probe != nil {
		informersWG.Go(func() { s.watchdog(gctx, markLost, outageAt.Load, back) })
	}
	hasSynced, err := s.informers(gctx, onError, &informersWG)
	if err != nil {
		return false, err
	}
	if !cache.WaitForCacheSync(gctx.Done(), hasSynced...) {
		select {
		case <-back:
		default:
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("kubernetes source %q: caches did not sync", s.name)
		}
	} else {
		synced()
		if s.opts.OnWatch != nil {
			s.opts.OnWatch(true, "")
		}
	}
	select {
	case <-ctx.Done():
		return false, nil
	case <-back:
	}
	lostAt := *outageAt.Load()
	s.log.Warn("the API server is back; relisting and replaying the gap", "gap", time.Since(lostAt).Round(time.Millisecond), "since", lostAt.UTC())
	if since := s.replayPoint(); since.IsZero() || lostAt.Before(since) || s.replayOver() {
		from := lostAt.Add(-time.Second)
		s.since.Store(&from)
	}
	return true, nil
}

// replayOver reports whether the start's replay is done, so that a later
// replay point (the outage) may replace it.
func (s *Source) replayOver() bool { return s.synced.Load() && s.initial.Load() == 0 }

// outage reports whether a watch error means the API server is out of
// reach, rather than a routine restart of the watch (an expired version).
func outage(err error) bool {
	return err != nil && !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) && !errors.Is(err, io.EOF)
}

// outageAfter is how long the API server must stay out of reach before
// its return restarts the watches: client-go rides out shorter blips by
// itself, and a relist costs the server.
const outageAfter = 3 * time.Second

// watchdog asks the API server whether it is ready every second. After
// outageAfter of failures it marks the watches lost; once the server
// answers again it closes back, so that the source relists at once rather
// than after client-go's watch backoff (up to a minute after a long
// outage). Reflectors retry a failed watch silently, so this is how the
// source learns of an outage at all.
func (s *Source) watchdog(ctx context.Context, markLost func(time.Time, string), lostAt func() *time.Time, back chan<- struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var failing time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.opts.Probe(ctx)
		switch {
		case err != nil && failing.IsZero():
			failing = time.Now()
		case err != nil && time.Since(failing) >= outageAfter:
			markLost(failing, "API server unreachable: "+err.Error())
		case err == nil && lostAt() != nil:
			close(back)
			return
		case err == nil:
			failing = time.Time{}
		}
	}
}

// informers starts one informer per resource, each handing changes to the
// queue, and returns their synced checks.
func (s *Source) informers(ctx context.Context, onError cache.WatchErrorHandler, wg *sync.WaitGroup) ([]cache.InformerSynced, error) {
	var synced []cache.InformerSynced
	for _, r := range s.resources {
		// One factory pair per resource, so each can have its own server-side filter.
		tweak := func(o *metav1.ListOptions) { o.FieldSelector = r.fieldSelector() }
		factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(s.client, s.opts.Resync, metav1.NamespaceAll, tweak)
		var inf cache.SharedIndexInformer
		transform := s.transform(r)
		r.watchedFrom = time.Time{}
		if isEvent(r.gvr) && s.replayPoint().IsZero() {
			r.watchedFrom = time.Now()
			inf = s.eventsFromNow(r, tweak)
		}
		if r.gvr == secrets && s.opts.Metadata != nil {
			r.metadataOnly = true
			transform = metadataOnly
			inf = metadatainformer.NewFilteredSharedInformerFactory(s.opts.Metadata, s.opts.Resync, metav1.NamespaceAll, tweak).
				ForResource(r.gvr).Informer()
			if err := inf.AddIndexers(cache.Indexers{helmReleaseIndex: indexHelmRelease}); err != nil {
				return nil, fmt.Errorf("kubernetes source %q: watch %s: %w", s.name, r.gvr, err)
			}
		}
		if inf == nil && s.opts.Typed != nil {
			typed := informers.NewSharedInformerFactoryWithOptions(s.opts.Typed, s.opts.Resync, informers.WithTweakListOptions(tweak))
			if gi, err := typed.ForResource(r.gvr); err == nil {
				inf = gi.Informer()
			}
		}
		if inf == nil {
			inf = factory.ForResource(r.gvr).Informer()
		}
		// The cache keeps of each object only what r's filters and checks
		// read (see transform).
		if err := inf.SetTransform(transform); err != nil {
			return nil, fmt.Errorf("kubernetes source %q: watch %s: %w", s.name, r.gvr, err)
		}
		if err := inf.SetWatchErrorHandler(func(rf *cache.Reflector, err error) {
			cache.DefaultWatchErrorHandler(ctx, rf, err)
			onError(rf, err)
		}); err != nil {
			return nil, fmt.Errorf("kubernetes source %q: watch %s: %w", s.name, r.gvr, err)
		}
		reg, err := inf.AddEventHandler(s.handler(r))
		if err != nil {
			return nil, fmt.Errorf("kubernetes source %q: watch %s: %w", s.name, r.gvr, err)
		}
		synced = append(synced, reg.HasSynced)
		r.store = inf.GetIndexer()
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	return synced, nil
}

// handler only enqueues. Objects listed at startup, resyncs (same
// resourceVersion) and objects outside the filters are dropped here, so the
// queue holds only real changes.
func (s *Source) handler(r *resource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, isInInitialList bool) {
			o, ok := obj.(runtime.Object)
			if !ok {
				return
			}
			typ := event.Create
			if !isInInitialList && !r.watchedFrom.IsZero() {
				keep, update := unlisted(o, r.watchedFrom)
				if !keep {
					return
				}
				if update {
					typ = event.Update
				}
			}
			if isInInitialList {
				s.initial.Add(1)
			}
			s.push(item{res: r, typ: typ, obj: o, initial: isInInitialList})
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(runtime.Object)
			n, ok2 := newObj.(runtime.Object)
			if ok1 && ok2 && resourceVersion(o) != resourceVersion(n) {
				s.push(item{res: r, typ: event.Update, obj: n, old: o})
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(runtime.Object); ok {
				s.push(item{res: r, typ: event.Delete, obj: o})
			}
		},
	}
}

// objectKey names one object of one resource; recheck keys are apart, so
// that a deferred look does not wait in line with live changes.
type objectKey struct {
	res             *resource
	namespace, name string
	recheck         bool
}

func keyOf(it item) objectKey {
	k := objectKey{res: it.res, recheck: it.recheck}
	if m, err := meta.Accessor(it.obj); err == nil {
		k.namespace, k.name = m.GetNamespace(), m.GetName()
	}
	return k
}

// push queues a change after the ones before it of the same object.
func (s *Source) push(it item) {
	k := keyOf(it)
	s.pendMu.Lock()
	s.pending[k] = append(s.pending[k], it)
	s.pendMu.Unlock()
	s.queue.Add(k)
}

// later queues a recheck after wait; a newer one of the object replaces it.
func (s *Source) later(it item, wait time.Duration) {
	k := keyOf(it)
	it.due = time.Now().Add(wait)
	s.pendMu.Lock()
	s.pending[k] = []item{it}
	s.pendMu.Unlock()
	s.queue.AddAfter(k, wait)
}

func (s *Source) processNext(ctx context.Context, emit func(context.Context, event.Event)) bool {
	k, shutdown := s.queue.Get()
	if shutdown {
		return false
	}
	defer s.queue.Done(k)
	defer s.queue.Forget(k)
	s.pendMu.Lock()
	items := s.pending[k]
	if len(items) == 1 && items[0].recheck && time.Now().Before(items[0].due) {
		// An earlier recheck's timer: this one is not due yet.
		s.pendMu.Unlock()
		s.queue.AddAfter(k, time.Until(items[0].due))
		return true
	}
	delete(s.pending, k)
	s.pendMu.Unlock()
	for _, it := range items {
		s.process(ctx, emit, it)
	}
	return true
}

// process turns one change into its events.
func (s *Source) process(ctx context.Context, emit func(context.Context, event.Event), it item) {
	if it.initial {
		defer func() {
			if s.initial.Add(-1) == 0 && s.synced.Load() {
				s.replayDone()
			}
		}()
	}
	if it.recheck {
		if ev, ok := s.recheck(it); ok {
			emit(ctx, ev)
		}
		return
	}
	c, err := it.unstructured()
	if err != nil {
		s.log.Error("cannot read object", "resource", it.res.gvr.String(), "err", err)
		return
	}
	for _, ev := range s.toEvents(c) {
		emit(ctx, ev)
	}
	if c.typ == event.Create && (!c.initial || s.after(c.obj.GetCreationTimestamp().Time)) && c.res.matches(c.obj) {
		if ev, ok := s.recommendations(ctx, c.obj); ok {
			emit(ctx, ev)
		}
	}
}

// toEvents filters a change and turns it into events: the change itself
// (create, update, delete, a Warning Event) and, for pods, Deployments and
// Jobs watched for errors, a health transition.
func (s *Source) toEvents(c change) []event.Event {
	r, obj := c.res, c.obj
	if !r.matches(obj) {
		return nil
	}
	replay := s.after(obj.GetCreationTimestamp().Time)
	var out []event.Event
	if !c.initial || replay {
		if ev, ok := s.toEvent(c); ok {
			out = append(out, ev)
		}
	}
	h, tracked := healthOf(obj)
	if !tracked || !r.events[event.Error] {
		return out
	}
	_, helm := helmRevisionOf(obj)
	if helm && !r.latestHelmRevision(obj) {
		return out
	}
	if h.unknown {
		return out
	}
	var was health
	switch {
	case c.initial:
		// After a restart or hand-over: resolve what recovered meanwhile
		// (the alerting pipeline ignores a resolution it has no alert for), and report
		// failures that began after the replay point.
		if h.failing && !s.after(h.since) {
			return out
		}
		was = health{failing: !h.failing}
	case c.typ == event.Update:
		was, _ = healthOf(c.old)
		if was.unknown {
			// What came before the unknown state is gone: report the
			// state as news; the alerting pipeline keeps one alert per object and
			// ignores a resolution it has no alert for.
			was = health{failing: !h.failing, reason: h.reason}
		}
	case c.typ == event.Delete:
		was, h = h, health{reason: "Deleted"}
		if !was.failing {
			return out
		}
	case c.typ == event.Create:
		was = health{}
	}
	switch {
	case h.failing && h.deferred && isApplication(obj) && c.typ == event.Update && was.deferred && was.reason == h.reason:
		// Still OutOfSync: the controller rewrites an Application's status
		// at every comparison, which must not restart the grace period.
		return out
	case h.failing && h.deferred:
		// Only a pending state that lasts is a failure: look again later.
		wait := s.graceOf(obj)
		if c.initial && !h.since.IsZero() {
			wait = max(0, time.Until(h.since.Add(wait)))
		}
		s.later(item{res: r, obj: c.obj, recheck: true}, wait)
		return out
	case was.failing == h.failing && !was.deferred:
		return out
	}
	// From a deferred state, either way is news: a failure the grace
	// period hid, or a resolution (ignored by the alerting pipeline if nothing was raised).

	return append(out, s.transition(obj, c.typ, was, h))
}

// transition is the event of a health change from was to h.
func (s *Source) transition(obj *unstructured.Unstructured, typ event.Type, was, h health) event.Event {
	ev := s.base(obj, event.Error)
	if _, ok := helmRevisionOf(obj); ok {
		ev.Object = helmSubject(obj)
	}
	if h.failing && isApplication(obj) {
		s.applicationDetails(&ev, obj)
	}
	ev.Reason, ev.Message = h.reason, h.message
	// One failure (or recovery) is one occurrence, however often it is
	// seen: its start, as the object records it, identifies it.
	at := obj.GetResourceVersion()
	if !h.since.IsZero() {
		at = h.since.UTC().Format(time.RFC3339)
	}
	ev.ID = string(obj.GetUID()) + "|" + map[bool]string{true: "failing", false: "resolved"}[h.failing] + "|" + at
	if typ == event.Delete {
		ev.ID = string(obj.GetUID()) + "|deleted"
	}
	if h.failing {
		ev.Transition, ev.Level = event.Failing, event.Critical
	} else {
		ev.Transition, ev.Level, ev.Reason = event.Resolved, event.Info, was.reason
		if typ == event.Delete {
			ev.Message = "the object was deleted"
		}
	}
	return ev
}

// recheck reports a deferred failure that still stands: the object is
// unchanged since it was queued and is still the newest Helm revision.
func (s *Source) recheck(it item) (event.Event, bool) {
	queued, ok := it.obj.(*unstructured.Unstructured)
	if !ok || it.res.store == nil {
		return event.Event{}, false
	}
	cur, exists, err := it.res.store.Get(queued)
	if err != nil || !exists {
		return event.Event{}, false
	}
	c, err := item{res: it.res, obj: cur.(runtime.Object)}.unstructured()
	if err != nil {
		return event.Event{}, false
	}
	h, _ := healthOf(c.obj)
	if isApplication(c.obj) {
		// An Application's status changes at every comparison; what counts
		// is that it stayed in the same deferred state.
		was, _ := healthOf(queued)
		if !h.failing || !h.deferred || h.reason != was.reason {
			return event.Event{}, false
		}
		return s.transition(c.obj, event.Update, health{}, h), true
	}
	if c.obj.GetResourceVersion() != queued.GetResourceVersion() || !it.res.latestHelmRevision(c.obj) || !h.failing {
		return event.Event{}, false
	}
	return s.transition(c.obj, event.Update, health{}, h), true
}

func (s *Source) base(obj *unstructured.Unstructured, typ event.Type) event.Event {
	return event.Event{
		Source:  s.name,
		Cluster: s.cluster,
		Type:    typ,
		Level:   event.Info,
		Object:  event.Object{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()},
		UID:     string(obj.GetUID()),
		// Silences match them (a Kubernetes Event's own labels say
		// nothing of its object: involvedObject replaces Object then).
		ObjectLabels: obj.GetLabels(),
		// An object is created and deleted once; each update (and each
		// count of a Kubernetes Event) has its resourceVersion.
		ID:   occurrenceID(obj, typ),
		Time: time.Now(),
	}
}

func occurrenceID(obj *unstructured.Unstructured, typ event.Type) string {
	switch typ {
	case event.Create, event.Delete:
		return string(obj.GetUID()) + "|" + string(typ)
	}
	return string(obj.GetUID()) + "|" + string(typ) + "|" + obj.GetResourceVersion()
}

// toEvent turns a matching change into its plain event, if its type is selected.
func (s *Source) toEvent(c change) (event.Event, bool) {
	r, obj := c.res, c.obj
	ev := s.base(obj, c.typ)
	if isEvent(r.gvr) {
		// A core/v1 or events.k8s.io Event reports on its involved object.
		if c.typ != event.Create && c.typ != event.Update {
			return event.Event{}, false
		}
		typ, _, _ := unstructured.NestedString(obj.Object, "type")
		if typ != "Warning" {
			return event.Event{}, false
		}
		ev.Type, ev.Level = event.Error, event.Warn
		ev.Object, ev.ObjectLabels = involvedObject(obj), nil
		ev.Reason, _, _ = unstructured.NestedString(obj.Object, "reason")
		ev.Message = eventMessage(obj)
		if (r.reasons != nil && !r.reasons[ev.Reason]) || (r.message != nil && !r.message.MatchString(ev.Message)) {
			return event.Event{}, false
		}
	}
	if !r.events[ev.Type] {
		return event.Event{}, false
	}
	if ev.Type == event.Update && !isEvent(r.gvr) {
		changed := r.changes(c.old, obj)
		if len(changed) == 0 {
			return event.Event{}, false
		}
		ev.Fields = changed
	}
	if ev.Type == event.Delete {
		ev.Level = event.Warn
	}
	return ev, true
}

// fieldSelector filters on the server what the agent never reports: a
// source that only wants Warning Events does not cache the Normal ones.
func (r *resource) fieldSelector() string {
	if isEvent(r.gvr) && len(r.events) == 1 && r.events[event.Error] {
		return "type=Warning"
	}
	return ""
}

func (r *resource) matches(obj *unstructured.Unstructured) bool {
	ns := obj.GetNamespace()
	if r.own[ns+"/"+obj.GetName()] {
		return false
	}
	if len(r.include) > 0 && !anyMatch(r.include, ns) {
		return false
	}
	if anyMatch(r.exclude, ns) {
		return false
	}
	if r.name != nil && !r.name.MatchString(obj.GetName()) {
		return false
	}
	return r.labels.Matches(labels.Set(obj.GetLabels())) && r.annots.Matches(labels.Set(obj.GetAnnotations()))
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func isEvent(gvr schema.GroupVersionResource) bool {
	return gvr.Resource == "events" && (gvr.Group == "" || gvr.Group == "events.k8s.io")
}

func involvedObject(obj *unstructured.Unstructured) event.Object {
	ref, ok, _ := unstructured.NestedMap(obj.Object, "involvedObject")
	if !ok {
		ref, _, _ = unstructured.NestedMap(obj.Object, "regarding") // events.k8s.io/v1
	}
	str := func(k string) string { v, _ := ref[k].(string); return v }
	return event.Object{APIVersion: str("apiVersion"), Kind: str("kind"), Namespace: str("namespace"), Name: str("name")}
}

func eventMessage(obj *unstructured.Unstructured) string {
	for _, f := range []string{"message", "note"} {
		if m, ok, _ := unstructured.NestedString(obj.Object, f); ok && m != "" {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

func resourceVersion(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// unstructured converts the item's objects for the filters. Typed objects
// from informers carry no apiVersion and kind; the scheme knows them.
func (it item) unstructured() (change, error) {
	c := change{res: it.res, typ: it.typ, initial: it.initial}
	var err error
	if c.obj, err = toUnstructured(it.obj); err != nil {
		return c, err
	}
	if it.old != nil {
		c.old, err = toUnstructured(it.old)
	}
	return c, err
}

func toUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return o, nil
	case *cachedPod:
		return o.unstructured()
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	if gvks, _, err := scheme.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 && u.GetKind() == "" {
		u.SetAPIVersion(gvks[0].GroupVersion().String())
		u.SetKind(gvks[0].Kind)
	}
	return u, nil
}

// maxValueLen bounds one value in an update's before → after diff.
const maxValueLen = 120

// changes lists what an update changed: the configured fields with their
// old and new values, or, without fields, a summary of the top-level parts
// that changed. Metadata bookkeeping (resourceVersion, managedFields) alone
// is a no-op and gives nothing.
func (r *resource) changes(old, cur *unstructured.Unstructured) []event.Field {
	if old == nil {
		return nil
	}
	var out []event.Field
	if len(r.fields) > 0 {
		for _, p := range r.fields {
			before, _ := p.Get(old.Object)
			after, _ := p.Get(cur.Object)
			if !equality.Semantic.DeepEqual(before, after) {
				out = append(out, event.Field{Name: p.String(), Value: compact(before) + " → " + compact(after)})
			}
		}
		return out
	}
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		c.SetResourceVersion("")
		c.SetManagedFields(nil)
		return c.Object
	}
	o, n := strip(old), strip(cur)
	var parts []string
	for _, k := range []string{"metadata", "spec", "status", "data", "stringData", "rules", "subsets"} {
		if !equality.Semantic.DeepEqual(o[k], n[k]) {
			parts = append(parts, k)
		}
	}
	if len(parts) == 0 && !equality.Semantic.DeepEqual(o, n) {
		parts = append(parts, "other fields")
	}
	if len(parts) == 0 && r.metadataOnly && old.GetResourceVersion() != cur.GetResourceVersion() {
		// The agent does not see Secret contents; a new version with the
		// same metadata means they changed.
		parts = append(parts, "data (values not shown)")
	}
	if len(parts) > 0 {
		out = append(out, event.Field{Name: "Changed", Value: strings.Join(parts, ", ")})
	}
	return out
}

func compact(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > maxValueLen {
		s = s[:maxValueLen-1] + "…"
	}
	return s
}
