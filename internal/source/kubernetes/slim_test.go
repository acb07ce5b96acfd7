package kubernetes

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// objectMeta is what the API server sends with every object, including
// what no check reads (managed fields, kubectl's copy, finalizers).
func objectMeta(name string, rv int, labels map[string]string) metav1.ObjectMeta {
	created := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	return metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name), ResourceVersion: fmt.Sprint(rv),
		CreationTimestamp: created, Generation: 3, Labels: labels, Finalizers: []string{"example.com/keep"},
		Annotations: map[string]string{lastApplied: `{"big":"copy"}`, "team": "payments", "deployment.kubernetes.io/revision": "4"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply,
			FieldsV1: metav1.NewFieldsV1(`{"f:spec":{}}`)}},
		OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: "rs-1", Controller: ptr.To(true)},
			{APIVersion: "v1", Kind: "ConfigMap", Name: "not-the-controller", UID: "cm-1"},
		}}
}

func at(min int) metav1.Time { return metav1.NewTime(time.Date(2026, 1, 2, 4, min, 0, 0, time.UTC)) }

// fullPod is a pod as a kubelet reports it, with its state set by waiting
// (a container's waiting reason, "" for running) and phase.
func fullPod(rv int, labels map[string]string, image, waiting, initWaiting string, phase corev1.PodPhase, ready corev1.ConditionStatus) *corev1.Pod {
	c := corev1.Container{Name: "app", Image: image, Command: []string{"/app"}, Args: []string{"--serve"},
		Env:          []corev1.EnvVar{{Name: "MODE", Value: "prod"}},
		Ports:        []corev1.ContainerPort{{ContainerPort: 8080}},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: apiresource.MustParse("1")},
			Requests: corev1.ResourceList{corev1.ResourceMemory: apiresource.MustParse("64Mi")}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready"}}}}
	status := func(name, reason string) corev1.ContainerStatus {
		s := corev1.ContainerStatus{Name: name, Image: image, ImageID: "sha256:1", ContainerID: "containerd://1", RestartCount: 7,
			State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(1)}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}
		if reason != "" {
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "back-off 5m0s restarting " + name}}
		}
		return s
	}
	p := &corev1.Pod{ObjectMeta: objectMeta("web-1", rv, labels),
		Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "web", Containers: []corev1.Container{c},
			InitContainers: []corev1.Container{{Name: "migrate", Image: "registry.example/migrate:2"}},
			Volumes:        []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Tolerations:    []corev1.Toleration{{Key: "spot", Operator: corev1.TolerationOpExists}}},
		Status: corev1.PodStatus{Phase: phase, HostIP: "10.0.0.1", PodIP: "10.1.0.1", PodIPs: []corev1.PodIP{{IP: "10.1.0.1"}},
			StartTime: ptr.To(at(0)), QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at(0)},
				{Type: corev1.PodReady, Status: ready, Reason: "ContainersNotReady", Message: "containers with unready status: [app]", LastTransitionTime: at(rv), LastProbeTime: at(rv)},
				{Type: corev1.ContainersReady, Status: ready, LastTransitionTime: at(rv)},
			},
			ContainerStatuses:     []corev1.ContainerStatus{status("app", waiting)},
			InitContainerStatuses: []corev1.ContainerStatus{status("migrate", initWaiting)}}}
	if phase == corev1.PodFailed {
		p.Status.Reason = "Evicted"
	}
	return p
}

func fullDeployment(rv int, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: objectMeta("web", rv, map[string]string{"app": "web"}),
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{Spec: fullPod(1, nil, "web:1", "", "", corev1.PodRunning, corev1.ConditionTrue).Spec}},
		Status: appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 1, ObservedGeneration: 3, Conditions: conds}}
}

func deployCond(typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason string, min int) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: "deployment " + reason, LastTransitionTime: at(min), LastUpdateTime: at(min + 1)}
}

func fullJob(rv int, conds ...batchv1.JobCondition) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: objectMeta("backup", rv, map[string]string{"job": "backup"}),
		Spec:   batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: fullPod(1, nil, "backup:1", "", "", corev1.PodRunning, corev1.ConditionTrue).Spec}},
		Status: batchv1.JobStatus{Failed: 2, StartTime: ptr.To(at(0)), Conditions: conds}}
}

func fullEvent(rv int, typ, reason string) *corev1.Event {
	return &corev1.Event{ObjectMeta: objectMeta("web-1.17f", rv, nil), Type: typ, Reason: reason, Message: " Back-off restarting failed container app \n",
		InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "web-1", UID: "uid-web-1", FieldPath: "spec.containers{app}", ResourceVersion: "9"},
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"}, Count: 12, FirstTimestamp: at(1), LastTimestamp: at(9),
		ReportingController: "kubelet", ReportingInstance: "node-1"}
}

func fullEventV1(rv int, typ string) *eventsv1.Event {
	return &eventsv1.Event{ObjectMeta: objectMeta("web-1.18a", rv, nil), Type: typ, Reason: "BackOff", Note: "Back-off pulling image",
		Regarding:           corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "web-1", FieldPath: "spec.containers{app}"},
		ReportingController: "kubelet", ReportingInstance: "node-1", Action: "Pulling", EventTime: metav1.NewMicroTime(at(3).Time)}
}

// history is a sequence of versions of one object, as its informer sees them.
type history struct {
	resource string
	versions []runtime.Object
}

func histories() []history {
	labels := map[string]string{"app": "web", "tier": "front"}
	ready := func(rv int) *corev1.Pod {
		return fullPod(rv, labels, "registry.example/web:1.2", "", "", corev1.PodRunning, corev1.ConditionTrue)
	}
	crash := func(rv int) *corev1.Pod {
		return fullPod(rv, labels, "registry.example/web:1.2", "CrashLoopBackOff", "", corev1.PodRunning, corev1.ConditionFalse)
	}
	initPull := func(rv int) *corev1.Pod {
		return fullPod(rv, labels, "registry.example/web:1.2", "", "ImagePullBackOff", corev1.PodPending, corev1.ConditionFalse)
	}
	failed := func(rv int) *corev1.Pod {
		return fullPod(rv, labels, "registry.example/web:1.2", "", "", corev1.PodFailed, corev1.ConditionFalse)
	}
	latest := fullPod(1, nil, "nginx", "", "", corev1.PodPending, corev1.ConditionFalse)
	available := deployCond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", 2)
	progressing := deployCond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable", 2)
	configMap := &corev1.ConfigMap{ObjectMeta: objectMeta("settings", 1, labels), Data: map[string]string{"a": "b"}}
	return []history{
		{"v1/pods", []runtime.Object{ready(10), crash(11), crash(12), ready(13), initPull(14), failed(15), ready(16)}},
		{"v1/pods", []runtime.Object{latest}},
		{"apps/v1/deployments", []runtime.Object{
			fullDeployment(20, available, progressing),
			fullDeployment(21, deployCond(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", 40), progressing),
			fullDeployment(22, available, deployCond(appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded", 41)),
			fullDeployment(23, available, progressing),
		}},
		{"batch/v1/jobs", []runtime.Object{
			fullJob(30),
			fullJob(31, batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "too many failures", LastTransitionTime: at(5), LastProbeTime: at(6)}),
			fullJob(32, batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: at(7)}),
		}},
		{"v1/events", []runtime.Object{fullEvent(40, "Normal", "Pulled"), fullEvent(41, "Warning", "BackOff"), fullEvent(42, "Warning", "Unhealthy")}},
		{"events.k8s.io/v1/events", []runtime.Object{fullEventV1(50, "Warning"), fullEventV1(51, "Normal")}},
		{"v1/configmaps", []runtime.Object{configMap}},
	}
}

// TestTransformKeepsEvents: what a source emits from the minimal copies in
// its cache (typed, as from the protobuf informers, and unstructured, as
// from the dynamic client) equals what it emits from whole objects, for
// every change of each history: creation (live and replayed), each update,
// deletion, and the recommendations on creation.
func TestTransformKeepsEvents(t *testing.T) {
	filters := map[string]config.Resource{
		"every event":           {Events: []string{"create", "delete", "error"}},
		"errors only":           {Events: []string{"error"}},
		"annotation selector":   {Events: []string{"create", "delete", "error"}, Annotations: "team=payments"},
		"annotation missing":    {Events: []string{"create", "error"}, Annotations: "!team"},
		"labels and name":       {Events: []string{"create", "error"}, Labels: "tier in (front)", Name: "web.*"},
		"reasons and a message": {Events: []string{"error"}, Reasons: []string{"BackOff"}, Message: "restarting"},
	}
	recommend := config.Recommendations{LatestTag: true, ResourceLimits: true, PodLabels: true}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for fname, f := range filters {
		for _, h := range histories() {
			t.Run(fname+"/"+h.resource+"/"+kindOf(t, h.versions[0]), func(t *testing.T) {
				f.Type = h.resource
				s := newSource(t, config.Namespaces{}, f)
				s.recommend = recommend
				s.SetReplay(since, nil)
				r := s.resources[0]
				transform := s.transform(r)
				for _, dynamic := range []bool{false, true} {
					whole := make([]*unstructured.Unstructured, len(h.versions))
					cached := make([]*unstructured.Unstructured, len(h.versions))
					for i, v := range h.versions {
						var err error
						whole[i], err = toUnstructured(v.DeepCopyObject())
						require.NoError(t, err)
						in := any(v.DeepCopyObject())
						if dynamic {
							in = whole[i].DeepCopy()
						}
						out, err := transform(in)
						require.NoError(t, err)
						cached[i], err = toUnstructured(out.(runtime.Object))
						require.NoError(t, err)
					}
					emit := func(objs []*unstructured.Unstructured) []event.Event {
						var evs []event.Event
						add := func(c change) {
							c.res = r
							evs = append(evs, s.toEvents(c)...)
							if c.typ == event.Create {
								if ev, ok := s.recommendations(t.Context(), c.obj); ok {
									evs = append(evs, ev)
								}
							}
						}
						add(change{typ: event.Create, obj: objs[0]})
						add(change{typ: event.Create, obj: objs[0], initial: true})
						for i := 1; i < len(objs); i++ {
							add(change{typ: event.Update, obj: objs[i], old: objs[i-1]})
							add(change{typ: event.Create, obj: objs[i], initial: true})
						}
						add(change{typ: event.Delete, obj: objs[len(objs)-1]})
						for i := range evs {
							evs[i].Time = time.Time{}
						}
						return evs
					}
					want := emit(whole)
					require.Equal(t, want, emit(cached), "dynamic: %v", dynamic)
					if fname == "every event" {
						require.NotEmpty(t, want, "the history is reported at all")
					}
				}
			})
		}
	}
}

func kindOf(t *testing.T, obj runtime.Object) string {
	u, err := toUnstructured(obj)
	require.NoError(t, err)
	return u.GetKind()
}

// TestTransformKeepsLittle: the copies leave out what no check reads.
func TestTransformKeepsLittle(t *testing.T) {
	s := newSource(t, config.Namespaces{}, config.Resource{Type: "v1/pods", Events: []string{"create", "error"}})
	p := fullPod(1, map[string]string{"app": "web"}, "web:1", "CrashLoopBackOff", "", corev1.PodRunning, corev1.ConditionFalse)
	out, err := s.transform(s.resources[0])(p)
	require.NoError(t, err)
	got := out.(*cachedPod)
	require.Empty(t, got.containers, "no recommendation reads containers")
	require.Empty(t, got.ManagedFields)
	require.Empty(t, got.Annotations, "no selector reads annotations")
	require.Equal(t, []metav1.OwnerReference{p.OwnerReferences[0]}, got.OwnerReferences, "the controller only")
	require.Equal(t, []waitingContainer{{name: "app", reason: "CrashLoopBackOff", message: "back-off 5m0s restarting app"}}, got.waiting,
		"the waiting container only")
	require.Nil(t, got.Labels, "labels are shared, not a map of each pod")
	require.Equal(t, map[string]string{"app": "web"}, got.GetLabels())

	// Pods with the same labels share them.
	other, err := s.transform(s.resources[0])(fullPod(2, map[string]string{"app": "web"}, "web:1", "", "", corev1.PodRunning, corev1.ConditionTrue))
	require.NoError(t, err)
	require.Equal(t, got.labels, other.(*cachedPod).labels)
	require.Nil(t, other.(*cachedPod).waiting, "no container waits")

	// A copy of the copy is the same pod, not the same memory.
	cp := got.DeepCopyObject().(*cachedPod)
	require.Equal(t, got, cp)
	cp.waiting[0].reason = "changed"
	require.Equal(t, "CrashLoopBackOff", got.waiting[0].reason)

	// Updates without fields show which parts changed: they keep them.
	s = newSource(t, config.Namespaces{}, config.Resource{Type: "v1/pods", Events: []string{"update"}})
	out, err = s.transform(s.resources[0])(p.DeepCopy())
	require.NoError(t, err)
	require.NotEmpty(t, out.(*corev1.Pod).Spec.Containers)

	// A kind no check reads keeps its metadata only: no data at all.
	s = newSource(t, config.Namespaces{}, config.Resource{Type: "v1/configmaps", Events: []string{"create", "delete"}})
	out, err = s.transform(s.resources[0])(&corev1.ConfigMap{ObjectMeta: objectMeta("settings", 1, nil), Data: map[string]string{"a": "b"}})
	require.NoError(t, err)
	require.Equal(t, metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, out.(*metav1.PartialObjectMetadata).TypeMeta)
}
