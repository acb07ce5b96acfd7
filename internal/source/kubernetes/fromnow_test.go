package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/testenv"
)

// warning creates a Warning Event on pod in ns that last occurred at last.
func warning(t *testing.T, cs kubernetes.Interface, ns, name, pod string, last time.Time) *corev1.Event {
	t.Helper()
	ev, err := cs.CoreV1().Events(ns).Create(t.Context(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name},
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: pod},
		Type:           corev1.EventTypeWarning, Reason: "BackOff", Message: "Back-off restarting failed container " + pod,
		FirstTimestamp: metav1.NewTime(last), LastTimestamp: metav1.NewTime(last), Count: 1,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return ev
}

// TestEventsAreWatchedFromNow starts a Warning Events source on a cluster
// that already has Warnings: with nothing to replay, it lists none of
// them (its cache stays empty), yet it reports an old Event that occurs
// again, as an update, and a new one; an old Event that does not occur
// again is never reported. With a replay point, the Events are listed
// and what the point covers is replayed.
func TestEventsAreWatchedFromNow(t *testing.T) {
	testenv.Skip(t, env)
	for _, typed := range []bool{false, true} {
		t.Run(fmt.Sprintf("typed=%v", typed), func(t *testing.T) {
			cs, err := kubernetes.NewForConfig(env.Config)
			require.NoError(t, err)
			ns := fmt.Sprintf("from-now-%v", typed)
			require.NoError(t, env.CreateNamespace(t.Context(), ns))
			before := time.Now().Add(-time.Hour)
			warning(t, cs, ns, "quiet", "web-1", before)
			again := warning(t, cs, ns, "again", "web-2", before)
			// An Event's times are whole seconds: what the source starts
			// after is a second later.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))

			opts := Options{Workers: 2}
			if typed {
				opts.Typed = cs
			}
			cfg := config.Source{Name: "warnings", Type: "kubernetes", Kubernetes: &config.KubernetesSource{
				Namespaces: config.Namespaces{Include: []string{ns}},
				Resources:  []config.Resource{{Type: "v1/events", Events: []string{"error"}}}}}
			src, out := startSource(t, cfg, opts)
			require.Empty(t, src.resources[0].store.ListKeys(), "the Events were listed")

			again.Count, again.LastTimestamp = 2, metav1.Now()
			_, err = cs.CoreV1().Events(ns).Update(t.Context(), again, metav1.UpdateOptions{})
			require.NoError(t, err)
			warning(t, cs, ns, "new", "web-3", time.Now())
			require.Eventually(t, func() bool { return len(out.events()) >= 2 }, 10*time.Second, 20*time.Millisecond)
			got := map[string]string{}
			for _, ev := range out.events() {
				kind, _, _ := strings.Cut(strings.TrimPrefix(ev.ID, string(ev.UID)+"|"), "|")
				got[ev.Object.Name] = kind
			}
			require.Equal(t, map[string]string{"web-2": "update", "web-3": "create"}, got)

			// A relist (after an expired watch) brings every Event back:
			// only what occurred since the watch began is news.
			h := src.handler(src.resources[0])
			out.reset()
			quiet, err := cs.CoreV1().Events(ns).Get(t.Context(), "quiet", metav1.GetOptions{})
			require.NoError(t, err)
			h.OnAdd(quiet, false)
			require.Zero(t, src.queue.Len(), "an old Event a relist brought back was queued")

			// With a replay point, the Events are listed and replayed.
			opts.Since = before.Add(-time.Minute)
			src, out = startSource(t, cfg, opts)
			var keys []string
			for _, k := range src.resources[0].store.ListKeys() {
				if strings.HasPrefix(k, ns+"/") {
					keys = append(keys, k)
				}
			}
			require.ElementsMatch(t, []string{ns + "/quiet", ns + "/again", ns + "/new"}, keys, "the Events were not listed")
			require.Eventually(t, func() bool { return len(out.events()) == 3 }, 10*time.Second, 20*time.Millisecond)
		})
	}
}

// listed is a ListWatch that lists items, three pages' worth, and
// records the options of each list.
func listed(calls *[]metav1.ListOptions) func(context.Context, metav1.ListOptions) (runtime.Object, error) {
	return func(_ context.Context, o metav1.ListOptions) (runtime.Object, error) {
		*calls = append(*calls, o)
		l := &corev1.EventList{ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "page-2", RemainingItemCount: ptr.To[int64](2)},
			Items: []corev1.Event{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}}
		return l, nil
	}
}

func TestFromNowListsNothingFirst(t *testing.T) {
	var probes, lists []metav1.ListOptions
	lw := &fromNow{probe: listed(&probes), ListWatch: &cache.ListWatch{ListWithContextFunc: listed(&lists)}}
	first, err := lw.ListWithContext(t.Context(), metav1.ListOptions{ResourceVersion: "0", FieldSelector: "type=Warning"})
	require.NoError(t, err)
	l := first.(*corev1.EventList)
	require.Empty(t, l.Items)
	require.Equal(t, metav1.ListMeta{ResourceVersion: "42"}, l.ListMeta, "the watch starts at the list's resourceVersion, with no page to follow")
	require.Equal(t, []metav1.ListOptions{{Limit: 1}}, probes, "the probe reads one object, unfiltered")
	require.Empty(t, lists)

	relist, err := lw.ListWithContext(t.Context(), metav1.ListOptions{FieldSelector: "type=Warning"})
	require.NoError(t, err)
	require.Len(t, relist.(*corev1.EventList).Items, 1, "a relist is whole")
	require.Equal(t, []metav1.ListOptions{{FieldSelector: "type=Warning"}}, lists)
	require.True(t, lw.IsWatchListSemanticsUnSupported())
}

func TestUnlisted(t *testing.T) {
	from := time.Date(2026, 12, 7, 12, 0, 0, 500e6, time.UTC)
	ev := func(created, last time.Time) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}, LastTimestamp: metav1.NewTime(last)}
	}
	for name, tc := range map[string]struct {
		obj          runtime.Object
		keep, update bool
	}{
		"created since":                {ev(from.Add(time.Minute), from.Add(time.Minute)), true, false},
		"created in the same second":   {ev(from.Truncate(time.Second), from.Truncate(time.Second)), true, false},
		"older, occurred again":        {ev(from.Add(-time.Hour), from.Add(time.Minute)), true, true},
		"older, quiet since":           {ev(from.Add(-time.Hour), from.Add(-time.Minute)), false, true},
		"older, series observed since": {&corev1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(from.Add(-time.Hour))}, Series: &corev1.EventSeries{LastObservedTime: metav1.NewMicroTime(from.Add(time.Second))}}, true, true},
		"events.k8s.io, quiet since":   {&eventsv1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(from.Add(-time.Hour))}, EventTime: metav1.NewMicroTime(from.Add(-time.Hour))}, false, true},
		"events.k8s.io, series since":  {&eventsv1.Event{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(from.Add(-time.Hour))}, Series: &eventsv1.EventSeries{LastObservedTime: metav1.NewMicroTime(from.Add(time.Minute))}}, true, true},
		"unstructured, occurred again": {&unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"creationTimestamp": "2026-12-07T11:00:00Z"}, "lastTimestamp": "2026-12-07T12:01:00Z"}}, true, true},
		"unstructured, quiet since":    {&unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"creationTimestamp": "2026-12-07T11:00:00Z"}, "lastTimestamp": "2026-12-07T11:30:00Z"}}, false, true},
	} {
		t.Run(name, func(t *testing.T) {
			keep, update := unlisted(tc.obj, from)
			require.Equal(t, tc.keep, keep, "keep")
			if keep {
				require.Equal(t, tc.update, update, "update")
			}
		})
	}
}
