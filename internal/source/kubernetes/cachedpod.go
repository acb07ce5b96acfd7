package kubernetes

import (
	"maps"
	"slices"
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// cachedPod is a pod's minimal copy (keep): pods are most of a large
// cluster's objects, and a corev1.Pod is about 1.2 KiB even when all but
// a few of its fields are empty, its labels map a few hundred bytes more.
// So a pod's copy is this small struct, with its labels shared with every
// pod that has the same ones (the replicas of a ReplicaSet do), and the
// status of only the containers that wait. It is a runtime.Object and a
// metav1.Object, as the informer's store needs; toUnstructured reads it as
// the pod it was made from, less what was left out.
type cachedPod struct {
	// ObjectMeta is keep.meta's, less the labels.
	metav1.ObjectMeta
	labels labelSet
	phase  corev1.PodPhase
	reason string
	// ready is the Ready condition's status ("" without one) and readySince
	// its last transition.
	ready      corev1.ConditionStatus
	readySince metav1.Time
	// waiting are the containers that wait, init containers first.
	waiting []waitingContainer
	// containers are kept only for the recommendations that read them.
	containers []cachedContainer
}

// waitingContainer is a container that waits, and why.
type waitingContainer struct {
	init            bool
	name            string
	reason, message string
}

// cachedContainer is what the image and limit recommendations read.
type cachedContainer struct {
	name, image string
	limits      corev1.ResourceList
}

// pod keeps the phase, the Ready condition and the waiting containers
// (healthOf), and the containers' names, images and limits when a
// recommendation reads them.
func (k keep) pod(p *corev1.Pod) *cachedPod {
	out := &cachedPod{ObjectMeta: k.meta(&p.ObjectMeta), phase: p.Status.Phase, reason: p.Status.Reason}
	out.labels, out.Labels = labelSetOf(out.Labels), nil
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.ready, out.readySince = c.Status, c.LastTransitionTime
		}
	}
	for _, s := range p.Status.InitContainerStatuses {
		if w := s.State.Waiting; w != nil {
			out.waiting = append(out.waiting, waitingContainer{init: true, name: s.Name, reason: w.Reason, message: w.Message})
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil {
			out.waiting = append(out.waiting, waitingContainer{name: s.Name, reason: w.Reason, message: w.Message})
		}
	}
	if k.containers && len(p.Spec.Containers) > 0 {
		out.containers = make([]cachedContainer, len(p.Spec.Containers))
		for i, c := range p.Spec.Containers {
			out.containers[i] = cachedContainer{name: c.Name, image: c.Image, limits: c.Resources.Limits}
		}
	}
	return out
}

// GetLabels is the pod's labels, a new map.
func (p *cachedPod) GetLabels() map[string]string { return p.labels.get() }

// SetLabels replaces the pod's labels.
func (p *cachedPod) SetLabels(l map[string]string) { p.labels = labelSetOf(l) }

// GetObjectKind is empty, as for the typed objects of informers.
func (p *cachedPod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies the pod.
func (p *cachedPod) DeepCopyObject() runtime.Object {
	out := *p
	p.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.waiting = slices.Clone(p.waiting)
	out.containers = slices.Clone(p.containers)
	for i := range out.containers {
		out.containers[i].limits = p.containers[i].limits.DeepCopy()
	}
	return &out
}

// unstructured is the pod as the API server would send what was kept.
func (p *cachedPod) unstructured() (*unstructured.Unstructured, error) {
	m := p.ObjectMeta
	m.Labels = p.labels.get()
	meta, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&m)
	if err != nil {
		return nil, err
	}
	status := map[string]any{}
	if p.phase != "" {
		status["phase"] = string(p.phase)
	}
	if p.reason != "" {
		status["reason"] = p.reason
	}
	if p.ready != "" {
		cond := map[string]any{"type": string(corev1.PodReady), "status": string(p.ready)}
		if t := p.readySince.ToUnstructured(); t != nil {
			cond["lastTransitionTime"] = t
		}
		status["conditions"] = []any{cond}
	}
	for _, w := range p.waiting {
		field := "containerStatuses"
		if w.init {
			field = "initContainerStatuses"
		}
		waiting := map[string]any{}
		if w.reason != "" {
			waiting["reason"] = w.reason
		}
		if w.message != "" {
			waiting["message"] = w.message
		}
		list, _ := status[field].([]any)
		status[field] = append(list, map[string]any{"name": w.name, "state": map[string]any{"waiting": waiting}})
	}
	obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}
	if len(p.containers) > 0 {
		containers := make([]any, len(p.containers))
		for i, c := range p.containers {
			limits := map[string]any{}
			for r, q := range c.limits {
				limits[string(r)] = q.String()
			}
			container := map[string]any{"name": c.name, "image": c.image}
			if len(limits) > 0 {
				container["resources"] = map[string]any{"limits": limits}
			}
			containers[i] = container
		}
		obj["spec"] = map[string]any{"containers": containers}
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// labelSet is a set of labels shared by every cached object that has the
// same ones: one string, "key\x00value\x00…" in key order, interned (keys
// and values cannot hold a NUL). Interned strings are freed once no
// object holds them, so a cluster's churn does not grow the table.
type labelSet struct{ h unique.Handle[string] }

// labelSetOf interns l; nil and empty maps are the empty set.
func labelSetOf(l map[string]string) labelSet {
	if len(l) == 0 {
		return labelSet{}
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(l)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return labelSet{unique.Make(b.String())}
}

// get is the set as a new map, nil if empty.
func (s labelSet) get() map[string]string {
	if s.h == (unique.Handle[string]{}) {
		return nil
	}
	parts := strings.Split(strings.TrimSuffix(s.h.Value(), "\x00"), "\x00")
	out := make(map[string]string, len(parts)/2)
	for i := 0; i+1 < len(parts); i += 2 {
		out[parts[i]] = parts[i+1]
	}
	return out
}
