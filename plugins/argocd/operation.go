package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/executor"
)

// maxConflicts bounds the retries of a write that lost a race with the
// application controller, as Argo CD's SetAppOperation retries.
const maxConflicts = 5

// SyncOperation is the operation "argocd app sync" asks Argo CD's API
// server to set for app, with the CLI's default strategy (hook, no force):
// server/application Sync in Argo CD v3.6.1. The API server resolves a
// symbolic revision to a commit through its repo-server; kubechat has no
// repo-server, and writes the revision as given (the application
// controller resolves it when it syncs).
func SyncOperation(app *argocd.Application, username, revision string, prune, dryRun bool) *argocd.Operation {
	op := &argocd.Operation{
		Sync: &argocd.SyncOperation{
			Prune:        prune,
			DryRun:       dryRun,
			SyncStrategy: &argocd.SyncStrategy{Hook: &argocd.StrategyForce{}},
			Sources:      app.Spec.Sources,
		},
		InitiatedBy: argocd.Initiator{Username: username},
		Retry:       map[string]any{},
	}
	if app.MultiSource() {
		for _, s := range app.Spec.Sources {
			op.Sync.Revisions = append(op.Sync.Revisions, str(s, "targetRevision"))
		}
	} else {
		op.Sync.Source = app.Spec.Source
		op.Sync.Revision = firstNonEmpty(revision, str(app.Spec.Source, "targetRevision"))
	}
	if p := app.Spec.SyncPolicy; p != nil {
		op.Sync.SyncOptions = p.SyncOptions
		if p.Retry != nil {
			op.Retry = p.Retry
		}
	}
	return op
}

// RollbackOperation is the operation Argo CD's API server sets to roll
// app back to history entry h (server/application Rollback): a sync to
// the entry's revision and source with the apply strategy.
func RollbackOperation(app *argocd.Application, username string, h argocd.RevisionHistory, prune, dryRun bool) *argocd.Operation {
	var opts []string
	if p := app.Spec.SyncPolicy; p != nil {
		opts = p.SyncOptions
	}
	return &argocd.Operation{
		Sync: &argocd.SyncOperation{
			Revision:     h.Revision,
			Revisions:    h.Revisions,
			DryRun:       dryRun,
			Prune:        prune,
			SyncOptions:  opts,
			SyncStrategy: &argocd.SyncStrategy{Apply: &argocd.StrategyForce{}},
			Source:       h.Source,
			Sources:      h.Sources,
		},
		InitiatedBy: argocd.Initiator{Username: username},
		Retry:       map[string]any{},
	}
}

// username is who an operation is initiated by, as Argo CD records it.
func (r *run) username() string {
	who := firstNonEmpty(r.req.Caller.UserName, r.req.Caller.UserID, r.req.Identity.User)
	if r.req.Caller.Platform != "" {
		who += " (" + r.req.Caller.Platform + " via kubechat)"
	}
	return who
}

// sync runs "app sync": it sets the Application's operation, as Argo CD's
// API server does, and the reply follows it (Watch).
func (r *run) sync(ctx context.Context) (executor.Result, error) {
	return r.setOperation(ctx, func(a *argocd.Application) (*argocd.Operation, error) {
		if r.cmd.revision != "" && r.cmd.revision != firstNonEmpty(str(a.Spec.Source, "targetRevision"), "HEAD") &&
			a.Spec.SyncPolicy.AutomatedSync() && !r.cmd.dryRun {
			return nil, refuse("cannot sync to %s: auto-sync currently set to %s", r.cmd.revision, str(a.Spec.Source, "targetRevision"))
		}
		if r.cmd.revision != "" && a.MultiSource() {
			return nil, refuse("--revision: application %s has several sources; kubechat syncs them to their target revisions", qualified(a.Namespace, a.Name))
		}
		return SyncOperation(a, r.username(), r.cmd.revision, r.cmd.prune, r.cmd.dryRun), nil
	})
}

// rollback runs "app rollback": a sync to a history entry, as Argo CD's
// API server sets it.
func (r *run) rollback(ctx context.Context) (executor.Result, error) {
	return r.setOperation(ctx, func(a *argocd.Application) (*argocd.Operation, error) {
		if a.Spec.SyncPolicy.AutomatedSync() {
			return nil, refuse("rollback cannot be initiated when auto-sync is enabled")
		}
		for _, h := range a.Status.History {
			if h.ID == r.cmd.id {
				if len(h.Source) == 0 && len(h.Sources) == 0 {
					return nil, refuse("history entry %d records no source; sync to its revision instead", h.ID)
				}
				return RollbackOperation(a, r.username(), h, r.cmd.prune, r.cmd.dryRun), nil
			}
		}
		return nil, refuse("application %s does not have deployment with id %d (see app history)", qualified(a.Namespace, a.Name), r.cmd.id)
	})
}

// setOperation writes the operation build makes for the Application, as
// Argo CD's SetAppOperation does: refused while another operation runs,
// the last operation's state cleared, retried on a conflict. It patches
// (RBAC verb "patch") with the resourceVersion it read, so a concurrent
// change is a conflict rather than lost.
func (r *run) setOperation(ctx context.Context, build func(*argocd.Application) (*argocd.Operation, error)) (executor.Result, error) {
	for attempt := 0; ; attempt++ {
		a, err := r.load(ctx)
		if err != nil {
			return executor.Result{}, err
		}
		if a.DeletionTimestamp != nil {
			return executor.Result{}, refuse("application %s is being deleted", qualified(a.Namespace, a.Name))
		}
		if a.Operation != nil {
			return executor.Result{}, refuse("another operation is already in progress on application %s", qualified(a.Namespace, a.Name))
		}
		op, err := build(a)
		if err != nil {
			return executor.Result{}, err
		}
		opMap, err := argocd.ToMap(op)
		if err != nil {
			return executor.Result{}, err
		}
		patch, err := json.Marshal(map[string]any{
			"metadata":  map[string]any{"resourceVersion": a.ResourceVersion},
			"operation": opMap,
			"status":    map[string]any{"operationState": nil},
		})
		if err != nil {
			return executor.Result{}, err
		}
		_, err = r.apps.Namespace(a.Namespace).Patch(ctx, a.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if apierrors.IsConflict(err) && attempt < maxConflicts {
			continue
		}
		if err != nil {
			return executor.Result{}, err
		}
		return executor.Result{Output: r.requested(a, op), Ongoing: true}, nil
	}
}

// requested is the report of an operation the controller has not started.
func (r *run) requested(a *argocd.Application, op *argocd.Operation) string {
	what := "Sync"
	if r.cmd.verb == verbRollback {
		what = fmt.Sprintf("Rollback to history entry %d", r.cmd.id)
	}
	target, note := a.TargetRevision(), ""
	if op != nil && op.Sync != nil {
		target = firstNonEmpty(op.Sync.Revision, strings.Join(op.Sync.Revisions, ","), target)
		note = flagsNote(op.Sync)
	}
	return fmt.Sprintf("%s of application %s to %s%s requested; waiting for the application controller to start it.\n",
		what, qualified(a.Namespace, a.Name), target, note)
}

func flagsNote(s *argocd.SyncOperation) string {
	var f []string
	if s.Prune {
		f = append(f, "prune")
	}
	if s.DryRun {
		f = append(f, "dry run")
	}
	if len(f) == 0 {
		return ""
	}
	return " (" + strings.Join(f, ", ") + ")"
}

// refresh runs "app refresh": the refresh annotation, which the
// application controller acts on and then removes.
func (r *run) refresh(ctx context.Context) (executor.Result, error) {
	a, err := r.load(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{argocd.RefreshAnnotation: r.refreshKind()}}})
	if _, err := r.apps.Namespace(a.Namespace).Patch(ctx, a.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return executor.Result{}, err
	}
	return executor.Result{Output: r.refreshRequested(a), Ongoing: true}, nil
}

func (r *run) refreshKind() string {
	if r.cmd.hard {
		return "hard"
	}
	return "normal"
}

func (r *run) refreshRequested(a *argocd.Application) string {
	return fmt.Sprintf("Refresh (%s) of application %s requested; waiting for the application controller.\n", r.refreshKind(), qualified(a.Namespace, a.Name))
}

// Watch reports the operation a sync, rollback or refresh started, as the
// application controller records it in the Application, or where a
// followed Application stands with its commit (app follow), once it
// changed from last; done once it ended. It reads as req.Identity.
func (e *Executor) Watch(ctx context.Context, req executor.Request, last executor.Result) (res executor.Result, done bool, err error) {
	r, err := e.prepare(ctx, req)
	if err != nil {
		return executor.Result{}, true, err
	}
	defer r.finish(&res, &err)
	state := r.progress
	switch {
	case r.cmd.verb == verbFollow:
		state = r.followed
	case !writes(r.cmd.verb):
		return executor.Result{}, true, fmt.Errorf("argocd %s starts no operation", r.cmd.verb)
	}
	apps := r.apps.Namespace(r.cmd.namespace)
	for {
		u, err := apps.Get(ctx, r.cmd.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			r.e.follows.End(r.followKey())
			return executor.Result{Errors: fmt.Sprintf("application %s was deleted\n", qualified(r.cmd.namespace, r.cmd.name)), ExitCode: 1}, true, nil
		}
		if err != nil {
			return executor.Result{}, true, err
		}
		res, done, err := state(u)
		if err != nil || done || res.Output != last.Output {
			return res, done, err
		}
		// Nothing new yet: wait for the Application's next change.
		if err := waitForChange(ctx, apps, r.cmd.name, u.GetResourceVersion()); err != nil {
			return executor.Result{}, true, err
		}
	}
}

// waitForChange blocks until the named object changes after version,
// its watch ends, or ctx ends.
func waitForChange(ctx context.Context, apps interface {
	Watch(context.Context, metav1.ListOptions) (watch.Interface, error)
}, name, version string,
) error {
	w, err := apps.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: version})
	if err != nil {
		return err
	}
	defer w.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case ev, ok := <-w.ResultChan():
		if ok && ev.Type == watch.Error {
			if st := apierrors.FromObject(ev.Object); !apierrors.IsResourceExpired(st) && !apierrors.IsGone(st) {
				return st
			}
		}
		return nil
	}
}

// progress is the report of the command's operation in u, and whether it ended.
func (r *run) progress(u *unstructured.Unstructured) (executor.Result, bool, error) {
	a, err := argocd.FromUnstructured(u)
	if err != nil {
		return executor.Result{}, true, err
	}
	name := qualified(a.Namespace, a.Name)
	if r.cmd.verb == verbRefresh {
		if _, pending := a.Annotations[argocd.RefreshAnnotation]; pending {
			return executor.Result{Output: r.refreshRequested(a), Ongoing: true}, false, nil
		}
		out := fmt.Sprintf("Refreshed application %s: %s, %s.\n", name, orNone(a.Status.Sync.Status), orNone(a.Status.Health.Status))
		return executor.Result{Output: out, Buttons: r.appButtons(a)}, true, nil
	}
	op := a.Status.OperationState
	if op == nil {
		return executor.Result{Output: r.requested(a, a.Operation), Ongoing: true}, false, nil
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 1, ' ', 0)
	fmt.Fprintf(w, "Application:\t%s\n", name)
	writeOperation(w, op)
	_ = w.Flush()
	if op.SyncResult != nil && len(op.SyncResult.Resources) > 0 {
		b.WriteString("\n")
		w = tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(w, "GROUP\tKIND\tNAMESPACE\tNAME\tSTATUS\tHOOK\tMESSAGE")
		for _, res := range op.SyncResult.Resources {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", res.Group, res.Kind, res.Namespace, res.Name, res.Status, res.HookPhase, res.Message)
		}
		_ = w.Flush()
	}
	if !op.Done() {
		return executor.Result{Output: b.String(), Ongoing: true}, false, nil
	}
	res := executor.Result{Output: b.String(), Buttons: r.appButtons(a)}
	if op.Phase != argocd.PhaseSucceeded {
		res.ExitCode = 1
		res.Errors = fmt.Sprintf("The operation ended %s: %s\n", op.Phase, op.Message)
	}
	return res, true, nil
}

var _ executor.Watcher = (*Executor)(nil)
