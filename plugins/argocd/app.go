package argocd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/executor"
)

// load reads the command's Application as the caller.
func (r *run) load(ctx context.Context) (*argocd.Application, error) {
	u, err := r.apps.Namespace(r.cmd.namespace).Get(ctx, r.cmd.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, refuse("application %s not found", qualified(r.cmd.namespace, r.cmd.name))
	}
	if err != nil {
		return nil, err
	}
	return argocd.FromUnstructured(u)
}

// list runs "app list", with the argocd CLI's columns.
func (r *run) list(ctx context.Context) (executor.Result, error) {
	ns := r.cmd.namespace
	if r.cmd.allNamespaces {
		ns = metav1.NamespaceAll
	}
	ul, err := r.apps.Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: r.cmd.selector})
	if err != nil {
		return executor.Result{}, err
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCLUSTER\tNAMESPACE\tPROJECT\tSTATUS\tHEALTH\tSYNCPOLICY\tCONDITIONS\tREPO\tPATH\tTARGET")
	n := 0
	for i := range ul.Items {
		a, err := argocd.FromUnstructured(&ul.Items[i])
		if err != nil {
			return executor.Result{}, err
		}
		if r.cmd.project != "" && a.Spec.Project != r.cmd.project {
			continue
		}
		n++
		src := primarySource(a)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", qualified(a.Namespace, a.Name),
			orNone(firstNonEmpty(a.Spec.Destination.Server, a.Spec.Destination.Name)), orNone(a.Spec.Destination.Namespace), a.Spec.Project,
			orNone(a.Status.Sync.Status), orNone(a.Status.Health.Status), syncPolicy(a), conditions(a),
			str(src, "repoURL"), str(src, "path"), str(src, "targetRevision"))
	}
	_ = w.Flush()
	if n == 0 {
		where := "in namespace " + r.cmd.namespace
		if r.cmd.allNamespaces {
			where = "in any namespace"
		}
		return executor.Result{Errors: "no applications found " + where + "\n"}, nil
	}
	return executor.Result{Output: b.String()}, nil
}

// get runs "app get": the Application's summary, its last operation and
// its resources.
func (r *run) get(ctx context.Context) (executor.Result, error) {
	a, err := r.load(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 1, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", qualified(a.Namespace, a.Name))
	fmt.Fprintf(w, "Project:\t%s\n", a.Spec.Project)
	fmt.Fprintf(w, "Server:\t%s\n", firstNonEmpty(a.Spec.Destination.Server, a.Spec.Destination.Name))
	fmt.Fprintf(w, "Namespace:\t%s\n", a.Spec.Destination.Namespace)
	if r.e.s.URL != "" {
		fmt.Fprintf(w, "URL:\t%s\n", argocd.URL(r.e.s.URL, a.Namespace, a.Name))
	}
	sources := a.Spec.Sources
	if !a.MultiSource() {
		sources = []map[string]any{a.Spec.Source}
	}
	fmt.Fprintln(w, "Source:")
	for _, s := range sources {
		fmt.Fprintf(w, "- Repo:\t%s\n", str(s, "repoURL"))
		fmt.Fprintf(w, "  Target:\t%s\n", str(s, "targetRevision"))
		if p := str(s, "path"); p != "" {
			fmt.Fprintf(w, "  Path:\t%s\n", p)
		}
		if c := str(s, "chart"); c != "" {
			fmt.Fprintf(w, "  Chart:\t%s\n", c)
		}
	}
	fmt.Fprintf(w, "Sync Policy:\t%s\n", syncPolicy(a))
	rev := firstNonEmpty(a.Status.Sync.Revision, strings.Join(a.Status.Sync.Revisions, ","))
	fmt.Fprintf(w, "Sync Status:\t%s to %s (%s)\n", orNone(a.Status.Sync.Status), a.TargetRevision(), short(rev))
	health := orNone(a.Status.Health.Status)
	if a.Status.Health.Message != "" {
		health += " (" + a.Status.Health.Message + ")"
	}
	fmt.Fprintf(w, "Health Status:\t%s\n", health)
	for _, c := range a.Status.Conditions {
		fmt.Fprintf(w, "Condition:\t%s: %s\n", c.Type, c.Message)
	}
	if op := a.Status.OperationState; op != nil {
		fmt.Fprintln(w)
		writeOperation(w, op)
	}
	_ = w.Flush()
	if len(a.Status.Resources) > 0 {
		b.WriteString("\n")
		b.WriteString(resourceTable(a, false))
	}
	return executor.Result{Output: b.String(), Buttons: r.appButtons(a)}, nil
}

// writeOperation prints an operation state as "argocd app get" does.
func writeOperation(w *tabwriter.Writer, op *argocd.OperationState) {
	kind := "Sync"
	if op.Operation.Sync == nil {
		kind = "Unknown"
	}
	fmt.Fprintf(w, "Operation:\t%s\n", kind)
	if op.Operation.Sync != nil {
		rev := op.Operation.Sync.Revision
		if op.SyncResult != nil && op.SyncResult.Revision != "" {
			rev = op.SyncResult.Revision
		}
		fmt.Fprintf(w, "Sync Revision:\t%s\n", orNone(rev))
	}
	fmt.Fprintf(w, "Phase:\t%s\n", op.Phase)
	fmt.Fprintf(w, "Start:\t%s\n", op.StartedAt.UTC().Format(time.RFC3339))
	if op.FinishedAt != nil {
		fmt.Fprintf(w, "Finished:\t%s\n", op.FinishedAt.UTC().Format(time.RFC3339))
		fmt.Fprintf(w, "Duration:\t%s\n", op.FinishedAt.Sub(op.StartedAt.Time))
	}
	if op.Message != "" {
		fmt.Fprintf(w, "Message:\t%s\n", op.Message)
	}
}

// history runs "app history".
func (r *run) history(ctx context.Context) (executor.Result, error) {
	a, err := r.load(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	if len(a.Status.History) == 0 {
		return executor.Result{Errors: fmt.Sprintf("application %s has no history yet\n", qualified(a.Namespace, a.Name))}, nil
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tDATE\tREVISION\tSOURCE\tINITIATED BY")
	h := slices.Clone(a.Status.History)
	slices.Reverse(h) // newest first
	for _, e := range h {
		rev, src := e.Revision, e.Source
		if len(e.Sources) > 0 {
			rev, src = strings.Join(e.Revisions, ","), e.Sources[0]
		}
		who := e.InitiatedBy.Username
		if e.InitiatedBy.Automated {
			who = "automated"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.DeployedAt.UTC().Format(time.RFC3339), orNone(rev), sourceLine(src), orNone(who))
	}
	_ = w.Flush()
	return executor.Result{Output: b.String()}, nil
}

// resources runs "app resources".
func (r *run) resources(ctx context.Context) (executor.Result, error) {
	a, err := r.load(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	if len(a.Status.Resources) == 0 {
		return executor.Result{Errors: fmt.Sprintf("application %s has no resources yet\n", qualified(a.Namespace, a.Name))}, nil
	}
	return executor.Result{Output: resourceTable(a, true)}, nil
}

func resourceTable(a *argocd.Application, pruning bool) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	head := "GROUP\tKIND\tNAMESPACE\tNAME\tSTATUS\tHEALTH\tMESSAGE"
	if pruning {
		head += "\tREQUIRES PRUNING"
	}
	fmt.Fprintln(w, head)
	for _, res := range a.Status.Resources {
		msg := ""
		if res.Health != nil {
			msg = res.Health.Message
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", res.Group, res.Kind, res.Namespace, res.Name, res.Status, res.HealthStatus(), msg)
		if pruning {
			line += "\t" + map[bool]string{true: "Yes", false: "No"}[res.RequiresPruning]
		}
		fmt.Fprintln(w, line)
	}
	_ = w.Flush()
	return b.String()
}

// appButtons are the follow-ups of a reply about a.
func (r *run) appButtons(a *argocd.Application) []executor.Button {
	target := []string{a.Name, "-n", a.Namespace}
	bs := []executor.Button{
		{Label: "Sync", Args: append([]string{"app", "sync"}, target...), Primary: true},
		{Label: "Diff", Args: append([]string{"app", "diff"}, target...)},
		{Label: "History", Args: append([]string{"app", "history"}, target...)},
	}
	if r.e.s.URL != "" {
		bs = append(bs, executor.Button{Label: "View in Argo CD", URL: argocd.URL(r.e.s.URL, a.Namespace, a.Name)})
	}
	return bs
}

func primarySource(a *argocd.Application) map[string]any {
	if a.MultiSource() {
		return a.Spec.Sources[0]
	}
	return a.Spec.Source
}

func sourceLine(s map[string]any) string {
	out := str(s, "repoURL")
	if p := str(s, "path"); p != "" {
		out += " " + p
	}
	if c := str(s, "chart"); c != "" {
		out += " chart " + c
	}
	return orNone(out)
}

func syncPolicy(a *argocd.Application) string {
	if a.Spec.SyncPolicy.AutomatedSync() {
		p := "Auto"
		if prune, _ := a.Spec.SyncPolicy.Automated["prune"].(bool); prune {
			p += "-Prune"
		}
		return p
	}
	return "Manual"
}

func conditions(a *argocd.Application) string {
	var types []string
	for _, c := range a.Status.Conditions {
		types = append(types, c.Type)
	}
	return orNone(strings.Join(types, ","))
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func short(rev string) string {
	if len(rev) > 7 && !strings.Contains(rev, ",") {
		return rev[:7]
	}
	return orNone(rev)
}
