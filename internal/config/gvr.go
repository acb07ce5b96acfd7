package config

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ParseGVR parses "[group/]version/resource", for example "v1/pods" or
// "apps/v1/deployments" or "kustomize.toolkit.fluxcd.io/v1/kustomizations".
func ParseGVR(s string) (schema.GroupVersionResource, error) {
	parts := strings.Split(s, "/")
	var gvr schema.GroupVersionResource
	switch len(parts) {
	case 2:
		gvr = schema.GroupVersionResource{Version: parts[0], Resource: parts[1]}
	case 3:
		gvr = schema.GroupVersionResource{Group: parts[0], Version: parts[1], Resource: parts[2]}
	default:
		return gvr, fmt.Errorf("resource %q must be [group/]version/resource, for example v1/pods or apps/v1/deployments", s)
	}
	if gvr.Group != "" && len(validation.IsDNS1123Subdomain(gvr.Group)) > 0 {
		return gvr, fmt.Errorf("resource %q: %q is not a valid API group", s, gvr.Group)
	}
	if len(validation.IsDNS1123Label(gvr.Version)) > 0 || !strings.HasPrefix(gvr.Version, "v") {
		return gvr, fmt.Errorf("resource %q: %q is not a valid API version (like v1 or v1beta1)", s, gvr.Version)
	}
	if len(validation.IsDNS1123Label(gvr.Resource)) > 0 || strings.ToLower(gvr.Resource) != gvr.Resource {
		return gvr, fmt.Errorf("resource %q: %q is not a plural lower-case resource name (like pods)", s, gvr.Resource)
	}
	return gvr, nil
}
