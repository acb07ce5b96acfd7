package kubernetes

import (
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubechat/kubechat/internal/event"
)

// Secrets are watched by their metadata only: the agent never holds Secret
// values, and Helm's release Secrets (a gzipped copy of the whole release
// each) cost no memory beyond their labels. Helm's labels say all that a
// release's health needs: owner=helm, name, version and status.
var secrets = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// DefaultPendingGrace is how long a Helm release may stay pending-install,
// -upgrade or -rollback before it counts as stuck: past helm's default
// 5-minute timeout, so that a slow --wait is not an alert.
const DefaultPendingGrace = 10 * time.Minute

// helmReleaseIndex indexes release Secrets by "namespace/release".
const helmReleaseIndex = "helmRelease"

// helmRevision is what the labels of one Helm release Secret say.
type helmRevision struct {
	release string
	version int
	status  string
	// modified is when Helm last wrote it (its modifiedAt label), else when it was created.
	modified time.Time
}

// helmRevisionOf reads the labels of a Helm release Secret; ok is false
// for any other object.
func helmRevisionOf(obj metav1.Object) (helmRevision, bool) {
	l := obj.GetLabels()
	if l["owner"] != "helm" || l["name"] == "" || l["status"] == "" {
		return helmRevision{}, false
	}
	v, err := strconv.Atoi(l["version"])
	if err != nil {
		return helmRevision{}, false
	}
	r := helmRevision{release: l["name"], version: v, status: l["status"], modified: obj.GetCreationTimestamp().Time}
	if ts, err := strconv.ParseInt(l["modifiedAt"], 10, 64); err == nil {
		r.modified = time.Unix(ts, 0)
	}
	return r, true
}

// indexHelmRelease is the informer index function for helmReleaseIndex.
func indexHelmRelease(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	r, ok := helmRevisionOf(m)
	if !ok {
		return nil, nil
	}
	return []string{m.GetNamespace() + "/" + r.release}, nil
}

// helmHealth is the health of a release as one revision shows it: failed
// fails at once; a pending-* status fails only once it has lasted the
// grace period (health.deferred).
func helmHealth(obj *unstructured.Unstructured) health {
	r, _ := helmRevisionOf(obj)
	h := health{since: r.modified}
	switch r.status {
	case "failed":
		h.failing, h.reason = true, "HelmReleaseFailed"
		h.message = fmt.Sprintf("revision %d of release %s failed; see helm history %s -n %s", r.version, r.release, r.release, obj.GetNamespace())
	case "pending-install", "pending-upgrade", "pending-rollback":
		h.failing, h.deferred, h.reason = true, true, "HelmRelease"+pendingReason[r.status]
		h.message = fmt.Sprintf("revision %d of release %s is %s, and no Helm operation is finishing it; Helm refuses further upgrades until it is rolled back",
			r.version, r.release, r.status)
	default:
		h.message = fmt.Sprintf("revision %d of release %s is %s", r.version, r.release, r.status)
	}
	return h
}

var pendingReason = map[string]string{
	"pending-install": "PendingInstall", "pending-upgrade": "PendingUpgrade", "pending-rollback": "PendingRollback",
}

// helmSubject is the release a revision Secret belongs to: transition
// alerts are about the release, whichever revision changed.
func helmSubject(obj *unstructured.Unstructured) event.Object {
	r, _ := helmRevisionOf(obj)
	return event.Object{APIVersion: "helm.sh/v3", Kind: "HelmRelease", Namespace: obj.GetNamespace(), Name: r.release}
}

// latestHelmRevision reports whether obj is its release's newest revision
// in the cache: older revisions (superseded ones, or a failed one already
// being rolled back) say nothing about the release's health now.
func (r *resource) latestHelmRevision(obj *unstructured.Unstructured) bool {
	rev, ok := helmRevisionOf(obj)
	if !ok || r.store == nil {
		return ok
	}
	others, err := r.store.ByIndex(helmReleaseIndex, obj.GetNamespace()+"/"+rev.release)
	if err != nil {
		return true
	}
	for _, o := range others {
		if m, err := meta.Accessor(o); err == nil {
			if or, ok := helmRevisionOf(m); ok && or.version > rev.version {
				return false
			}
		}
	}
	return true
}

// metadataOnly sets the kind of a Secret's metadata, which the metadata
// API reports as PartialObjectMetadata, and strips managed fields.
func metadataOnly(obj any) (any, error) {
	if p, ok := obj.(*metav1.PartialObjectMetadata); ok {
		p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
		p.ManagedFields = nil
		if a := p.Annotations; a[lastApplied] != "" {
			delete(a, lastApplied)
		}
	}
	return obj, nil
}
