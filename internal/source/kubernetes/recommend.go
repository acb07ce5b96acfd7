package kubernetes

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubechat/kubechat/internal/event"
)

// recommendations checks a newly created pod or Ingress and returns one
// warning event listing what it found, if anything. Pods report on their
// controller (a ReplicaSet, a Job), so replicas fold into one message.
func (s *Source) recommendations(ctx context.Context, obj *unstructured.Unstructured) (event.Event, bool) {
	rc := s.recommend
	var findings []event.Field
	subject := obj
	switch obj.GetKind() {
	case "Pod":
		containers, _, _ := unstructured.NestedSlice(obj.Object, "spec", "containers")
		for _, c := range containers {
			m, _ := c.(map[string]any)
			name, _ := m["name"].(string)
			image, _ := m["image"].(string)
			if rc.LatestTag && usesLatest(image) {
				findings = append(findings, event.Field{Name: "Image tag", Value: fmt.Sprintf("container %s uses %q: pin a version or digest", name, image)})
			}
			if rc.ResourceLimits {
				limits, _, _ := unstructured.NestedMap(m, "resources", "limits")
				var missing []string
				for _, r := range []string{"cpu", "memory"} {
					if _, ok := limits[r]; !ok {
						missing = append(missing, r)
					}
				}
				if len(missing) > 0 {
					findings = append(findings, event.Field{Name: "Resource limits", Value: fmt.Sprintf("container %s has no %s limit", name, strings.Join(missing, " or "))})
				}
			}
		}
		if rc.PodLabels && len(obj.GetLabels()) == 0 {
			findings = append(findings, event.Field{Name: "Labels", Value: "the pod has no labels: selectors, policies and cost reports cannot find it"})
		}
		if ref := metav1.GetControllerOf(obj); ref != nil {
			subject = &unstructured.Unstructured{}
			subject.SetAPIVersion(ref.APIVersion)
			subject.SetKind(ref.Kind)
			subject.SetNamespace(obj.GetNamespace())
			subject.SetName(ref.Name)
			subject.SetUID(obj.GetUID())
		}
	case "Ingress":
		if rc.IngressBackends && s.meta != nil {
			findings = append(findings, s.ingressFindings(ctx, obj)...)
		}
	}
	if len(findings) == 0 {
		return event.Event{}, false
	}
	ev := s.base(subject, event.Warning)
	ev.Level, ev.Reason = event.Warn, "Recommendation"
	ev.Message = fmt.Sprintf("%d recommendation(s) for %s %s", len(findings), obj.GetKind(), obj.GetName())
	ev.Fields = findings
	return ev, true
}

func usesLatest(image string) bool {
	if strings.Contains(image, "@") {
		return false // pinned by digest
	}
	slash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	return colon <= slash || image[colon+1:] == "latest"
}

// ingressFindings names backends and TLS Secrets that do not exist. It
// reads metadata only: the agent never needs a Secret's data for this.
func (s *Source) ingressFindings(ctx context.Context, ing *unstructured.Unstructured) []event.Field {
	ns := ing.GetNamespace()
	exists := func(resource, name string) (bool, error) {
		_, err := s.meta.Resource(schema.GroupVersionResource{Version: "v1", Resource: resource}).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	var out []event.Field
	seen := map[string]bool{}
	check := func(kind, resource, name string) {
		if name == "" || seen[resource+"/"+name] {
			return
		}
		seen[resource+"/"+name] = true
		ok, err := exists(resource, name)
		switch {
		case err != nil:
			out = append(out, event.Field{Name: kind, Value: fmt.Sprintf("%s %q could not be checked: %v", kind, name, err)})
		case !ok:
			out = append(out, event.Field{Name: kind, Value: fmt.Sprintf("%s %q does not exist in %s", kind, name, ns)})
		}
	}
	if svc, _, _ := unstructured.NestedString(ing.Object, "spec", "defaultBackend", "service", "name"); svc != "" {
		check("Service", "services", svc)
	}
	rules, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules")
	for _, r := range rules {
		paths, _, _ := unstructured.NestedSlice(r.(map[string]any), "http", "paths")
		for _, p := range paths {
			svc, _, _ := unstructured.NestedString(p.(map[string]any), "backend", "service", "name")
			check("Service", "services", svc)
		}
	}
	tls, _, _ := unstructured.NestedSlice(ing.Object, "spec", "tls")
	for _, t := range tls {
		name, _, _ := unstructured.NestedString(t.(map[string]any), "secretName")
		check("TLS Secret", "secrets", name)
	}
	return out
}
