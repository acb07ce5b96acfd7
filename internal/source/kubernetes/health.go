package kubernetes

import (
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// health is a workload's state for transition alerts.
type health struct {
	failing bool
	reason  string
	message string
	// since is when the current state began, where the object records it.
	since time.Time
	// deferred failures count only once they last (a pending Helm release).
	deferred bool
	// unknown states say nothing either way (a Flux reconciliation in
	// progress): no transition from or to them.
	unknown bool
}

// failingWaitReasons are container waiting reasons that mean the pod is broken.
var failingWaitReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true,
	"CreateContainerConfigError": true, "InvalidImageName": true, "CreateContainerError": true,
}

// deploymentGrace keeps a new Deployment's first rollout from counting as an outage.
const deploymentGrace = 30 * time.Second

// healthOf reports the health of pods, Deployments, Jobs, Helm releases,
// Flux Kustomizations and Argo CD Applications and ApplicationSets; ok is
// false for other kinds.
func healthOf(obj *unstructured.Unstructured) (h health, ok bool) {
	switch obj.GetKind() {
	case "Pod":
		ready := condition(obj, "Ready")
		h.since = ready.since
		statuses, _, _ := unstructured.NestedSlice(obj.Object, "status", "containerStatuses")
		init, _, _ := unstructured.NestedSlice(obj.Object, "status", "initContainerStatuses")
		for _, s := range append(init, statuses...) {
			m, _ := s.(map[string]any)
			reason, _, _ := unstructured.NestedString(m, "state", "waiting", "reason")
			if failingWaitReasons[reason] {
				msg, _, _ := unstructured.NestedString(m, "state", "waiting", "message")
				name, _, _ := unstructured.NestedString(m, "name")
				return health{failing: true, reason: reason, message: "container " + name + ": " + msg, since: ready.since}, true
			}
		}
		if phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase"); phase == "Failed" {
			reason, _, _ := unstructured.NestedString(obj.Object, "status", "reason")
			if reason == "" {
				reason = "Failed"
			}
			return health{failing: true, reason: reason, since: ready.since}, true
		}
		return h, true
	case "Deployment":
		if p := condition(obj, "Progressing"); p.status == "False" && p.reason == "ProgressDeadlineExceeded" {
			return health{failing: true, reason: p.reason, message: p.message, since: p.since}, true
		}
		a := condition(obj, "Available")
		if a.status == "False" && a.since.Sub(obj.GetCreationTimestamp().Time) > deploymentGrace {
			return health{failing: true, reason: "Unavailable", message: a.message, since: a.since}, true
		}
		return health{since: a.since}, true
	case "Secret":
		if _, ok := helmRevisionOf(obj); ok {
			return helmHealth(obj), true
		}
		return h, false
	case "Kustomization":
		if isFluxKustomization(obj) {
			return kustomizationHealth(obj), true
		}
		return h, false
	case "Application":
		if isApplication(obj) {
			return applicationHealth(obj), true
		}
		return h, false
	case "ApplicationSet":
		if isApplicationSet(obj) {
			return applicationSetHealth(obj), true
		}
		return h, false
	case "Job":
		if f := condition(obj, "Failed"); f.status == "True" {
			return health{failing: true, reason: orDefault(f.reason, "Failed"), message: f.message, since: f.since}, true
		}
		c := condition(obj, "Complete")
		return health{since: c.since}, true
	}
	return h, false
}

type cond struct {
	status, reason, message string
	since                   time.Time
}

func condition(obj *unstructured.Unstructured, typ string) cond {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if t, _ := m["type"].(string); t != typ {
			continue
		}
		var out cond
		out.status, _ = m["status"].(string)
		out.reason, _ = m["reason"].(string)
		out.message, _ = m["message"].(string)
		if ts, _ := m["lastTransitionTime"].(string); ts != "" {
			out.since, _ = time.Parse(time.RFC3339, ts)
		}
		return out
	}
	return cond{}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
