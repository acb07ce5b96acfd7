package kubernetes

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"

	"github.com/kubechat/kubechat/internal/event"
)

// The informer caches are most of the agent's memory: at 10k pods a
// decoded pod's spec and status dwarf everything else. So each resource's
// cache keeps only what its filters, health checks and recommendations
// read, decided once per resource from its configuration:
//
//   - a resource that watches field paths (fields:) keeps whole objects,
//     less managed fields: any path may be read;
//   - a resource that reports updates without fields summarises which
//     top-level parts changed, so it keeps them (slim);
//   - any other keeps a minimal copy (keep): the metadata the filters read
//     and, for the kinds with a health check (pods, Deployments, Jobs) or
//     a message (Events) or a recommendation (Ingress backends, pod
//     images and limits), the fields those read; other kinds keep their
//     metadata only. Flux and Argo CD kinds, read at length by their
//     checks, shed managed fields and kubectl's last-applied copy.
//
// A copy, not the decoded object trimmed in place, so that everything it
// leaves out becomes garbage at once. TestTransformKeepsEvents holds the
// events of transformed objects equal to those of whole ones.

// transform is the cache transform of r.
func (s *Source) transform(r *resource) cache.TransformFunc {
	switch {
	case len(r.fields) > 0:
		return stripManagedFields
	case r.events[event.Update]:
		return slim
	}
	k := keep{containers: s.recommend.LatestTag || s.recommend.ResourceLimits, ingressSpec: s.recommend.IngressBackends}
	if reqs, ok := r.annots.Requirements(); ok {
		for _, req := range reqs {
			k.annotations = append(k.annotations, req.Key())
		}
	}
	return k.transform
}

// keep is what a minimal copy keeps besides what every check reads.
type keep struct {
	// annotations are the keys the resource's annotation selector reads.
	annotations []string
	// containers keeps pods' container names, images and limits, for the
	// recommendations on them.
	containers bool
	// ingressSpec keeps Ingresses' spec, for the backend recommendation.
	ingressSpec bool
}

// detailedKinds are the unstructured kinds whose checks read more than
// metadata (healthOf); they keep their contents.
var detailedKinds = map[string]bool{"Kustomization": true, "Application": true, "ApplicationSet": true}

func (k keep) transform(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if detailedKinds[u.GetKind()] {
			return slim(u)
		}
		// A built-in kind from the dynamic client: its typed form is
		// trimmed as a typed informer's would be.
		if typed, err := scheme.Scheme.New(u.GroupVersionKind()); err == nil && k.handles(typed) {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, typed); err != nil {
				return slim(u) // unreadable as its kind: keep what its checks might read
			}
			obj = typed
		}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		return k.pod(o), nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{TypeMeta: o.TypeMeta, ObjectMeta: k.meta(&o.ObjectMeta),
			Status: appsv1.DeploymentStatus{Conditions: trimDeploymentConditions(o.Status.Conditions)}}, nil
	case *batchv1.Job:
		return &batchv1.Job{TypeMeta: o.TypeMeta, ObjectMeta: k.meta(&o.ObjectMeta),
			Status: batchv1.JobStatus{Conditions: trimJobConditions(o.Status.Conditions)}}, nil
	case *corev1.Event:
		ref := o.InvolvedObject
		return &corev1.Event{TypeMeta: o.TypeMeta, ObjectMeta: k.meta(&o.ObjectMeta), Type: o.Type, Reason: o.Reason, Message: o.Message,
			InvolvedObject: corev1.ObjectReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name},
			LastTimestamp:  o.LastTimestamp, EventTime: o.EventTime, Series: o.Series}, nil
	case *eventsv1.Event:
		ref := o.Regarding
		return &eventsv1.Event{TypeMeta: o.TypeMeta, ObjectMeta: k.meta(&o.ObjectMeta), Type: o.Type, Reason: o.Reason, Note: o.Note,
			Regarding:               corev1.ObjectReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name},
			DeprecatedLastTimestamp: o.DeprecatedLastTimestamp, EventTime: o.EventTime, Series: o.Series}, nil
	case *networkingv1.Ingress:
		out := &networkingv1.Ingress{TypeMeta: o.TypeMeta, ObjectMeta: k.meta(&o.ObjectMeta)}
		if k.ingressSpec {
			out.Spec = o.Spec
		}
		return out, nil
	case *metav1.PartialObjectMetadata:
		return &metav1.PartialObjectMetadata{TypeMeta: o.TypeMeta, ObjectMeta: k.meta(&o.ObjectMeta)}, nil
	case *unstructured.Unstructured:
		// Any other kind: nothing but its metadata is read.
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: o.GetAPIVersion(), Kind: o.GetKind()},
			ObjectMeta: k.unstructuredMeta(o)}, nil
	case metav1.ObjectMetaAccessor:
		om, ok := o.GetObjectMeta().(*metav1.ObjectMeta)
		ro, isObj := obj.(runtime.Object)
		if !ok || !isObj {
			break
		}
		if gvks, _, err := scheme.Scheme.ObjectKinds(ro); err == nil && len(gvks) > 0 {
			tm := metav1.TypeMeta{APIVersion: gvks[0].GroupVersion().String(), Kind: gvks[0].Kind}
			return &metav1.PartialObjectMetadata{TypeMeta: tm, ObjectMeta: k.meta(om)}, nil
		}
	}
	return slim(obj)
}

// handles reports whether obj is a kind keep trims to more than metadata.
func (keep) handles(obj runtime.Object) bool {
	switch obj.(type) {
	case *corev1.Pod, *appsv1.Deployment, *batchv1.Job, *corev1.Event, *eventsv1.Event, *networkingv1.Ingress:
		return true
	}
	return false
}

// meta keeps what filters, keys, occurrence ids and recommendations read:
// names, uid, resourceVersion, timestamps, labels, the controller and the
// annotations the selector names.
func (k keep) meta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp, Labels: m.Labels}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		out.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	for _, key := range k.annotations {
		if v, ok := m.Annotations[key]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[key] = v
		}
	}
	return out
}

// unstructuredMeta is meta for an object of a kind the scheme does not know.
func (k keep) unstructuredMeta(u *unstructured.Unstructured) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: u.GetName(), Namespace: u.GetNamespace(), UID: u.GetUID(), ResourceVersion: u.GetResourceVersion(),
		CreationTimestamp: u.GetCreationTimestamp(), DeletionTimestamp: u.GetDeletionTimestamp(), Labels: u.GetLabels(),
		Annotations: u.GetAnnotations(), OwnerReferences: u.GetOwnerReferences()}
	return k.meta(&m)
}

func trimDeploymentConditions(in []appsv1.DeploymentCondition) []appsv1.DeploymentCondition {
	var out []appsv1.DeploymentCondition
	for _, c := range in {
		if c.Type == appsv1.DeploymentProgressing || c.Type == appsv1.DeploymentAvailable {
			c.LastUpdateTime = metav1.Time{}
			out = append(out, c)
		}
	}
	return out
}

func trimJobConditions(in []batchv1.JobCondition) []batchv1.JobCondition {
	var out []batchv1.JobCondition
	for _, c := range in {
		if c.Type == batchv1.JobFailed || c.Type == batchv1.JobComplete {
			c.LastProbeTime = metav1.Time{}
			out = append(out, c)
		}
	}
	return out
}

func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// lastApplied is kubectl's copy of the whole object, often its largest annotation.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// slim strips managed fields, kubectl's last-applied copy and, from pods,
// the parts of the spec and status that no filter, health check or
// recommendation reads: volumes, environment, probes, mounts, scheduling
// constraints and IP lists. What is left still shows which top-level parts
// an update changed.
func slim(obj any) (any, error) {
	obj, _ = stripManagedFields(obj)
	if m, err := meta.Accessor(obj); err == nil {
		if a := m.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
			m.SetAnnotations(a)
		}
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	p.Spec.Volumes, p.Spec.Tolerations, p.Spec.Affinity, p.Spec.TopologySpreadConstraints = nil, nil, nil, nil
	p.Spec.ReadinessGates, p.Spec.HostAliases, p.Spec.DNSConfig, p.Spec.SecurityContext = nil, nil, nil, nil
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for i := range cs {
			c := &cs[i]
			c.Env, c.EnvFrom, c.VolumeMounts, c.VolumeDevices, c.Ports = nil, nil, nil, nil, nil
			c.LivenessProbe, c.ReadinessProbe, c.StartupProbe, c.Lifecycle, c.SecurityContext = nil, nil, nil, nil, nil
			c.Command, c.Args = nil, nil
		}
	}
	p.Spec.EphemeralContainers = nil
	p.Status.PodIPs, p.Status.HostIPs = nil, nil
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].VolumeMounts = nil
		p.Status.ContainerStatuses[i].AllocatedResources = nil
	}
	return p, nil
}
