package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const isolated = `cluster:
  name: dev
platforms:
  - name: ops
    type: log
channels:
  - name: dev-team
    platform: ops
    bindings:
      executors: [kubectl]
    identity:
      serviceAccount: kubechat/dev-reader
  - name: sre
    platform: ops
    isolation: inProcess
    bindings:
      executors: [kubectl]
    identity:
      user: sre
executors:
  - type: kubectl
    isolation: pod
    pod:
      namespace: kubechat
      deadline: 20s
      resources:
        requests: {cpu: 50m, memory: 64Mi}
        limits: {cpu: "1", memory: 256Mi}
`

func TestIsolation(t *testing.T) {
	cfg, err := parse(t, isolated)
	require.NoError(t, err)
	require.Equal(t, IsolationPod, IsolationFor(cfg.Channels[0], cfg.Executors[0]))
	require.Equal(t, IsolationInProcess, IsolationFor(cfg.Channels[1], cfg.Executors[0]), "the channel overrides the executor")
	require.Equal(t, IsolationInProcess, IsolationFor(Channel{}, Executor{}))
	p := cfg.Executors[0].Pod.WithDefaults()
	require.Equal(t, "IfNotPresent", p.ImagePullPolicy)
	require.Equal(t, "64Mi", p.Resources.Requests.Memory)

	for name, tc := range map[string]struct {
		override string
		want     string
	}{
		"user identity": {"channels:\n  - name: sre\n    platform: ops\n    isolation: pod\n    bindings:\n      executors: [kubectl]\n    identity:\n      user: sre\n",
			`override.yaml:8: channels[0].identity: executor "kubectl" runs commands in pods (isolation: pod), which run as a ServiceAccount: set identity.serviceAccount`},
		"other namespace": {"channels:\n  - name: web\n    platform: ops\n    bindings:\n      executors: [kubectl]\n    identity:\n      serviceAccount: web/reader\n",
			`channels[0].identity.serviceAccount: executor "kubectl" runs its pods in namespace "kubechat" (pod.namespace), and a pod can only run as a ServiceAccount of its own namespace`},
		"user mapping": {"users:\n  - platform: ops\n    id: U1\n    identity:\n      user: alice\n",
			`users[0].identity: commands of channel "dev-team" run in pods (isolation: pod), which run as a ServiceAccount, and this identity replaces the channel's`},
		"mode":      {"executors:\n  - type: kubectl\n    isolation: container\n", `executors[0].isolation: unknown isolation "container" (known: inProcess, pod)`},
		"channel":   {"channels:\n  - name: x\n    platform: ops\n    isolation: vm\n", `channels[0].isolation: unknown isolation "vm"`},
		"quantity":  {"executors:\n  - type: kubectl\n    pod:\n      resources:\n        limits: {memory: lots}\n", `executors[0].pod.resources.limits.memory: "lots" is not a positive quantity`},
		"request":   {"executors:\n  - type: kubectl\n    pod:\n      resources:\n        requests: {cpu: \"2\"}\n        limits: {cpu: \"1\"}\n", `executors[0].pod.resources.requests.cpu: 2 is more than the limit 1`},
		"pull":      {"executors:\n  - type: kubectl\n    pod:\n      imagePullPolicy: Sometimes\n", `executors[0].pod.imagePullPolicy: unknown pull policy "Sometimes"`},
		"deadline":  {"executors:\n  - type: kubectl\n    policy:\n      timeout: 10s\n    pod:\n      deadline: 10s\n", `executors[0].pod.deadline: must be shorter than policy.timeout (10s)`},
		"namespace": {"executors:\n  - type: kubectl\n    pod:\n      namespace: Bad_NS\n", `executors[0].pod.namespace: "Bad_NS" is not a namespace name`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, isolated, tc.override)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestPodDefaultsNeverContradictWhatIsSet(t *testing.T) {
	p := PodSettings{Resources: PodResources{
		Requests: ResourceList{Memory: "512Mi"},
		Limits:   ResourceList{CPU: "20m"},
	}}.WithDefaults()
	require.Equal(t, "IfNotPresent", p.ImagePullPolicy)
	require.Equal(t, PodResources{
		Requests: ResourceList{CPU: "20m", Memory: "512Mi"},
		Limits:   ResourceList{CPU: "20m", Memory: "512Mi"},
	}, p.Resources, "a default request is capped by the limit set, a default limit raised to the request set")

	d := PodSettings{}.WithDefaults().Resources
	require.Equal(t, PodResources{
		Requests: ResourceList{CPU: DefaultPodCPURequest, Memory: DefaultPodMemoryRequest},
		Limits:   ResourceList{CPU: DefaultPodCPULimit, Memory: DefaultPodMemoryLimit},
	}, d)
}
