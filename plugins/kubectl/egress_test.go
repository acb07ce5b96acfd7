package kubectl

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/gittest"
	"github.com/kubechat/kubechat/internal/redact"
	"github.com/kubechat/kubechat/internal/testenv"
)

// hostileUser is who the commands of TestNothingEscapes act as; the audit
// log shows whether any of them reached the API server.
var hostileUser = executor.Identity{User: "hostile", Groups: []string{"viewers"}}

// TestNothingEscapes tries every file, URL and subprocess form against the
// real control plane: a loopback HTTP listener and a git smart-HTTP server
// see no request, no program on $PATH or $EDITOR runs, a marker planted in
// a file or in the agent's environment never reaches a reply, and the API
// server's audit log shows no request from any of these commands.
func TestNothingEscapes(t *testing.T) {
	setup(t)
	e := newExecutor(t)
	ctx := t.Context()

	var hits atomic.Int64
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fetched}\n"))
	}))
	defer web.Close()
	git := gittest.NewServer(t)
	repo := git.NewRepo(t, "app")
	repo.Write(map[string]string{"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cloned}\n"})
	repo.Commit("main", "app")
	gitBefore := git.Requests() // the push that set the repository up

	dir := t.TempDir()
	const marker = "MARKER-4f1d-file-contents"
	file := filepath.Join(dir, "secret.txt")
	require.NoError(t, os.WriteFile(file, []byte(marker+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: [secret.txt]\n"), 0o600))
	const envMarker = "MARKER-9c2e-environment"
	t.Setenv("KUBECHAT_TEST_ENV_MARKER", envMarker)

	// Programs a command might start: each leaves a trace when run.
	trap := t.TempDir()
	traces := t.TempDir()
	for _, name := range []string{"git", "sh", "bash", "kubectl", "helm", "kustomize", "vi", "vim", "nano", "editor", "less", "more", "kubectl-evil", "ssh", "curl"} {
		script := "#!/bin/sh\ntouch " + filepath.Join(traces, name) + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(trap, name), []byte(script), 0o755))
	}
	t.Setenv("PATH", trap+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, v := range []string{"EDITOR", "KUBE_EDITOR", "VISUAL"} {
		t.Setenv(v, filepath.Join(trap, "editor"))
	}

	host := strings.TrimPrefix(web.URL, "http://")
	urls := []string{web.URL + "/x.yaml", "http://" + host, "https://" + host + "/x", git.RepoURL("app"), "git::" + git.RepoURL("app"),
		git.URL + "/app.git//?ref=main", "ssh://git@" + host + "/app.git", "file://" + file}
	paths := []string{file, dir, "/proc/self/environ", "/var/run/secrets/kubernetes.io/serviceaccount/token", env.Kubeconfig()}
	var cmds []string
	for _, target := range append(urls, paths...) {
		q := "'" + target + "'"
		cmds = append(cmds,
			"get -f "+q, "get --filename="+q, "apply -f "+q, "create -f "+q, "replace -f "+q, "diff -f "+q, "delete -f "+q,
			"get -k "+q, "apply -k "+q, "kustomize "+q, "get pods -o go-template-file="+q, "get pods -o jsonpath-file="+q,
			"get pods -o custom-columns-file="+q, "get pods -o templatefile --template="+q, "create configmap x --from-file="+q,
			"create configmap x --from-env-file="+q, "create secret generic x --from-file=k="+q, "patch deploy web --patch-file="+q,
			"create secret tls x --cert="+q+" --key="+q, "get pods --kubeconfig="+q, "get pods --server="+q, "get pods --certificate-authority="+q,
			"get --raw "+q, "cp web:/x "+q, "get pods --kuberc="+q, "get pods --cache-dir="+q, "cluster-info dump --output-directory="+q)
	}
	cmds = append(cmds, "edit deploy/web", "exec web -- sh -c id", "debug web --image=busybox", "plugin list", "evil", "config view --raw",
		"run x --image=busybox -i --rm -- sh", "attach web", "port-forward web 8080", "proxy", "completion bash",
		"get pods --proxy-url=http://"+host, "get --raw /api/v1/namespaces/"+ns+"/services/http:web:80/proxy/")

	hostile := impersonated(t, hostileUser)
	sentinel := func(name string) {
		_, _ = hostile.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	}
	sentinel("sentinel-before")
	for _, text := range cmds {
		words, err := command.Split(text)
		require.NoError(t, err, text)
		reply := ""
		a, err := e.Analyze(ctx, words)
		if err == nil {
			_, err = open.Check(a)
		}
		require.Error(t, err, "kubectl %s must be refused", text)
		reply += err.Error()
		// Execute analyzes again whoever calls it; it must refuse too.
		res, err := e.Execute(ctx, executor.Request{Args: words, Namespace: ns, Identity: hostileUser})
		require.NoError(t, err)
		require.NotZero(t, res.ExitCode, "kubectl %s ran", text)
		reply += res.Output + res.Errors
		require.NotContains(t, reply, marker, text)
		require.NotContains(t, reply, envMarker, text)
		require.NotContains(t, reply, "apiVersion: v1\nkind: ConfigMap", text)
	}
	sentinel("sentinel-after")

	require.Zero(t, hits.Load(), "the HTTP listener was reached")
	require.Equal(t, gitBefore, git.Requests(), "the git server was reached")
	started, err := os.ReadDir(traces)
	require.NoError(t, err)
	require.Empty(t, started, "a program was started")

	events, err := env.WaitForAudit(ctx, func(ev auditv1.Event) bool { return strings.Contains(ev.RequestURI, "sentinel-after") })
	require.NoError(t, err)
	var between []string
	inside := false
	for _, ev := range events {
		switch {
		case strings.Contains(ev.RequestURI, "sentinel-before"):
			inside = true
		case strings.Contains(ev.RequestURI, "sentinel-after"):
			inside = false
		case inside && testenv.ActingUser(ev) == hostileUser.User:
			between = append(between, ev.Verb+" "+ev.RequestURI)
		}
	}
	require.Empty(t, between, "refused commands reached the API server")
}

// TestDialerReachesOnlyTheAPIServer: a command's client config connects to
// its API server and refuses any other address, even if something pointed
// it elsewhere.
func TestDialerReachesOnlyTheAPIServer(t *testing.T) {
	setup(t)
	var hits atomic.Int64
	web := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer web.Close()
	cfg := executor.Impersonating(env.Config, viewer, redact.NewSet())
	c, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err, "the API server is reachable")

	elsewhere := rest.CopyConfig(cfg)
	elsewhere.Host = web.URL
	elsewhere.TLSClientConfig = rest.TLSClientConfig{}
	c, err = kubernetes.NewForConfig(elsewhere)
	require.NoError(t, err)
	_, err = c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	require.ErrorIs(t, err, executor.ErrConnectionRefused)
	require.Zero(t, hits.Load())
}

func impersonated(t *testing.T, id executor.Identity) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: id.Groups}
	c, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return c
}
