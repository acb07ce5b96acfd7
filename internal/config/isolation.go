package config

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Isolation modes of an executor (Executor.Isolation, Channel.Isolation).
const (
	// IsolationInProcess runs commands inside the agent (the default).
	IsolationInProcess = "inProcess"
	// IsolationPod runs each command in its own short-lived Pod, as the
	// channel's ServiceAccount, with the executor's pod limits.
	IsolationPod = "pod"
)

// Isolations are the valid isolation modes.
var Isolations = []string{IsolationInProcess, IsolationPod}

// PodSettings shape the pods that commands run in (isolation: pod), and the
// run executor's template pods.
type PodSettings struct {
	// Namespace is where command pods run. A pod runs as a ServiceAccount of
	// its own namespace, so this must be the channel identity's namespace
	// (default: that namespace).
	Namespace string `yaml:"namespace" jsonschema:"pattern=^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"`
	// Image runs "kubechat exec" (default: the agent's own image, from
	// $KUBECHAT_IMAGE, which the Helm chart sets).
	Image string `yaml:"image"`
	// ImagePullPolicy is IfNotPresent (default: keeps a pulled image warm),
	// Always or Never.
	ImagePullPolicy string `yaml:"imagePullPolicy" jsonschema:"enum=IfNotPresent,enum=Always,enum=Never"`
	// Resources are the container's requests and limits.
	Resources PodResources `yaml:"resources"`
	// Deadline is the pod's activeDeadlineSeconds (default: the policy's
	// timeout less 5s, so the deadline is reported before the command times out).
	Deadline Duration `yaml:"deadline"`
}

// PodResources are CPU and memory quantities ("100m", "128Mi").
type PodResources struct {
	Requests ResourceList `yaml:"requests"`
	Limits   ResourceList `yaml:"limits"`
}

// ResourceList is a CPU and a memory quantity.
type ResourceList struct {
	CPU    string `yaml:"cpu" jsonschema:"oneof_type=string;number"`
	Memory string `yaml:"memory" jsonschema:"oneof_type=string;number"`
}

// Default pod resources of an isolated command.
const (
	DefaultPodCPURequest    = "50m"
	DefaultPodMemoryRequest = "64Mi"
	DefaultPodCPULimit      = "1"
	DefaultPodMemoryLimit   = "256Mi"
)

// WithDefaults fills in IfNotPresent and the default requests and limits.
// A default never contradicts a value that is set: a default request is
// no more than the limit set, and a default limit no less than the
// request set, so that the pod stays valid.
func (p PodSettings) WithDefaults() PodSettings {
	if p.ImagePullPolicy == "" {
		p.ImagePullPolicy = "IfNotPresent"
	}
	fill := func(s *string, d, bound string, keep func(c int) bool) {
		if *s != "" {
			return
		}
		*s = d
		b, errB := resource.ParseQuantity(bound)
		q, errQ := resource.ParseQuantity(d)
		if bound != "" && errB == nil && errQ == nil && !keep(q.Cmp(b)) {
			*s = bound
		}
	}
	req, lim := &p.Resources.Requests, &p.Resources.Limits
	atMost := func(c int) bool { return c <= 0 }
	atLeast := func(c int) bool { return c >= 0 }
	// Requests first, bounded by limits set by the user; then limits,
	// bounded by the requests now known.
	fill(&req.CPU, DefaultPodCPURequest, lim.CPU, atMost)
	fill(&req.Memory, DefaultPodMemoryRequest, lim.Memory, atMost)
	fill(&lim.CPU, DefaultPodCPULimit, req.CPU, atLeast)
	fill(&lim.Memory, DefaultPodMemoryLimit, req.Memory, atLeast)
	return p
}

// IsolationFor is how commands of executor e run when sent from channel
// ch: the channel's setting overrides the executor's; inProcess by default.
func IsolationFor(ch Channel, e Executor) string {
	switch {
	case ch.Isolation != "":
		return ch.Isolation
	case e.Isolation != "":
		return e.Isolation
	}
	return IsolationInProcess
}

// isolation checks the isolation settings of executors and channels: a
// pod runs as a ServiceAccount of its own namespace, so a channel whose
// commands run in pods needs a ServiceAccount identity there.
func (v *validator) isolation(c *Config) {
	execs := map[string]Executor{}
	for i, e := range c.Executors {
		execs[e.Name] = e
		path := fmt.Sprintf("executors[%d]", i)
		if e.Isolation != "" {
			v.oneOf(path+".isolation", e.Isolation, Isolations, "isolation")
		}
		v.podSettings(path+".pod", e.Pod)
		if e.Pod.Deadline > 0 && e.Policy.Timeout > 0 && e.Pod.Deadline >= e.Policy.Timeout {
			v.add(path+".pod.deadline", "must be shorter than policy.timeout (%s), so that the pod's deadline is reported before the command times out; got %s", e.Policy.Timeout, e.Pod.Deadline)
		}
	}
	podPlatforms := map[string]string{} // platform -> a channel whose commands run in pods
	for i, ch := range c.Channels {
		path := fmt.Sprintf("channels[%d]", i)
		if ch.Isolation != "" {
			v.oneOf(path+".isolation", ch.Isolation, Isolations, "isolation")
		}
		for _, name := range ch.Bindings.Executors {
			e, ok := execs[name]
			if !ok || IsolationFor(ch, e) != IsolationPod {
				continue
			}
			podPlatforms[ch.Platform] = ch.Name
			if ch.Identity == nil {
				continue
			}
			if ch.Identity.ServiceAccount == "" {
				v.add(path+".identity", "executor %q runs commands in pods (isolation: pod), which run as a ServiceAccount: set identity.serviceAccount (namespace/name) instead of a user", name)
				continue
			}
			ns, _, _ := strings.Cut(ch.Identity.ServiceAccount, "/")
			if e.Pod.Namespace != "" && e.Pod.Namespace != ns {
				v.add(path+".identity.serviceAccount", "executor %q runs its pods in namespace %q (pod.namespace), and a pod can only run as a ServiceAccount of its own namespace; %q is in %q", name, e.Pod.Namespace, ch.Identity.ServiceAccount, ns)
			}
		}
	}
	// A user's own identity replaces the channel's, in pods too.
	for i, u := range c.Users {
		if ch, ok := podPlatforms[u.Platform]; ok && u.Identity != nil && u.Identity.ServiceAccount == "" {
			v.add(fmt.Sprintf("users[%d].identity", i), "commands of channel %q run in pods (isolation: pod), which run as a ServiceAccount, and this identity replaces the channel's: set identity.serviceAccount (namespace/name) instead of a user", ch)
		}
	}
}

func (v *validator) podSettings(path string, p PodSettings) {
	if p.Namespace != "" {
		if errs := validation.IsDNS1123Label(p.Namespace); len(errs) > 0 {
			v.add(path+".namespace", "%q is not a namespace name", p.Namespace)
		}
	}
	switch p.ImagePullPolicy {
	case "", "IfNotPresent", "Always", "Never":
	default:
		v.add(path+".imagePullPolicy", "unknown pull policy %q (known: IfNotPresent, Always, Never)", p.ImagePullPolicy)
	}
	if strings.ContainsAny(p.Image, " \t\n") {
		v.add(path+".image", "%q is not an image reference", p.Image)
	}
	if p.Deadline < 0 || (p.Deadline > 0 && p.Deadline.D().Seconds() < 1) {
		v.add(path+".deadline", "must be at least 1s, got %s", p.Deadline)
	}
	v.resources(path+".resources", p.Resources)
}

// resources checks quantities, and that no request exceeds its limit.
func (v *validator) resources(path string, r PodResources) {
	parse := func(p, q string) *resource.Quantity {
		if q == "" {
			return nil
		}
		parsed, err := resource.ParseQuantity(q)
		if err != nil || parsed.Sign() <= 0 {
			v.add(p, "%q is not a positive quantity (for example 100m, 1, 128Mi)", q)
			return nil
		}
		return &parsed
	}
	rc, rm := parse(path+".requests.cpu", r.Requests.CPU), parse(path+".requests.memory", r.Requests.Memory)
	lc, lm := parse(path+".limits.cpu", r.Limits.CPU), parse(path+".limits.memory", r.Limits.Memory)
	if rc != nil && lc != nil && rc.Cmp(*lc) > 0 {
		v.add(path+".requests.cpu", "%s is more than the limit %s", r.Requests.CPU, r.Limits.CPU)
	}
	if rm != nil && lm != nil && rm.Cmp(*lm) > 0 {
		v.add(path+".requests.memory", "%s is more than the limit %s", r.Requests.Memory, r.Limits.Memory)
	}
}

// CheckPodResources validates r as the config does, naming path in errors,
// for executors (the run executor's templates) that decode their own settings.
func CheckPodResources(path string, r PodResources) error {
	v := &validator{doc: newDocument()}
	v.resources(path, r)
	return errors.Join(v.errs...)
}
