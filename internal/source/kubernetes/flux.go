package kubernetes

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// fluxKustomizationGroup is the API group of Flux's Kustomization.
const fluxKustomizationGroup = "kustomize.toolkit.fluxcd.io/"

// isFluxKustomization tells Flux's Kustomization from kustomize's own kind
// of the same name.
func isFluxKustomization(obj *unstructured.Unstructured) bool {
	return strings.HasPrefix(obj.GetAPIVersion(), fluxKustomizationGroup)
}

// kustomizationHealth is a Flux Kustomization's Ready condition: False is
// failing, with kustomize-controller's reason (BuildFailed,
// HealthCheckFailed, ReconciliationFailed, ...) and message. Unknown is
// how every reconciliation starts, failing or not, so it is neither.
func kustomizationHealth(obj *unstructured.Unstructured) health {
	r := condition(obj, "Ready")
	switch r.status {
	case "False":
		return health{failing: true, reason: orDefault(r.reason, "NotReady"), message: r.message, since: r.since}
	case "True":
		return health{since: r.since}
	}
	return health{unknown: true, since: r.since}
}
