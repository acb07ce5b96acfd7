package flux

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/executor"
)

// row is one line of a flux get table.
type row struct {
	namespace, name, revision string
	suspended                 bool
	conditions                []metav1.Condition
}

// getKustomizations lists Kustomizations as "flux get kustomizations" does.
func (r *run) getKustomizations(ctx context.Context) (executor.Result, error) {
	var list kustomizev1.KustomizationList
	if res, err := r.list(ctx, &list); res != nil || err != nil {
		return deref(res), err
	}
	rows := make([]row, 0, len(list.Items))
	for _, k := range list.Items {
		rows = append(rows, row{k.Namespace, k.Name, k.Status.LastAppliedRevision, k.Spec.Suspend, k.Status.Conditions})
	}
	return r.table("kustomizations", rows), nil
}

// getSources lists GitRepositories as "flux get sources git" does.
func (r *run) getSources(ctx context.Context) (executor.Result, error) {
	var list sourcev1.GitRepositoryList
	if res, err := r.list(ctx, &list); res != nil || err != nil {
		return deref(res), err
	}
	rows := make([]row, 0, len(list.Items))
	for _, g := range list.Items {
		rev := ""
		if a := g.GetArtifact(); a != nil {
			rev = a.Revision
		}
		rows = append(rows, row{g.Namespace, g.Name, rev, g.Spec.Suspend, g.Status.Conditions})
	}
	return r.table("sources", rows), nil
}

func (r *run) list(ctx context.Context, list client.ObjectList) (*executor.Result, error) {
	kc, err := client.New(r.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster: %w", err)
	}
	var opts []client.ListOption
	if !r.cmd.allNamespaces {
		opts = append(opts, client.InNamespace(r.cmd.namespace))
	}
	if err := kc.List(ctx, list, opts...); err != nil {
		if apierrors.IsForbidden(err) {
			return &executor.Result{Errors: err.Error(), ExitCode: 1, Forbidden: true}, nil
		}
		return nil, err
	}
	return nil, nil
}

// table prints rows with the flux CLI's columns.
func (r *run) table(what string, rows []row) executor.Result {
	if len(rows) == 0 {
		where := "in " + r.cmd.namespace + " namespace"
		if r.cmd.allNamespaces {
			where = "in any namespace"
		}
		return executor.Result{Errors: fmt.Sprintf("no %s found %s\n", what, where)}
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	if r.cmd.allNamespaces {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tREVISION\tSUSPENDED\tREADY\tMESSAGE")
	for _, x := range rows {
		ready, msg := "Unknown", "waiting to be reconciled"
		if c := apimeta.FindStatusCondition(x.conditions, "Ready"); c != nil {
			ready, msg = string(c.Status), c.Message
		}
		if r.cmd.allNamespaces {
			fmt.Fprintf(w, "%s\t", x.namespace)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", x.name, x.revision, title(x.suspended), ready, strings.ReplaceAll(msg, "\n", " "))
	}
	_ = w.Flush()
	return executor.Result{Output: b.String()}
}

func title(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
