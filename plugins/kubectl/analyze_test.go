package kubectl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/executor"
)

// Policies the corpus runs under.
var (
	// open allows every verb, resource and namespace: what is refused
	// under it is refused by the executor's analysis alone.
	open = executor.Policy{Executor: "kubectl-open", Verbs: []string{"*"}}
	// reader is the read-only default, in two namespaces.
	reader = executor.Policy{Executor: "kubectl-read", DefaultVerbs: executor.ReadOnlyVerbs, Namespaces: []string{"web", "api"}, DefaultNamespace: "web"}
	// podsOnly allows pods (core group) in web, any verb.
	podsOnly = executor.Policy{Executor: "kubectl-pods", Verbs: []string{"*"}, Resources: []string{"pods"}, Namespaces: []string{"web"}, DefaultNamespace: "web"}
	// rawPods allows raw paths to pods and their logs in web.
	rawPods = executor.Policy{Executor: "kubectl-raw", DefaultVerbs: executor.ReadOnlyVerbs, Raw: true,
		Resources: []string{"pods", "pods/log"}, Namespaces: []string{"web"}, DefaultNamespace: "web"}
	// ops lists deployments without their group.
	ops = executor.Policy{Executor: "kubectl-ops", Verbs: []string{"*"}, Resources: []string{"pods", "deployments"}}
)

// refusal is one hostile command and the text its refusal must hold.
type refusal struct {
	policy executor.Policy
	cmd    string
	want   string
}

// hostile is the corpus: every way found to read a local file or URL, run
// a subprocess, change the connection or identity, or reach a resource or
// namespace the policy does not allow.
func hostile() []refusal {
	var out []refusal
	add := func(p executor.Policy, want string, cmds ...string) {
		for _, c := range cmds {
			out = append(out, refusal{p, c, want})
		}
	}
	// Files and URLs through -f, in every spelling, on every subcommand that has it.
	for _, sub := range []string{"get", "describe", "delete", "label", "annotate", "scale --replicas 1", "rollout status", "rollout restart", "set image", "patch -p {}", "wait --for=delete", "apply view-last-applied", "autoscale", "expose", "certificate approve"} {
		for _, spelling := range []string{"-f /etc/passwd", "-f=/etc/passwd", "--filename /etc/passwd", "--filename=/etc/passwd", "-f http://127.0.0.1:9/x", "-Rf /etc"} {
			add(open, "the flag --filename is not allowed: it reads a local file or URL", "kubectl "+sub+" "+spelling)
		}
	}
	for _, sub := range []string{"get", "delete", "describe", "label", "rollout undo"} {
		for _, spelling := range []string{"-k /srv/app", "-k=/srv/app", "--kustomize /srv/app", "--kustomize=https://github.com/acme/app//k8s", "--kustomize git::https://127.0.0.1:9/x"} {
			add(open, "the flag --kustomize is not allowed: it reads a local file or URL, and may run git", "kubectl "+sub+" "+spelling)
		}
	}
	// Templates and columns from files.
	for _, spelling := range []string{"-o go-template-file=/etc/passwd", "-o=go-template-file=/etc/passwd", "--output go-template-file=/etc/passwd", "--output=go-template-file=/proc/self/environ", "-ogo-template-file=/etc/passwd"} {
		add(open, "-o go-template-file is not allowed: it reads a template from a local file; give the template inline: -o go-template=TEMPLATE", "kubectl get pods "+spelling)
	}
	add(open, "-o jsonpath-file is not allowed: it reads a template from a local file", "kubectl get pods -o jsonpath-file=/etc/passwd", "kubectl get pods -ojsonpath-file=/var/run/secrets/kubernetes.io/serviceaccount/token", "kubectl get pods --output=jsonpath-file=/x")
	add(open, "-o custom-columns-file is not allowed", "kubectl get pods -o custom-columns-file=/etc/passwd", "kubectl get pods -o=custom-columns-file=/tmp/admin.kubeconfig")
	add(open, "-o templatefile is not allowed", "kubectl get pods -o templatefile=/etc/passwd", "kubectl get pods -o templatefile --template=/etc/passwd")
	add(open, "-o go-template-file is not allowed", "kubectl get pods -o go-template-file --template /etc/passwd", "kubectl create configmap x --dry-run=client -o go-template-file=/etc/passwd")
	add(open, `-o "GO-TEMPLATE-FILE=/etc/passwd" is not an output format kubechat allows`, "kubectl get pods -o GO-TEMPLATE-FILE=/etc/passwd")
	add(open, `-o "yamlx" is not an output format kubechat allows`, "kubectl get pods -o yamlx")
	add(open, `-o "custom-columns" is not an output format kubechat allows`, "kubectl get pods -o custom-columns")
	// Other flags that read files.
	add(open, "the flag --from-file is not allowed: it reads a local file or URL",
		"kubectl create configmap x --from-file=/etc/passwd", "kubectl create configmap x --from-file key=/etc/passwd", "kubectl create secret generic x --from-file=/var/run/secrets/kubernetes.io/serviceaccount/token",
		"kubectl create configmap x --from-file=https://127.0.0.1:9/x", "kubectl create secret docker-registry x --from-file=/root/.docker/config.json")
	add(open, "the flag --from-env-file is not allowed", "kubectl create configmap x --from-env-file=/proc/self/environ", "kubectl create secret generic x --from-env-file /etc/environment")
	add(open, "the flag --patch-file is not allowed", "kubectl patch deploy web --patch-file=/etc/passwd", "kubectl patch deploy web --patch-file /tmp/p.json")
	add(open, "the flag --cert is not allowed", "kubectl create secret tls x --cert=/etc/ssl/private/k.pem --key=/etc/ssl/private/k.key")
	add(open, "the flag --output-directory is not allowed: it writes files on the agent", "kubectl cluster-info dump --output-directory=/tmp/dump")
	add(open, "the flag --profile is not allowed", "kubectl get pods --profile=cpu", "kubectl get pods --profile cpu --profile-output=/tmp/x")
	add(open, "the flag --profile-output is not allowed", "kubectl get pods --profile-output=/tmp/x")
	add(open, "the flag --cache-dir is not allowed", "kubectl get pods --cache-dir=/tmp/evil")
	add(open, "unknown flag: --kuberc", "kubectl get pods --kuberc=/etc/passwd")
	// Connection and identity.
	for _, f := range []string{"--as=admin", "--as admin", "--as-group=system:masters", "--as-uid=0", "--as-user-extra=scopes=x", "--kubeconfig=/root/.kube/config", "--kubeconfig http://127.0.0.1:9/kc",
		"--server=http://127.0.0.1:9", "-s http://127.0.0.1:9", "-s=https://example.com", "--token=abc", "--user=admin",
		"--context=prod", "--cluster=other", "--certificate-authority=/etc/ssl/ca.pem", "--client-certificate=/x.crt", "--client-key=/x.key",
		"--insecure-skip-tls-verify", "--tls-server-name=evil", "--proxy-url=http://127.0.0.1:9"} {
		add(open, connection, "kubectl get pods "+f)
	}
	add(open, "unknown flag: --username", "kubectl get pods --username=admin")
	add(open, "unknown flag: --password", "kubectl get pods --password=x")
	add(open, connection, "kubectl --as=admin get pods", "kubectl -s http://127.0.0.1:9 get pods", "kubectl logs web --kubeconfig=/x")
	// Subprocesses, terminals, editors, local servers.
	add(open, "kubectl kustomize is not available in chat: it builds manifests from local files or remote repositories", "kubectl kustomize .", "kubectl kustomize https://github.com/acme/app", "kubectl kustomize git::https://127.0.0.1:9/x")
	add(open, "kubectl edit is not available in chat: it needs an editor", "kubectl edit deploy/web", "kubectl edit cm settings")
	add(open, "kubectl apply edit-last-applied is not available in chat", "kubectl apply edit-last-applied deploy/web")
	add(open, "kubectl plugin is not available in chat", "kubectl plugin list")
	add(open, "kubectl exec is not available in chat: it needs an interactive terminal", "kubectl exec web -- cat /etc/passwd", "kubectl exec -it web -- sh")
	add(open, "kubectl debug is not available in chat", "kubectl debug node/n1 -it --image=busybox")
	add(open, "kubectl attach is not available in chat", "kubectl attach web -i")
	add(open, "kubectl port-forward is not available in chat", "kubectl port-forward svc/web 8080:80")
	add(open, "kubectl proxy is not available in chat", "kubectl proxy --port=0")
	add(open, "kubectl cp is not available in chat", "kubectl cp web:/etc/passwd /tmp/x")
	add(open, "kubectl config is not available in chat", "kubectl config view", "kubectl config view --raw", "kubectl config set-credentials x --token=y")
	add(open, "kubectl completion is not available in chat", "kubectl completion bash")
	add(open, `unknown kubectl command "__complete"`, "kubectl __complete get secrets ''")
	add(open, `unknown kubectl command "__completeNoDesc"`, "kubectl __completeNoDesc get secrets ''")
	add(open, `unknown kubectl command "help"`, "kubectl help get")
	add(open, "kubectl apply is not available in chat", "kubectl apply --prune -l app=web")
	add(open, "kubectl replace is not available in chat", "kubectl replace --raw /api/v1/namespaces/web/pods/x")
	add(open, "kubectl diff is not available in chat", "kubectl diff -k .")
	add(open, "kubectl create is not available in chat", "kubectl create --raw /api/v1/namespaces/web/pods")
	add(open, "kubectl create token is not available in chat: it prints a new credential", "kubectl create token default", "kubectl create token default --duration=87600h")
	add(open, "kubectl auth reconcile is not available in chat", "kubectl auth reconcile")
	add(open, `unknown kubectl command "frobnicate"`, "kubectl frobnicate")
	add(open, `unknown kubectl command "evil"`, "kubectl evil --plugin")
	for _, f := range []string{"-i", "--stdin", "-t", "--tty", "-it", "--attach", "--rm", "--leave-stdin-open"} {
		add(open, "it needs an", "kubectl run x --image=busybox "+f)
	}
	add(open, "the flag --interactive is not allowed", "kubectl delete pod x -i", "kubectl delete pod x --interactive")
	add(open, "the flag --insecure-skip-tls-verify-backend is not allowed", "kubectl logs web --insecure-skip-tls-verify-backend")
	add(open, `"--" is only for the command of kubectl run`, "kubectl get pods -- -n kube-system", "kubectl get -- secrets", "kubectl describe pods -- x")
	add(open, "unknown flag: --bogus", "kubectl get pods --bogus")
	add(open, "unknown shorthand flag: 'z'", "kubectl get pods -z")
	// Raw paths.
	add(reader, "does not allow raw API paths (--raw)", "kubectl get --raw /api/v1/namespaces/web/secrets/db", "kubectl get --raw=/api/v1/namespaces/web/pods")
	add(rawPods, "give an API path such as /api/v1/namespaces/web/pods, not a URL", "kubectl get --raw http://127.0.0.1:9/x", "kubectl get --raw https://example.com/api", "kubectl get --raw //127.0.0.1:9/api")
	add(rawPods, "not in clean form", "kubectl get --raw /api/v1/namespaces/web/pods/../../secrets", "kubectl get --raw /api//v1/pods")
	add(rawPods, "kubechat reads raw paths of API resources and /version, /healthz, /livez, /readyz, /api, /apis only", "kubectl get --raw /metrics", "kubectl get --raw /logs/", "kubectl get --raw /debug/pprof/", "kubectl get --raw /openapi/v2", "kubectl get --raw /versionx")
	add(rawPods, "opens a connection to a workload or node", "kubectl get --raw /api/v1/namespaces/web/services/http:web:80/proxy/", "kubectl get --raw /api/v1/nodes/n1/proxy/configz", "kubectl get --raw /api/v1/namespaces/web/pods/x/exec")
	add(rawPods, `"secrets" is not one of them`, "kubectl get --raw /api/v1/namespaces/web/secrets", "kubectl get --raw /api/v1/namespaces/web/secrets/db")
	add(rawPods, `"kube-system" is not one of them`, "kubectl get --raw /api/v1/namespaces/kube-system/pods")
	add(rawPods, "all namespaces (-A) is not allowed", "kubectl get --raw /api/v1/pods")
	add(rawPods, "would stream forever", "kubectl get --raw /api/v1/namespaces/web/pods?watch=true", "kubectl get --raw /api/v1/namespaces/web/pods?watch=1", "kubectl get --raw /api/v1/watch/namespaces/web/pods",
		"kubectl get --raw /api/v1/namespaces/web/pods/x/log?follow=true")
	add(rawPods, "the server doesn't have the resource", "kubectl get --raw /apis/example.com/v1/namespaces/web/gadgets")
	add(rawPods, "--raw takes no resource arguments", "kubectl get pods --raw /api/v1/namespaces/web/pods")
	// Several resources in one command.
	add(podsOnly, `"secrets" is not one of them`, "kubectl get pod/a secret/b", "kubectl get pods,secrets", "kubectl get po,secret", "kubectl describe pods,secrets", "kubectl get secrets", "kubectl get Secret",
		"kubectl get SECRETS", "kubectl get secret.v1.", "kubectl get pods/a secrets/b pods/c", "kubectl delete pod/a secret/b", "kubectl label pods,secrets x a=b", "kubectl set env pods/x --from=secret/db")
	add(podsOnly, `"pods.example.com" is not one of them`, "kubectl get pods.example.com", "kubectl get pods.v1.example.com", "kubectl get pod.example.com/x", "kubectl get Pod.v1.example.com")
	add(podsOnly, `"widgets.example.com" is not one of them`, "kubectl get wd", "kubectl get widgets", "kubectl get kubechat-test")
	add(podsOnly, `executor "kubectl-pods" allows the resources pods; "`, "kubectl get all", "kubectl describe all")
	add(podsOnly, "the server doesn't have a resource type", "kubectl get pods.metrics.k8s.io", "kubectl get gadgets", "kubectl get ..")
	add(podsOnly, "arguments in resource/name form must have a single resource and name", "kubectl get /etc/passwd")
	add(podsOnly, `"pods,,secrets" has an empty resource type`, "kubectl get pods,,secrets")
	add(podsOnly, "there is no need to specify a resource type as a separate argument", "kubectl get pods secret/db")
	add(podsOnly, "arguments in resource/name form must have a single resource and name", "kubectl get pods/a/b")
	add(ops, `the policy's "deployments" names the core group; write "deployments.apps"`, "kubectl get deploy", "kubectl scale deployment/web --replicas=2")
	// Namespaces.
	for _, spelling := range []string{"-n kube-system", "-nkube-system", "-n=kube-system", "--namespace kube-system", "--namespace=kube-system"} {
		add(reader, `"kube-system" is not one of them`, "kubectl get pods "+spelling)
	}
	add(reader, `"kube-system" is not one of them`, "kubectl logs -n kube-system x", "kubectl cluster-info", "kubectl events -n kube-system")
	add(reader, "all namespaces (-A) is not allowed", "kubectl get pods -A", "kubectl get -A pods", "kubectl get pods --all-namespaces", "kubectl get pods --all-namespaces=true", "kubectl top pod -A", "kubectl events -A", "kubectl get pods -An web")
	add(reader, "is cluster-scoped", "kubectl get nodes", "kubectl get namespaces", "kubectl get ns web", "kubectl get clusterroles", "kubectl describe node n1", "kubectl top node")
	// Verbs, and streams.
	add(reader, `"delete" is not one of them`, "kubectl delete pod x")
	add(reader, `"cluster-info dump" is not one of them`, "kubectl cluster-info dump")
	add(reader, "would stream forever", "kubectl get pods -w", "kubectl get pods --watch", "kubectl get pods --watch-only", "kubectl get pods -w=true", "kubectl logs -f web", "kubectl logs --follow web", "kubectl events -w")
	return out
}

func TestHostileCommandsAreRefused(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	corpus := hostile()
	require.GreaterOrEqual(t, len(corpus), 150)
	for _, tc := range corpus {
		t.Run(tc.policy.Executor+": "+tc.cmd, func(t *testing.T) {
			err := check(t, e, tc.policy, tc.cmd)
			require.Error(t, err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// check runs a command's words through Analyze and the policy, as the router does.
func check(t *testing.T, e *Executor, p executor.Policy, text string) error {
	t.Helper()
	words, err := command.Split(text)
	require.NoError(t, err)
	require.Equal(t, "kubectl", words[0])
	a, err := e.Analyze(t.Context(), words[1:])
	if err != nil {
		return err
	}
	_, err = p.Check(a)
	return err
}

func TestAllowedCommands(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	pods, secrets := core("pods", true), core("secrets", true)
	for cmd, want := range map[string]executor.Analysis{
		"get pods":                          {Verb: "get", Resources: []executor.Resource{pods}},
		"get -o wide pods -n web":           {Verb: "get", Resources: []executor.Resource{pods}, Namespaces: []string{"web"}},
		"get po/web deploy/web -n api":      {Verb: "get", Resources: []executor.Resource{pods, grouped("deployments", "apps", true)}, Namespaces: []string{"api"}},
		"get pods,secrets":                  {Verb: "get", Resources: []executor.Resource{pods, secrets}},
		"get wd":                            {Verb: "get", Resources: []executor.Resource{grouped("widgets", "example.com", true)}},
		"get pods.example.com":              {Verb: "get", Resources: []executor.Resource{grouped("pods", "example.com", true)}},
		"get nodes":                         {Verb: "get", Resources: []executor.Resource{core("nodes", false)}},
		"get pods -A":                       {Verb: "get", Resources: []executor.Resource{pods}, AllNamespaces: true},
		"get pods -o go-template={{.kind}}": {Verb: "get", Resources: []executor.Resource{pods}},
		"get pods -o=jsonpath={.items[*].metadata.name}": {Verb: "get", Resources: []executor.Resource{pods}},
		"get pods -o custom-columns=N:.metadata.name":    {Verb: "get", Resources: []executor.Resource{pods}},
		"get pods --template={{.kind}}":                  {Verb: "get", Resources: []executor.Resource{pods}},
		"logs web":                                       {Verb: "logs", Resources: []executor.Resource{pods}},
		"logs deploy/web -c app --tail 5":                {Verb: "logs", Resources: []executor.Resource{grouped("deployments", "apps", true)}},
		"rollout status deploy/web":                      {Verb: "rollout status", Resources: []executor.Resource{grouped("deployments", "apps", true)}},
		"rollout status deploy/web --watch":              {Verb: "rollout status", Resources: []executor.Resource{grouped("deployments", "apps", true)}},
		"label pods web a=b":                             {Verb: "label", Resources: []executor.Resource{pods}},
		"set env deploy/web A=1":                         {Verb: "set env", Resources: []executor.Resource{grouped("deployments", "apps", true)}},
		"set env deploy/web --from=secret/db":            {Verb: "set env", Resources: []executor.Resource{grouped("deployments", "apps", true), secrets}},
		"top pod":                                        {Verb: "top pod", Resources: []executor.Resource{grouped("pods", "metrics.k8s.io", true)}},
		"cluster-info":                                   {Verb: "cluster-info", Resources: []executor.Resource{core("services", true)}, Namespaces: []string{"kube-system"}},
		"version":                                        {Verb: "version"},
		"auth can-i list secrets":                        {Verb: "auth can-i"},
		"create deployment x --image=nginx":              {Verb: "create deployment", Resources: []executor.Resource{grouped("deployments", "apps", true)}},
		"create job x --from=cronjob/nightly":            {Verb: "create job", Resources: []executor.Resource{grouped("jobs", "batch", true), grouped("cronjobs", "batch", true)}},
		"run x --image=busybox -- echo hi":               {Verb: "run", Resources: []executor.Resource{pods}},
		"get --raw /api/v1/namespaces/web/pods/x/log": {Verb: "get", Raw: true, Namespaces: []string{"web"},
			Resources: []executor.Resource{{Resource: "pods", Subresource: "log", Namespaced: true}}},
		"get --raw /version":     {Verb: "get", Raw: true},
		"get --raw /readyz/etcd": {Verb: "get", Raw: true},
		"delete --raw /apis/apps/v1/namespaces/web/deployments/x": {Verb: "delete", Raw: true, Namespaces: []string{"web"},
			Resources: []executor.Resource{grouped("deployments", "apps", true)}},
	} {
		t.Run(cmd, func(t *testing.T) {
			words, err := command.Split(cmd)
			require.NoError(t, err)
			got, err := e.Analyze(t.Context(), words)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
	require.NoError(t, check(t, e, rawPods, "kubectl get --raw /api/v1/namespaces/web/pods"))
	require.NoError(t, check(t, e, podsOnly, "kubectl get pods/a pods/b"))
	require.NoError(t, check(t, e, reader, "kubectl get pods -n api"))
	require.NoError(t, check(t, e, reader, "kubectl rollout status deploy/web"), "a bounded wait, not a stream")
}

// TestEveryFlagIsClassified walks kubectl's command tree: every flag of
// every subcommand chat may run is on the allow-list or refused with a
// reason, so a flag a kubectl upgrade adds is looked at before it counts
// (until then it is refused as unknown).
func TestEveryFlagIsClassified(t *testing.T) {
	root, _ := newCommand(genericiooptions.NewTestIOStreamsDiscard(), nil, t.TempDir(), "")
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		v := verbOf(c)
		if _, ok := commands[v]; ok {
			seen[v] = true
			c.InitDefaultHelpFlag()
			c.Flags().VisitAll(func(f *pflag.Flag) {
				if connectionFlags[f.Name] && root.PersistentFlags().Lookup(f.Name) == f {
					return
				}
				_, ok := flags[f.Name]
				require.True(t, ok, "kubectl %s --%s is neither allowed nor refused in allow.go", v, f.Name)
			})
		} else if _, refused := refusedCommands[v]; !refused && c.Runnable() && !c.HasSubCommands() && c != root && !hasRefusedParent(c) {
			t.Errorf("kubectl %s is neither allowed nor refused in allow.go", v)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for v := range commands {
		require.True(t, seen[v], "allow.go lists kubectl %s, which kubectl does not have", v)
	}
}

func hasRefusedParent(c *cobra.Command) bool {
	for p := c.Parent(); p != nil && p.HasParent(); p = p.Parent() {
		if _, ok := refusedCommands[verbOf(p)]; ok && !refusedBare[verbOf(p)] {
			return true
		}
	}
	return false
}

func TestCheckOutput(t *testing.T) {
	for _, ok := range []string{"", "json", "yaml", "kyaml", "wide", "name", "go-template={{.}}", "jsonpath={.a}", "jsonpath-as-json={.a}", "custom-columns=A:.a", "template={{.}}", "go-template"} {
		require.NoError(t, checkOutput(ok), ok)
	}
	for bad, want := range map[string]string{
		"go-template-file=/x":    "reads a template from a local file",
		"jsonpath-file=/x":       "reads a template from a local file",
		"custom-columns-file=/x": "reads a template from a local file",
		"templatefile=/x":        "reads a template from a local file",
		"xml":                    fmt.Sprintf("%q is not an output format", "xml"),
	} {
		require.ErrorContains(t, checkOutput(bad), want, bad)
	}
	require.True(t, strings.Contains(checkOutput("x").Error(), "go-template=..."))
}
