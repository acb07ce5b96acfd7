package flux

import (
	"context"
	"fmt"
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/prdiff"
)

// followPoll is how often a followed Kustomization is read again.
const followPoll = 2 * time.Second

// follow starts "flux follow kustomization NAME --sha SHA": it reports the
// Kustomization's state now, and Watch follows it until it is Ready at
// the commit, or failed there.
func (r *run) follow(ctx context.Context) (executor.Result, error) {
	r.e.follows.Start(r.followKey())
	res, done, err := r.followState(ctx)
	if err != nil || done {
		return res, err
	}
	res.Ongoing = true
	return res, nil
}

func (r *run) followKey() string {
	return r.cmd.namespace + "/" + r.cmd.name + "@" + r.cmd.sha
}

// followState reads the Kustomization and says where it stands with
// --sha, and whether that is the end.
func (r *run) followState(ctx context.Context) (executor.Result, bool, error) {
	kc, err := client.New(r.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return executor.Result{}, true, fmt.Errorf("connect to the cluster: %w", err)
	}
	ks := &kustomizev1.Kustomization{}
	key := types.NamespacedName{Namespace: r.cmd.namespace, Name: r.cmd.name}
	if err := kc.Get(ctx, key, ks); err != nil {
		if apierrors.IsForbidden(err) {
			return executor.Result{Errors: err.Error(), ExitCode: 1, Forbidden: true}, true, nil
		}
		return executor.Result{}, true, fmt.Errorf("get Kustomization %s: %w", key, err)
	}
	sha := prdiff.ShortSHA(r.cmd.sha)
	ready := apimeta.FindStatusCondition(ks.Status.Conditions, meta.ReadyCondition)
	atSHA := func(rev string) bool { return strings.HasSuffix(rev, ":"+r.cmd.sha) || rev == r.cmd.sha }
	switch {
	case ready != nil && ready.Status == "True" && atSHA(ks.Status.LastAppliedRevision):
		out := fmt.Sprintf("Kustomization %s is Ready at %s (%s).\n", key, sha, ks.Status.LastAppliedRevision)
		out += r.e.follows.Took(r.followKey(), "Reconciled")
		return executor.Result{Output: out}, true, nil
	case ready != nil && ready.Status == "False" && atSHA(ks.Status.LastAttemptedRevision):
		r.e.follows.End(r.followKey())
		return executor.Result{Errors: fmt.Sprintf("Kustomization %s failed at %s: %s: %s\n", key, sha, ready.Reason, ready.Message), ExitCode: 1}, true, nil
	}
	state := "no Ready condition yet"
	if ready != nil {
		state = fmt.Sprintf("Ready=%s (%s)", ready.Status, ready.Reason)
	}
	applied := ks.Status.LastAppliedRevision
	if applied == "" {
		applied = "nothing yet"
	}
	return executor.Result{Output: fmt.Sprintf("Waiting for Kustomization %s to apply %s: applied %s, %s.\n", key, sha, applied, state)}, false, nil
}

// Watch follows what a follow command started: it returns when the
// Kustomization's state with the commit changed since last, or ended.
func (e *Executor) Watch(ctx context.Context, req executor.Request, last executor.Result) (executor.Result, bool, error) {
	r, err := e.prepare(req)
	if err != nil {
		return executor.Result{}, true, err
	}
	if r.cmd.verb != verbFollow {
		return executor.Result{}, true, fmt.Errorf("flux %s starts nothing to follow", r.cmd.verb)
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		res, done, err := r.followState(ctx)
		res.Output = r.secrets.Redact(res.Output)
		res.Errors = r.secrets.Redact(res.Errors)
		if err != nil || done || res.Output != last.Output {
			if !done {
				res.Ongoing = true
			}
			return res, done, err
		}
		select {
		case <-ctx.Done():
			return last, true, ctx.Err()
		case <-t.C:
		}
	}
}
