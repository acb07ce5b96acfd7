package github

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/state"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/flux/fluxtest"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{}) }

const (
	secret  = "webhook-s3cret"
	appNS   = "ghsrc-apps"
	fluxNS  = "ghsrc-flux"
	stateNS = "ghsrc-state"
)

type recording struct {
	mu  sync.Mutex
	got []event.Event
}

func (r *recording) emit(_ context.Context, ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ev)
}

func (r *recording) events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.got...)
}

// running starts a source on a fresh state store over the ConfigMap
// stateNS/name, as a new agent would, and serves it.
func running(t *testing.T, f *fluxtest.Fleet, name string, keep int) (*httptest.Server, *recording) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	st := state.New(cs, stateNS, name)
	require.NoError(t, st.Load(t.Context()))
	s, err := New(config.Source{Name: "fleet", Type: config.SourceGitHub, GitHub: &config.GitHubSource{
		WebhookSecret: ptr(config.NewSecret(secret, "test")), Deliveries: keep,
		API: config.GitHubAPI{BaseURL: f.GitHub.APIURL(), Token: config.NewSecret(fluxtest.GitHubToken, "test")},
	}}, "c1", env.Config, st, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	rec := &recording{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx, rec.emit) }()
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		require.NoError(t, <-done)
	})
	// Start has run once a delivery gets past the standby answer.
	require.Eventually(t, func() bool {
		emit, _ := s.Running()
		return emit != nil
	}, time.Minute, 10*time.Millisecond)
	return srv, rec
}

func ptr[T any](v T) *T { return &v }

// crds installs (or, !installed, removes) the CRDs in the directory dir
// names: which GitOps tools the cluster has.
func crds(t *testing.T, dir func() (string, error), installed bool) {
	t.Helper()
	d, err := dir()
	require.NoError(t, err)
	if installed {
		require.NoError(t, env.InstallCRDs(context.Background(), d), "the CRDs come from make testbin")
	} else {
		require.NoError(t, env.UninstallCRDs(context.Background(), d))
	}
}

func TestDeliveries(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	// A cluster with Flux only: Argo CD's CRDs are not installed.
	crds(t, testenv.ArgoCDCRDDir, false)
	f := fluxtest.New(t, env, appNS, fluxNS)
	require.NoError(t, env.CreateNamespace(ctx, stateNS))
	// A second Kustomization of the same repository at another path, and
	// one of another repository at the same path: neither is touched.
	kc, err := fluxtest.Client(env)
	require.NoError(t, err)
	require.NoError(t, kc.Create(ctx, &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "other-repo", Namespace: fluxNS},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://github.com/acme/other.git", Interval: metav1.Duration{Duration: time.Minute}},
	}))
	for name, spec := range map[string]kustomizev1.KustomizationSpec{
		"infra":   {Path: "./infra", SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: fluxtest.Repo}},
		"foreign": {Path: "./deploy", SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: "other-repo"}},
	} {
		spec.Interval = metav1.Duration{Duration: time.Minute}
		require.NoError(t, kc.Create(ctx, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: fluxNS}, Spec: spec}))
	}
	sha := f.OpenPR(t, 7, "scale-web", fluxtest.PRFiles())
	f.OpenPR(t, 8, "docs", map[string]string{"README.md": "docs only\n", "deploy-notes/x.yaml": "not under deploy/\n"})

	srv, rec := running(t, f, "ghsrc-a", 3)
	send := func(d githubtest.Delivery) (int, string) {
		t.Helper()
		code, body, err := githubtest.Deliver(srv.URL, secret, d)
		require.NoError(t, err)
		return code, body
	}
	opened := f.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 7, "")

	t.Run("UnsignedWronglySignedAndOversizedAreRefused", func(t *testing.T) {
		code, body := send(githubtest.Delivery{Event: "pull_request", ID: "d-unsigned", Body: opened, Signature: "-"})
		require.Equal(t, 401, code)
		require.Contains(t, body, "X-Hub-Signature-256 is missing")
		code, body = send(githubtest.Delivery{Event: "pull_request", ID: "d-wrong", Body: opened, Signature: githubtest.Signature("not-the-secret", opened)})
		require.Equal(t, 401, code)
		require.Contains(t, body, "does not match")
		// A signature of other bytes: the body was changed on the way.
		code, _ = send(githubtest.Delivery{Event: "pull_request", ID: "d-tampered", Body: opened, Signature: githubtest.Signature(secret, append([]byte(" "), opened...))})
		require.Equal(t, 401, code)
		code, body = send(githubtest.Delivery{Event: "pull_request", ID: "d-big", Body: []byte(`{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`)})
		require.Equal(t, 413, code)
		require.Contains(t, body, "larger than")
		code, body = send(githubtest.Delivery{Event: "pull_request", ID: "d-bad", Body: []byte(`{"number":"seven"}`)})
		require.Equal(t, 400, code)
		require.Contains(t, body, "not a pull_request payload")
		code, body = send(githubtest.Delivery{Event: "pull_request", Body: opened})
		require.Equal(t, 400, code)
		require.Contains(t, body, "X-GitHub-Delivery")
		require.Empty(t, rec.events())
	})

	t.Run("APullRequestTouchingAKustomizationsPathIsOneEvent", func(t *testing.T) {
		code, body := send(githubtest.Delivery{Event: "pull_request", ID: "d-1", Body: opened})
		require.Equal(t, 202, code, body)
		evs := rec.events()
		require.Len(t, evs, 1)
		ev := evs[0]
		require.Equal(t, event.Object{APIVersion: "kustomize.toolkit.fluxcd.io/v1", Kind: "Kustomization", Namespace: fluxNS, Name: fluxtest.Kustomization}, ev.Object)
		require.Equal(t, ReasonUpdated, ev.Reason)
		require.Equal(t, map[string]string{"repository": "acme/fleet", "pr": "7", "sha": sha, "path": "./deploy", "branch": "scale-web"}, ev.Labels)

		// A pull request that touches no Kustomization's path: nothing.
		code, body = send(githubtest.Delivery{Event: "pull_request", ID: "d-2", Body: f.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 8, "")})
		require.Equal(t, 202, code, body)
		require.Contains(t, body, "0 event(s)")
		// A ping, and a labelled pull request: acknowledged, nothing.
		code, body = send(githubtest.Delivery{Event: "ping", ID: "d-3", Body: []byte(`{"zen":"Keep it logically awesome."}`)})
		require.Equal(t, 200, code, body)
		code, _ = send(githubtest.Delivery{Event: "pull_request", ID: "d-4", Body: f.GitHub.PullRequestEvent("labeled", fluxtest.Owner, fluxtest.Repo, 7, "")})
		require.Equal(t, 202, code)
		require.Len(t, rec.events(), 1)
	})

	t.Run("AReplayedDeliveryIsIgnoredAcrossARestart", func(t *testing.T) {
		code, body := send(githubtest.Delivery{Event: "pull_request", ID: "d-1", Body: opened})
		require.Equal(t, 200, code)
		require.Contains(t, body, "already processed")
		// A new agent on the same state ConfigMap refuses it too.
		srv2, rec2 := running(t, f, "ghsrc-a", 3)
		code, body, err := githubtest.Deliver(srv2.URL, secret, githubtest.Delivery{Event: "pull_request", ID: "d-1", Body: opened})
		require.NoError(t, err)
		require.Equal(t, 200, code)
		require.Contains(t, body, "already processed")
		require.Empty(t, rec2.events())
	})

	t.Run("TheRememberedIdsAreBounded", func(t *testing.T) {
		// d-1, d-2, d-4 are remembered (3); two more push d-1 and d-2 out.
		for _, id := range []string{"d-5", "d-6"} {
			code, _ := send(githubtest.Delivery{Event: "pull_request", ID: id, Body: f.GitHub.PullRequestEvent("labeled", fluxtest.Owner, fluxtest.Repo, 7, "")})
			require.Equal(t, 202, code)
		}
		cs, err := kubernetes.NewForConfig(env.Config)
		require.NoError(t, err)
		cm, err := cs.CoreV1().ConfigMaps(stateNS).Get(ctx, "ghsrc-a", metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, "d-4 d-5 d-6", cm.Data["github.fleet.deliveries"])
	})

	t.Run("APushAndAMergeAreEventsOfTheirCommits", func(t *testing.T) {
		pushed := f.Push(t, 7, "scale-web", map[string]string{"deploy/deployment.yaml": fluxtest.Deployment(4, "nginx:1.27")})
		code, _ := send(githubtest.Delivery{Event: "pull_request", ID: "d-7", Body: f.GitHub.PullRequestEvent("synchronize", fluxtest.Owner, fluxtest.Repo, 7, "")})
		require.Equal(t, 202, code)
		merge := strings.Repeat("e", 40)
		code, _ = send(githubtest.Delivery{Event: "pull_request", ID: "d-8", Body: f.GitHub.PullRequestEvent("closed", fluxtest.Owner, fluxtest.Repo, 7, merge)})
		require.Equal(t, 202, code)
		evs := rec.events()
		require.Len(t, evs, 3)
		require.Equal(t, pushed, evs[1].Labels["sha"])
		require.NotEqual(t, evs[0].ID, evs[1].ID)
		require.Equal(t, ReasonMerged, evs[2].Reason)
		require.Equal(t, merge, evs[2].Labels["sha"])
		require.NotEmpty(t, evs[0].Thread)
		require.Equal(t, []string{evs[0].Thread, evs[0].Thread}, []string{evs[1].Thread, evs[2].Thread}, "one thread for the pull request's Kustomization")
	})
}

// TestArgoCDApplications: in a cluster with Argo CD and without Flux, a
// pull request is one event per Application with a source in its
// repository (https with or without .git, scp-like and ssh URLs alike;
// spec.source, or any of spec.sources) whose path holds a changed file;
// a pull request that touches none is no event. Argo CD is removed again
// afterwards, so the other tests see a cluster with Flux only.
func TestArgoCDApplications(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	crds(t, testenv.FluxCRDDir, false)
	crds(t, testenv.ArgoCDCRDDir, true)
	t.Cleanup(func() { crds(t, testenv.ArgoCDCRDDir, false) })
	const argoNS = "ghsrc-argocd"
	require.NoError(t, env.CreateNamespace(ctx, argoNS))
	require.NoError(t, env.CreateNamespace(ctx, stateNS))
	dyn, err := dynamic.NewForConfig(env.Config)
	require.NoError(t, err)
	src := func(url, path string) map[string]any {
		return map[string]any{"repoURL": url, "path": path, "targetRevision": "main"}
	}
	for name, spec := range map[string]map[string]any{
		"web":   {"source": src("https://github.com/acme/fleet", "deploy")},
		"infra": {"source": src("git@github.com:acme/fleet.git", "infra")},
		"multi": {"sources": []any{
			src("https://github.com/acme/other.git", "apps"),
			src("ssh://git@github.com/acme/fleet.git", "./deploy/"),
		}},
		"foreign": {"source": src("https://github.com/acme/other.git", "deploy")},
		// A chart from a Helm repository with values from the fleet: the
		// chart is not in the repository, and the values source has no path.
		"chart": {"sources": []any{
			map[string]any{"repoURL": "https://github.com/acme/fleet.git", "chart": "web", "targetRevision": "1.0.0"},
			map[string]any{"repoURL": "https://github.com/acme/fleet.git", "ref": "values", "targetRevision": "main"},
		}},
	} {
		spec["project"] = "default"
		spec["destination"] = map[string]any{"server": "https://kubernetes.default.svc", "namespace": "web"}
		_, err := dyn.Resource(argocd.Applications).Namespace(argoNS).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
			"metadata": map[string]any{"name": name, "namespace": argoNS}, "spec": spec,
		}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	f := fluxtest.NewRepository(t)
	sha := f.OpenPR(t, 7, "scale-web", fluxtest.PRFiles())
	f.OpenPR(t, 8, "docs", map[string]string{"README.md": "docs only\n", "deploy-notes/x.yaml": "not under deploy/\n"})
	srv, rec := running(t, f, "ghsrc-argo", 10)
	send := func(id string, body []byte) string {
		t.Helper()
		code, out, err := githubtest.Deliver(srv.URL, secret, githubtest.Delivery{Event: "pull_request", ID: id, Body: body})
		require.NoError(t, err)
		require.Equal(t, 202, code, out)
		return out
	}

	require.Contains(t, send("a-1", f.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 7, "")), "2 event(s)")
	evs := rec.events()
	require.Len(t, evs, 2)
	for i, name := range []string{"multi", "web"} {
		require.Equal(t, event.Object{APIVersion: "argoproj.io/v1alpha1", Kind: "Application", Namespace: argoNS, Name: name}, evs[i].Object)
		require.Equal(t, ReasonUpdated, evs[i].Reason)
		require.Equal(t, map[string]string{"repository": "acme/fleet", "pr": "7", "sha": sha, "path": "./deploy", "branch": "scale-web"}, evs[i].Labels)
		require.Equal(t, "Pull request acme/fleet#7 touches Application "+argoNS+"/"+name+" at "+sha[:7], evs[i].Headline)
		require.NotEmpty(t, evs[i].UID)
	}
	require.NotEqual(t, evs[0].Thread, evs[1].Thread, "a thread per Application")

	// A pull request that touches no Application's path: nothing.
	require.Contains(t, send("a-2", f.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 8, "")), "0 event(s)")

	// The merge: an event per Application at the merge commit, in the
	// thread of its pushes.
	merge := strings.Repeat("f", 40)
	require.Contains(t, send("a-3", f.GitHub.PullRequestEvent("closed", fluxtest.Owner, fluxtest.Repo, 7, merge)), "2 event(s)")
	merged := rec.events()[2:]
	for i := range merged {
		require.Equal(t, ReasonMerged, merged[i].Reason)
		require.Equal(t, merge, merged[i].Labels["sha"])
		require.Equal(t, evs[i].Object, merged[i].Object)
		require.Equal(t, evs[i].Thread, merged[i].Thread)
	}
}

func TestPathsTouched(t *testing.T) {
	for _, tc := range []struct {
		spec, file string
		want       bool
	}{
		{"./deploy", "deploy/a.yaml", true},
		{"deploy/", "deploy/sub/a.yaml", true},
		{"./deploy", "deploy-notes/a.yaml", false},
		{"./deploy", "README.md", false},
		{"", "anything.yaml", true},
		{"./", "x/y.yaml", true},
		{"../deploy", "deploy/a.yaml", true},
	} {
		require.Equal(t, tc.want, touches(cleanPath(tc.spec), tc.file), "%s %s", tc.spec, tc.file)
	}
}
