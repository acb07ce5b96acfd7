package github

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Nodes: 1}) }

const ns = "gh-issues"

// secretValue is planted in the pod's logs, its environment (hard-coded,
// so describe prints it) and the alert's text; it must reach GitHub in none.
const secretValue = "s3cr3t-Pa55word-xyz"

// engineer may read and describe everything in ns, logs included.
var engineer = executor.Identity{User: "engineer", Groups: []string{"engineers"}}

func newExecutor(t *testing.T, gh *githubtest.Server, extra string) *Executor {
	t.Helper()
	t.Setenv("GITHUB_ISSUES_TOKEN", "tok")
	raw, err := config.RawFromYAML(fmt.Sprintf("repository: acme/ops\nlabels: [kubechat, incident]\napi:\n  baseURL: %s\n  token: ${GITHUB_ISSUES_TOKEN}\n%s", gh.APIURL(), extra))
	require.NoError(t, err)
	e, err := New("github", raw, executor.Deps{RESTConfig: env.Config, Cluster: "prod-eu-1"})
	require.NoError(t, err)
	return e.(*Executor)
}

// crashingPod creates a Deployment whose container carries the Secret's
// value in its environment, and gives its pod logs that print it.
func crashingPod(t *testing.T) corev1.Pod {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, env.CreateNamespace(ctx, ns))
	_, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Data: map[string][]byte{"password": []byte(secretValue)}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = env.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "engineers"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: "Group", Name: "engineers"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	d := testenv.Deployment("api", nil)
	d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", Value: secretValue}}
	_, err = env.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	pod, err := env.WaitForPod(ctx, ns, "app=api", testenv.PodReady)
	require.NoError(t, err)
	var current strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&current, "line %03d\n", i)
	}
	current.WriteString("connecting with password=" + secretValue + "\n")
	current.WriteString("panic: " + strings.Repeat("x", 2000) + "\n")
	require.NoError(t, env.SetPodLogs(ctx, ns, pod.Name, "main", current.String(), "previous run: auth "+secretValue+" refused\n"))
	return pod
}

// TestIssueFromPod: the issue holds the alert, describe and the last log
// lines of both runs, capped, with the Secret's value masked everywhere; a
// repeat returns the open issue; an identity Kubernetes refuses opens
// nothing.
func TestIssueFromPod(t *testing.T) {
	testenv.Skip(t, env)
	pod := crashingPod(t)
	gh := githubtest.New(t, "tok")
	e := newExecutor(t, gh, "")
	ctx := t.Context()

	args := []string{"issue", "create", "pod/" + pod.Name, "-n", ns, "--alert", "Pod " + ns + "/" + pod.Name + " is failing (CrashLoopBackOff)\nlast words: " + secretValue}
	a, err := e.Analyze(ctx, args)
	require.NoError(t, err)
	require.Equal(t, VerbCreate, a.Verb)
	require.Equal(t, []string{ns}, a.Namespaces)
	var rs []string
	for _, r := range a.Resources {
		rs = append(rs, r.String())
	}
	require.Equal(t, []string{"pods", "pods/log"}, rs)

	caller := executor.Caller{Platform: "ops-slack", Channel: "alerts", ChannelID: "C1", ThreadRoot: "1712.0001", UserName: "alice"}
	res, err := e.Execute(ctx, executor.Request{Args: args, Identity: engineer, Caller: caller})
	require.NoError(t, err)
	require.Zero(t, res.ExitCode, res.Errors)
	issues := gh.Issues()
	require.Len(t, issues, 1)
	is := issues[0]
	require.Contains(t, res.Output, fmt.Sprintf("Opened issue #%d in acme/ops: %s/acme/ops/issues/%d", is.Number, gh.URL, is.Number))
	require.Equal(t, []executor.Button{{Label: "View issue", URL: fmt.Sprintf("%s/acme/ops/issues/%d", gh.URL, is.Number)}}, res.Buttons)

	require.Equal(t, "[prod-eu-1] Pod "+ns+"/"+pod.Name+" is failing (CrashLoopBackOff)", is.Title)
	require.Equal(t, []string{"kubechat", "incident"}, is.Labels)
	require.True(t, strings.HasPrefix(is.Body, "<!-- kubechat-issue "), "the hidden marker starts the body")
	for _, want := range []string{
		"channel `alerts` on `ops-slack` (id `C1`) thread `1712.0001` asked by `alice`", // the way back to chat
		"## kubectl describe", "Name:", pod.Name, "DB_PASSWORD:", "Node:", // describe
		"## Logs (current run, the last 150 lines of each container)", "line 200", "connecting with password=" + "***", // the current run's tail
		"…(line cut)", // a 2000-byte line, cut
		"## Logs (previous run, the last 150 lines of each container)", "previous run: auth *** refused",
		"last words: ***",
	} {
		require.Contains(t, is.Body, want)
	}
	require.NotContains(t, is.Body, "line 052", "only the last 150 lines")
	require.Contains(t, is.Body, "line 053", "the last 150 lines: 51..200, the password line and the panic")
	for name, f := range map[string]string{"title": is.Title, "body": is.Body, "reply": res.Output} {
		require.NotContains(t, f, secretValue, "the Secret's value in the %s", name)
		require.NotContains(t, f, "s3cr3t", "a part of the Secret's value in the %s", name)
	}

	// A retry, and a click at the same time as another: one issue.
	var wg sync.WaitGroup
	outs := make([]string, 3)
	for i := range outs {
		wg.Go(func() {
			r, err := e.Execute(ctx, executor.Request{Args: args, Identity: engineer, Caller: caller})
			if err == nil {
				outs[i] = r.Output
			}
		})
	}
	wg.Wait()
	for _, o := range outs {
		require.Contains(t, o, fmt.Sprintf("is already open: #%d", is.Number))
	}
	// pod, po and pods name the same object: still one issue.
	res, err = e.Execute(ctx, executor.Request{Args: []string{"issue", "create", "po/" + pod.Name}, Namespace: ns, Identity: engineer, Caller: caller})
	require.NoError(t, err)
	require.Contains(t, res.Output, "already open")
	require.Len(t, gh.Issues(), 1)

	// Once closed, the next failure opens a new issue.
	gh.CloseIssue("acme", "ops", is.Number)
	res, err = e.Execute(ctx, executor.Request{Args: args, Identity: engineer, Caller: caller})
	require.NoError(t, err)
	require.Contains(t, res.Output, fmt.Sprintf("Opened issue #%d", is.Number+1))
	require.Len(t, gh.Issues(), 2)

	// Kubernetes refuses an identity that may not read the pod: nothing
	// is opened.
	res, err = e.Execute(ctx, executor.Request{Args: []string{"issue", "create", "deploy/api", "-n", ns}, Identity: executor.Identity{User: "nobody"}, Caller: caller})
	require.NoError(t, err)
	require.NotZero(t, res.ExitCode)
	require.Contains(t, res.Errors, "no issue opened")
	require.Contains(t, res.Errors, "forbidden")
	require.Len(t, gh.Issues(), 2)

	// A Deployment's issue has describe and no logs.
	res, err = e.Execute(ctx, executor.Request{Args: []string{"issue", "create", "deployment/api", "-n", ns}, Identity: engineer, Caller: caller})
	require.NoError(t, err)
	require.Contains(t, res.Output, "Opened issue")
	last := gh.Issues()[2]
	require.Equal(t, "deployment/api in namespace "+ns+" of cluster prod-eu-1", last.Title)
	require.Contains(t, last.Body, "Replicas:")
	require.NotContains(t, last.Body, "## Logs")
	require.NotContains(t, last.Body, secretValue)
}

// TestParseAndSettingsErrorsNameTheBadPart: bad commands and settings are
// refused with what is wrong.
func TestParseAndSettingsErrorsNameTheBadPart(t *testing.T) {
	for args, want := range map[string]string{
		"issue list":                   `"issue create"`,
		"issue create":                 "exactly one KIND/NAME",
		"issue create web":             `"web" is not KIND/NAME`,
		"issue create pod/a pod/b":     "exactly one KIND/NAME",
		"issue create pod/a --title x": "unknown flag: --title",
		"issue create pod/a -n":        "flag needs an argument",
		"issue create pod/a --alert " + strings.Repeat("y", maxAlertBytes+1): "--alert: ",
	} {
		_, err := parse(strings.Fields(args))
		require.ErrorContains(t, err, want, args)
	}
	for settings, want := range map[string]string{
		"labels: [a]":                                   "settings.repository",
		"repository: acme":                              `settings.repository: "acme" is not a repository as owner/name`,
		"repository: acme/ops/x":                        "settings.repository",
		"repository: acme/ops\nlabels: ['a,b']":         "settings.labels[0]",
		"repository: acme/ops\nlogLines: 5000":          "settings.logLines",
		"repository: acme/ops\napi: {baseURL: ftp://x}": "settings.api.baseURL",
		"repository: acme/ops\nrepo: x":                 "repo",
	} {
		raw, err := config.RawFromYAML(settings)
		require.NoError(t, err)
		_, err = New("gh", raw, executor.Deps{})
		require.ErrorContains(t, err, want, settings)
	}
}

func TestTail(t *testing.T) {
	out := "[pod/a/one] 1\n[pod/a/two] x\n[pod/a/one] 2\n[pod/a/one] 3\n[pod/a/two] y\n"
	text, cut := tail(out, 2)
	require.Equal(t, "[pod/a/two] x\n[pod/a/one] 2\n[pod/a/one] 3\n[pod/a/two] y", text)
	require.True(t, cut)
	text, cut = tail(out, 5)
	require.Equal(t, strings.TrimSpace(out), text)
	require.False(t, cut)
	text, cut = tail("", 5)
	require.Empty(t, text)
	require.False(t, cut)
	require.Equal(t, "````\na ``` b\n````\n", fenced("a ``` b"))
}
