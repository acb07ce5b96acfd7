package kubectl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/redact"
)

// MaxChoices bounds one builder list (chat selects hold about 100 options).
const MaxChoices = 100

// Complete lists resources (from API discovery), namespaces or object names,
// as id sees them, for the command builder.
func (e *Executor) Complete(ctx context.Context, id executor.Identity, field string, chosen map[string]string) ([]string, error) {
	if e.base == nil {
		return nil, errors.New("kubectl: the agent has no cluster connection")
	}
	if id.User == "" {
		return nil, fmt.Errorf("kubectl: %w: no identity to act as", executor.ErrDenied)
	}
	cfg := executor.Impersonating(e.base, id, redact.NewSet())
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	switch field {
	case "resource":
		return listableResources(disc)
	case "namespace":
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		return names(ctx, dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}))
	case "name":
		gvr, namespaced, err := findResource(disc, chosen["resource"])
		if err != nil {
			return nil, err
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		if namespaced {
			return names(ctx, dyn.Resource(gvr).Namespace(chosen["namespace"]))
		}
		return names(ctx, dyn.Resource(gvr))
	default:
		return nil, fmt.Errorf("kubectl: nothing to complete for %q", field)
	}
}

// listableResources are the preferred-version resources that can be listed
// and read, without subresources, sorted.
func listableResources(disc discovery.DiscoveryInterface) ([]string, error) {
	lists, err := disc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("kubectl: discovery: %w", err)
	}
	var out []string
	for _, l := range lists {
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "get") {
				continue
			}
			gv, _ := schema.ParseGroupVersion(l.GroupVersion)
			name := r.Name
			if gv.Group != "" {
				name += "." + gv.Group
			}
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// findResource resolves "pods" or "deployments.apps" through discovery.
func findResource(disc discovery.DiscoveryInterface, resource string) (schema.GroupVersionResource, bool, error) {
	name, group, _ := strings.Cut(resource, ".")
	lists, err := disc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return schema.GroupVersionResource{}, false, fmt.Errorf("kubectl: discovery: %w", err)
	}
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if r.Name == name && gv.Group == group {
				return gv.WithResource(r.Name), r.Namespaced, nil
			}
		}
	}
	return schema.GroupVersionResource{}, false, fmt.Errorf("kubectl: the server has no resource %q", resource)
}

func names(ctx context.Context, ri dynamic.ResourceInterface) ([]string, error) {
	list, err := ri.List(ctx, metav1.ListOptions{Limit: MaxChoices})
	if apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("%w: %v", executor.ErrDenied, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list.Items))
	for _, it := range list.Items {
		out = append(out, it.GetName())
	}
	slices.Sort(out)
	return out, nil
}
