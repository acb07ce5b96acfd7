package argocd

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/prdiff"
)

// follow starts "app follow NAME --sha SHA": it reports where the
// Application stands with the commit now, and Watch follows it until it
// is synced and healthy there, or failed there.
func (r *run) follow(ctx context.Context) (executor.Result, error) {
	r.e.follows.Start(r.followKey())
	a, err := r.load(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	res, done := r.followState(a)
	res.Ongoing = !done
	return res, nil
}

func (r *run) followKey() string {
	return qualified(r.cmd.namespace, r.cmd.name) + "@" + r.cmd.sha
}

// followed is followState of the Application in u, for Watch.
func (r *run) followed(u *unstructured.Unstructured) (executor.Result, bool, error) {
	a, err := argocd.FromUnstructured(u)
	if err != nil {
		return executor.Result{}, true, err
	}
	res, done := r.followState(a)
	res.Ongoing = !done
	return res, done, nil
}

// followState says where Application a stands with --sha, and whether
// that is the end: done when the application controller synced it
// (status.sync.revision, or one of revisions, is the commit), it is
// Synced and Healthy, and no operation runs (a sync's later waves and
// hooks); failed when its sync operation of the commit ended
// Failed or Error, or it turned Degraded once synced to it.
func (r *run) followState(a *argocd.Application) (executor.Result, bool) {
	name, sha := qualified(a.Namespace, a.Name), prdiff.ShortSHA(r.cmd.sha)
	st := a.Status
	at := st.Sync.Revision == r.cmd.sha || slices.Contains(st.Sync.Revisions, r.cmd.sha)
	op := st.OperationState
	switch {
	case at && st.Sync.Status == argocd.Synced && st.Health.Status == argocd.Healthy && (op == nil || op.Done()):
		out := fmt.Sprintf("Application %s is Synced and Healthy at %s.\n", name, sha)
		out += r.e.follows.Took(r.followKey(), "Synced")
		return executor.Result{Output: out, Buttons: links(r.appButtons(a))}, true
	case op != nil && (op.Phase == argocd.PhaseFailed || op.Phase == argocd.PhaseError) && r.operationOf(op):
		r.e.follows.End(r.followKey())
		return executor.Result{Errors: fmt.Sprintf("Application %s failed to sync %s: the operation ended %s: %s\n", name, sha, op.Phase, op.Message),
			ExitCode: 1, Buttons: r.appButtons(a)}, true
	case at && st.Health.Status == argocd.Degraded:
		r.e.follows.End(r.followKey())
		return executor.Result{Errors: fmt.Sprintf("Application %s is Degraded at %s: %s\n", name, sha, orNone(st.Health.Message)),
			ExitCode: 1, Buttons: r.appButtons(a)}, true
	}
	rev := firstNonEmpty(st.Sync.Revision, strings.Join(st.Sync.Revisions, ","))
	out := fmt.Sprintf("Waiting for application %s to sync %s: at %s, %s, %s", name, sha, short(rev), orNone(st.Sync.Status), orNone(st.Health.Status))
	if op != nil && !op.Done() {
		out += fmt.Sprintf("; operation %s", op.Phase)
		if op.Message != "" {
			out += ": " + op.Message
		}
	}
	return executor.Result{Output: out + ".\n"}, false
}

// operationOf reports whether op synced --sha: the revision its result
// records, or else the one it was asked for.
func (r *run) operationOf(op *argocd.OperationState) bool {
	var revs []string
	if res := op.SyncResult; res != nil {
		revs = append(revs, res.Revision)
		revs = append(revs, res.Revisions...)
	}
	if s := op.Operation.Sync; s != nil {
		revs = append(revs, s.Revision)
		revs = append(revs, s.Revisions...)
	}
	return slices.Contains(revs, r.cmd.sha)
}

// links are the buttons of bs that open a page: after a rollout that
// succeeded, nothing is left to run.
func links(bs []executor.Button) []executor.Button {
	return slices.DeleteFunc(bs, func(b executor.Button) bool { return b.URL == "" })
}
