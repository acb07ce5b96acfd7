// Package argocd is a small typed view of Argo CD's Application, read from
// and written to unstructured objects. Argo CD's own Go types
// (github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1) do not
// build with this module's Kubernetes versions (their gitops-engine
// dependency resolves at no version), so the fields kubechat reads and the
// operation it writes are declared here, with the same JSON names as
// Argo CD's types.go (v3.6.1). Unknown fields are kept where an object is
// written back: only the fields set here change.
package argocd

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is Argo CD's API group.
const Group = "argoproj.io"

// The resources kubechat reads.
var (
	Applications    = schema.GroupVersionResource{Group: Group, Version: "v1alpha1", Resource: "applications"}
	ApplicationSets = schema.GroupVersionResource{Group: Group, Version: "v1alpha1", Resource: "applicationsets"}
)

// RefreshAnnotation asks the application controller to compare the
// Application again ("normal"), after clearing the manifest cache ("hard").
const RefreshAnnotation = "argocd.argoproj.io/refresh"

// Health and sync status codes, and operation phases.
const (
	Healthy     = "Healthy"
	Progressing = "Progressing"
	Degraded    = "Degraded"
	Missing     = "Missing"
	Suspended   = "Suspended"
	Synced      = "Synced"
	OutOfSync   = "OutOfSync"

	PhaseRunning     = "Running"
	PhaseTerminating = "Terminating"
	PhaseFailed      = "Failed"
	PhaseError       = "Error"
	PhaseSucceeded   = "Succeeded"
)

// Application is the part of an Application kubechat reads.
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              Spec       `json:"spec"`
	Status            Status     `json:"status"`
	Operation         *Operation `json:"operation,omitempty"`
}

// Spec is an Application's spec.
type Spec struct {
	// Source and Sources are kept as they are, to be copied into an
	// operation unchanged, as Argo CD's API server does.
	Source      map[string]any   `json:"source,omitempty"`
	Sources     []map[string]any `json:"sources,omitempty"`
	Destination struct {
		Server    string `json:"server,omitempty"`
		Namespace string `json:"namespace,omitempty"`
		Name      string `json:"name,omitempty"`
	} `json:"destination"`
	Project    string      `json:"project"`
	SyncPolicy *SyncPolicy `json:"syncPolicy,omitempty"`
}

// SyncPolicy is an Application's spec.syncPolicy.
type SyncPolicy struct {
	Automated   map[string]any `json:"automated,omitempty"`
	SyncOptions []string       `json:"syncOptions,omitempty"`
	Retry       map[string]any `json:"retry,omitempty"`
}

// AutomatedSync reports whether automated sync is on, as Argo CD's
// IsAutomatedSyncEnabled reads it: an automated block whose enabled is
// unset or true.
func (p *SyncPolicy) AutomatedSync() bool {
	if p == nil || p.Automated == nil {
		return false
	}
	enabled, ok := p.Automated["enabled"].(bool)
	return !ok || enabled
}

// Status is an Application's status.
type Status struct {
	Sync struct {
		Status    string   `json:"status"`
		Revision  string   `json:"revision,omitempty"`
		Revisions []string `json:"revisions,omitempty"`
	} `json:"sync"`
	Health struct {
		Status             string       `json:"status,omitempty"`
		Message            string       `json:"message,omitempty"`
		LastTransitionTime *metav1.Time `json:"lastTransitionTime,omitempty"`
	} `json:"health"`
	Resources      []ResourceStatus  `json:"resources,omitempty"`
	History        []RevisionHistory `json:"history,omitempty"`
	OperationState *OperationState   `json:"operationState,omitempty"`
	ReconciledAt   *metav1.Time      `json:"reconciledAt,omitempty"`
	Conditions     []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"conditions,omitempty"`
}

// ResourceStatus is one entry of status.resources.
type ResourceStatus struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Status    string `json:"status,omitempty"`
	Health    *struct {
		Status  string `json:"status,omitempty"`
		Message string `json:"message,omitempty"`
	} `json:"health,omitempty"`
	RequiresPruning bool `json:"requiresPruning,omitempty"`
}

// String renders "Kind namespace/name".
func (r ResourceStatus) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// HealthStatus is the resource's health, or "".
func (r ResourceStatus) HealthStatus() string {
	if r.Health == nil {
		return ""
	}
	return r.Health.Status
}

// RevisionHistory is one entry of status.history.
type RevisionHistory struct {
	ID          int64            `json:"id"`
	Revision    string           `json:"revision,omitempty"`
	Revisions   []string         `json:"revisions,omitempty"`
	DeployedAt  metav1.Time      `json:"deployedAt"`
	Source      map[string]any   `json:"source,omitempty"`
	Sources     []map[string]any `json:"sources,omitempty"`
	InitiatedBy Initiator        `json:"initiatedBy,omitempty"`
}

// OperationState is status.operationState.
type OperationState struct {
	Operation  Operation    `json:"operation"`
	Phase      string       `json:"phase"`
	Message    string       `json:"message,omitempty"`
	StartedAt  metav1.Time  `json:"startedAt"`
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	SyncResult *struct {
		Revision  string   `json:"revision,omitempty"`
		Revisions []string `json:"revisions,omitempty"`
		Resources []struct {
			Group     string `json:"group,omitempty"`
			Kind      string `json:"kind"`
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
			Status    string `json:"status,omitempty"`
			Message   string `json:"message,omitempty"`
			HookPhase string `json:"hookPhase,omitempty"`
		} `json:"resources,omitempty"`
	} `json:"syncResult,omitempty"`
}

// Done reports whether the operation ended.
func (o *OperationState) Done() bool {
	switch o.Phase {
	case PhaseSucceeded, PhaseFailed, PhaseError:
		return true
	}
	return false
}

// Operation is an Application's operation: what Argo CD's API server
// writes to start a sync or a rollback (server/application Sync and
// Rollback, through util/argo SetAppOperation).
type Operation struct {
	Sync        *SyncOperation `json:"sync,omitempty"`
	InitiatedBy Initiator      `json:"initiatedBy"`
	Info        []any          `json:"info,omitempty"`
	// Retry is a struct in Argo CD's types, so it is always written ({}
	// when the Application has no retry policy).
	Retry map[string]any `json:"retry"`
}

// Initiator is who started an operation.
type Initiator struct {
	Username  string `json:"username,omitempty"`
	Automated bool   `json:"automated,omitempty"`
}

// SyncOperation is operation.sync.
type SyncOperation struct {
	Revision     string           `json:"revision,omitempty"`
	Prune        bool             `json:"prune,omitempty"`
	DryRun       bool             `json:"dryRun,omitempty"`
	SyncStrategy *SyncStrategy    `json:"syncStrategy,omitempty"`
	Source       map[string]any   `json:"source,omitempty"`
	SyncOptions  []string         `json:"syncOptions,omitempty"`
	Sources      []map[string]any `json:"sources,omitempty"`
	Revisions    []string         `json:"revisions,omitempty"`
}

// SyncStrategy is operation.sync.syncStrategy: apply or hook.
type SyncStrategy struct {
	Apply *StrategyForce `json:"apply,omitempty"`
	Hook  *StrategyForce `json:"hook,omitempty"`
}

// StrategyForce is the body of both strategies.
type StrategyForce struct {
	Force bool `json:"force,omitempty"`
}

// FromUnstructured reads an Application.
func FromUnstructured(u *unstructured.Unstructured) (*Application, error) {
	var a Application
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &a); err != nil {
		return nil, fmt.Errorf("read Application %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &a, nil
}

// ToMap renders v (an Operation) as an unstructured value.
func ToMap(v any) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(v)
}

// MultiSource reports whether the Application has spec.sources.
func (a *Application) MultiSource() bool { return len(a.Spec.Sources) > 0 }

// TargetRevision is spec.source.targetRevision, HEAD when unset.
func (a *Application) TargetRevision() string {
	if rev, _ := a.Spec.Source["targetRevision"].(string); rev != "" {
		return rev
	}
	return "HEAD"
}

// URL is an Application's page in the Argo CD web UI at base.
func URL(base, namespace, name string) string {
	return strings.TrimRight(base, "/") + "/applications/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

// Since is when the Application's health last changed, if it says.
func (a *Application) Since() time.Time {
	if t := a.Status.Health.LastTransitionTime; t != nil {
		return t.Time
	}
	return time.Time{}
}
