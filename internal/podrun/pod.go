package podrun

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/config"
)

// Pod builds the pod for s: non-root, no privilege escalation, no
// capabilities, read-only root filesystem (with an emptyDir at /tmp),
// RuntimeDefault seccomp, never restarted, no service links.
func (r *Runner) Pod(s Spec) (*corev1.Pod, error) {
	res, err := resources(s.Resources)
	if err != nil {
		return nil, err
	}
	deadline := int64((s.Deadline + time.Second - 1) / time.Second)
	if deadline < 1 {
		deadline = 1
	}
	var env []corev1.EnvVar
	for k, v := range s.Env {
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	pull := corev1.PullPolicy(s.ImagePullPolicy)
	if pull == "" {
		pull = corev1.PullIfNotPresent
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			// Named here rather than by the server (generateName), so that
			// a pod the server stored before a failed or cancelled create
			// call can still be deleted by name.
			Name:      labelValue("kubechat-"+s.Executor) + "-" + utilrand.String(5),
			Namespace: s.Namespace,
			Labels: map[string]string{
				LabelManagedBy: ManagedBy,
				LabelCommand:   "true",
				LabelCluster:   labelValue(r.cluster),
				LabelAgent:     r.agent,
				LabelExecutor:  labelValue(s.Executor),
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ServiceAccountName:            s.ServiceAccount,
			AutomountServiceAccountToken:  ptr.To(true),
			ActiveDeadlineSeconds:         &deadline,
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				RunAsGroup:     ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            ContainerName,
				Image:           s.Image,
				ImagePullPolicy: pull,
				Command:         s.Command,
				Args:            s.Args,
				Env:             env,
				Resources:       res,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Privileged:               ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					RunAsNonRoot:             ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts:             []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Mi"))},
			}}},
		},
	}
	if s.Reply != nil {
		s.Reply.annotate(pod, s.MaxOutputBytes)
	}
	return pod, nil
}

func resources(r config.PodResources) (corev1.ResourceRequirements, error) {
	out := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, q := range []struct {
		list  corev1.ResourceList
		name  corev1.ResourceName
		value string
	}{
		{out.Requests, corev1.ResourceCPU, r.Requests.CPU}, {out.Requests, corev1.ResourceMemory, r.Requests.Memory},
		{out.Limits, corev1.ResourceCPU, r.Limits.CPU}, {out.Limits, corev1.ResourceMemory, r.Limits.Memory},
	} {
		if q.value == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.value)
		if err != nil {
			return out, fmt.Errorf("resource %s %q: %w", q.name, q.value, err)
		}
		q.list[q.name] = v
	}
	return out, nil
}

// labelValue shortens s to a valid label value (63 characters, alphanumeric ends).
func labelValue(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, s)
	if len(s) > 50 {
		s = s[:50]
	}
	return strings.Trim(s, "-_.")
}
