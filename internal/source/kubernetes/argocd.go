package kubernetes

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// An Argo CD Application's health, as its application controller records
// it in status: a failed sync operation, health Degraded or Missing, and
// OutOfSync for longer than settings.argocd.outOfSyncAfter are failures;
// Healthy and Synced is recovered; anything else (Progressing, Suspended,
// a sync under way, OutOfSync not for long yet) says nothing either way.

// maxFailingResources bounds the resources listed in an alert.
const maxFailingResources = 10

// isApplication tells Argo CD's Application from other kinds of that name.
func isApplication(obj *unstructured.Unstructured) bool {
	return strings.HasPrefix(obj.GetAPIVersion(), argocd.Group+"/") && obj.GetKind() == "Application"
}

func isApplicationSet(obj *unstructured.Unstructured) bool {
	return strings.HasPrefix(obj.GetAPIVersion(), argocd.Group+"/") && obj.GetKind() == "ApplicationSet"
}

func applicationHealth(obj *unstructured.Unstructured) health {
	app, err := argocd.FromUnstructured(obj)
	if err != nil {
		return health{unknown: true}
	}
	st := app.Status
	since := app.Since()
	if op := st.OperationState; op != nil && (op.Phase == argocd.PhaseFailed || op.Phase == argocd.PhaseError) &&
		!(st.Health.Status == argocd.Healthy && st.Sync.Status == argocd.Synced) {
		at := op.StartedAt.Time
		if op.FinishedAt != nil {
			at = op.FinishedAt.Time
		}
		return health{failing: true, reason: "SyncFailed", message: applicationMessage(app, "sync "+strings.ToLower(op.Phase)+": "+op.Message), since: at}
	}
	switch {
	case st.Health.Status == argocd.Degraded || st.Health.Status == argocd.Missing:
		return health{failing: true, reason: st.Health.Status, message: applicationMessage(app, st.Health.Message), since: since}
	case st.Health.Status == argocd.Healthy && st.Sync.Status == argocd.Synced:
		return health{since: since}
	case st.Sync.Status == argocd.OutOfSync && (st.OperationState == nil || st.OperationState.Done()) && app.Operation == nil:
		// OutOfSync since the last comparison: only one that lasts is news.
		// Argo CD records no time for it; the grace runs from when it is seen.
		return health{failing: true, deferred: true, reason: argocd.OutOfSync,
			message: applicationMessage(app, "out of sync with "+app.TargetRevision())}
	}
	return health{unknown: true, since: since}
}

// applicationSetHealth: an ApplicationSet whose generation failed reports
// it in its ErrorOccurred condition.
func applicationSetHealth(obj *unstructured.Unstructured) health {
	c := condition(obj, "ErrorOccurred")
	switch c.status {
	case "True":
		return health{failing: true, reason: orDefault(c.reason, "ErrorOccurred"), message: c.message, since: c.since}
	case "False":
		return health{since: c.since}
	}
	return health{unknown: true}
}

// applicationMessage is what an alert says about app: the cause, then
// its resources that are not healthy or not in sync.
func applicationMessage(app *argocd.Application, cause string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(cause))
	n := 0
	for _, r := range app.Status.Resources {
		h := r.HealthStatus()
		if h != argocd.Degraded && h != argocd.Missing && r.Status != argocd.OutOfSync {
			continue
		}
		if n++; n > maxFailingResources {
			continue
		}
		line := fmt.Sprintf("\n• %s: %s", r.String(), strings.Join(nonEmpty(h, r.Status), ", "))
		if r.Health != nil && r.Health.Message != "" {
			line += ": " + r.Health.Message
		}
		b.WriteString(line)
	}
	if n > maxFailingResources {
		fmt.Fprintf(&b, "\n… and %d more", n-maxFailingResources)
	}
	return b.String()
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// applicationDetails adds an Application's revision, sync and health
// status and its follow-up buttons to a failing event.
func (s *Source) applicationDetails(ev *event.Event, obj *unstructured.Unstructured) {
	app, err := argocd.FromUnstructured(obj)
	if err != nil {
		return
	}
	rev := app.Status.Sync.Revision
	if rev == "" {
		rev = strings.Join(app.Status.Sync.Revisions, ", ")
	}
	ev.Fields = append(ev.Fields,
		event.Field{Name: "Revision", Value: orDefault(rev, "(none yet)")},
		event.Field{Name: "Sync", Value: orDefault(app.Status.Sync.Status, "Unknown")},
		event.Field{Name: "Health", Value: orDefault(app.Status.Health.Status, "Unknown")},
	)
	if app.Spec.Project != "" {
		ev.Fields = append(ev.Fields, event.Field{Name: "Project", Value: app.Spec.Project})
	}
	ns := obj.GetNamespace()
	cmd := func(verb ...string) []string {
		return append(append([]string{"argocd", "app"}, verb...), obj.GetName(), "-n", ns)
	}
	ev.Buttons = []event.Button{
		{Label: "Sync", Command: cmd("sync"), Primary: true},
		{Label: "Diff", Command: cmd("diff")},
		{Label: "Refresh", Command: cmd("refresh")},
		{Label: "History", Command: cmd("history")},
	}
	if s.argo.URL != "" {
		ev.Buttons = append(ev.Buttons, event.Button{Label: "View in Argo CD", URL: argocd.URL(s.argo.URL, ns, obj.GetName())})
	}
}

// argoSettings are a source's Argo CD settings, with defaults.
func argoSettings(cfg *config.KubernetesSource) config.ArgoCDAlerts {
	a := cfg.ArgoCD
	if a.OutOfSyncAfter.D() <= 0 {
		a.OutOfSyncAfter = config.Duration(config.DefaultOutOfSyncAfter)
	}
	return a
}

// graceOf is how long a deferred failure of obj must last.
func (s *Source) graceOf(obj *unstructured.Unstructured) time.Duration {
	if isApplication(obj) {
		return s.argo.OutOfSyncAfter.D()
	}
	return s.opts.PendingGrace
}
