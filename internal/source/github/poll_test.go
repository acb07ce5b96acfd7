package github

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/github/githubtest"
	"github.com/kubechat/kubechat/internal/state"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/flux/fluxtest"
)

// polling builds a source that only polls acme/fleet, on a fresh state
// store over the ConfigMap stateNS/name, as a new agent would. The test
// polls it itself (pollOnce), so that each poll is a barrier.
func polling(t *testing.T, f *fluxtest.Fleet, name string) *Source {
	t.Helper()
	return pollingWith(t, f, name, nil)
}

// pollingWith is polling, also taking webhooks signed with webhookSecret.
func pollingWith(t *testing.T, f *fluxtest.Fleet, name string, webhookSecret *config.Secret) *Source {
	t.Helper()
	cs, err := kubernetes.NewForConfig(env.Config)
	require.NoError(t, err)
	st := state.New(cs, stateNS, name)
	require.NoError(t, st.Load(t.Context()))
	s, err := New(config.Source{Name: "fleet", Type: config.SourceGitHub, GitHub: &config.GitHubSource{
		WebhookSecret: webhookSecret,
		Poll:          &config.GitHubPoll{Repositories: []string{fluxtest.Owner + "/" + fluxtest.Repo}},
		API:           config.GitHubAPI{BaseURL: f.GitHub.APIURL(), Token: config.NewSecret(fluxtest.GitHubToken, "test")},
	}}, "c1", env.Config, st, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return s
}

func TestPolling(t *testing.T) {
	testenv.Skip(t, env)
	ctx := t.Context()
	const fluxNS = "ghpoll-flux"
	f := fluxtest.New(t, env, "ghpoll-apps", fluxNS)
	require.NoError(t, env.CreateNamespace(ctx, stateNS))
	// Events of this test's Kustomization (another test's may share the repository).
	mine := func(r *recording) []event.Event {
		return slices.DeleteFunc(r.events(), func(ev event.Event) bool { return ev.Object.Namespace != fluxNS })
	}
	s := polling(t, f, "ghpoll")
	rec := &recording{}
	poll := func(s *Source, rec *recording) {
		t.Helper()
		require.Zero(t, s.pollOnce(ctx, rec.emit), "no rate limit")
	}
	counts := func() [2]int {
		ok, notModified := f.GitHub.ListCounts()
		return [2]int{ok, notModified}
	}

	t.Run("TheFirstPollTakesABaseline", func(t *testing.T) {
		// A pull request open before polling starts, and more than a
		// page of others (the fake's pages hold githubtest.PerPage).
		f.OpenPR(t, 3, "older", fluxtest.PRFiles())
		for n := 100; n < 100+githubtest.PerPage+2; n++ {
			f.GitHub.SetPullRequest(githubtest.PullRequest{Owner: fluxtest.Owner, Repo: fluxtest.Repo, Number: n, Title: "docs",
				HeadRef: "docs", HeadSHA: strings.Repeat("d", 40), Files: []string{"README.md"}})
		}
		poll(s, rec)
		require.Empty(t, rec.events(), "what was open before is not reported")
		require.Equal(t, [2]int{2, 0}, counts(), "two pages read")
	})

	t.Run("AnUnchangedRepositoryCostsA304AndNothingElse", func(t *testing.T) {
		before, left := counts(), f.GitHub.RateRemaining()
		poll(s, rec)
		require.Equal(t, [2]int{before[0], before[1] + 1}, counts())
		require.Equal(t, left, f.GitHub.RateRemaining(), "a 304 costs no rate limit")
		require.Empty(t, rec.events())
	})

	var opened event.Event
	t.Run("AnOpenedPullRequestIsTheWebhooksEvent", func(t *testing.T) {
		sha := f.OpenPR(t, 7, "scale-web", fluxtest.PRFiles())
		poll(s, rec)
		evs := mine(rec)
		require.Len(t, evs, 1)
		opened = evs[0]
		require.Equal(t, ReasonUpdated, opened.Reason)
		require.Equal(t, sha, opened.Labels["sha"])

		// The same pull request delivered by webhook to a receiving source.
		srv, hooked := running(t, f, "ghpoll-hook", 10)
		code, body, err := githubtest.Deliver(srv.URL, secret, githubtest.Delivery{Event: "pull_request", ID: "p-1",
			Body: f.GitHub.PullRequestEvent("opened", fluxtest.Owner, fluxtest.Repo, 7, "")})
		require.NoError(t, err)
		require.Equal(t, 202, code, body)
		evs = mine(hooked)
		require.Len(t, evs, 1)
		want, got := evs[0], opened
		want.Time, got.Time = time.Time{}, time.Time{}
		require.Equal(t, want, got)

		// A comment (updated, same head): read, not reported.
		f.GitHub.Touch(fluxtest.Owner, fluxtest.Repo, 7)
		before := counts()
		poll(s, rec)
		require.Equal(t, before[0]+1, counts()[0])
		require.Len(t, mine(rec), 1)
	})

	t.Run("APushIsOneNewEvent", func(t *testing.T) {
		pushed := f.Push(t, 7, "scale-web", map[string]string{"deploy/deployment.yaml": fluxtest.Deployment(4, "nginx:1.27")})
		poll(s, rec)
		evs := mine(rec)
		require.Len(t, evs, 2)
		require.Equal(t, ReasonUpdated, evs[1].Reason)
		require.Equal(t, pushed, evs[1].Labels["sha"])
		require.NotEqual(t, opened.ID, evs[1].ID)
	})

	t.Run("AMergeIsPullRequestMerged", func(t *testing.T) {
		merge := strings.Repeat("e", 40)
		f.GitHub.Merge(fluxtest.Owner, fluxtest.Repo, 7, merge)
		poll(s, rec)
		evs := mine(rec)
		require.Len(t, evs, 3)
		require.Equal(t, ReasonMerged, evs[2].Reason)
		require.Equal(t, merge, evs[2].Labels["sha"])
		// Read again after another change: the merge is not reported twice.
		f.GitHub.Touch(fluxtest.Owner, fluxtest.Repo, 7)
		poll(s, rec)
		require.Len(t, mine(rec), 3)
	})

	t.Run("ARestartReportsNothingNewAndMissesNoPush", func(t *testing.T) {
		again := polling(t, f, "ghpoll")
		rec2 := &recording{}
		before := counts()
		poll(again, rec2)
		require.Equal(t, [2]int{before[0], before[1] + 1}, counts(), "the ETag survived the restart")
		require.Empty(t, rec2.events())

		// A push made while no agent polled is reported by the next one.
		pushed := f.Push(t, 3, "older", map[string]string{"deploy/deployment.yaml": fluxtest.Deployment(5, "nginx:1.27")})
		again = polling(t, f, "ghpoll")
		poll(again, rec2)
		evs := mine(rec2)
		require.Len(t, evs, 1)
		require.Equal(t, "3", evs[0].Labels["pr"])
		require.Equal(t, pushed, evs[0].Labels["sha"])
	})

	t.Run("ARateLimitMakesItWait", func(t *testing.T) {
		f.GitHub.Throttle(90 * time.Second)
		before := counts()
		require.GreaterOrEqual(t, s.pollOnce(ctx, rec.emit), 90*time.Second)
		require.Equal(t, before, counts(), "a refused request is neither 200 nor 304")
		// The next poll goes on from where polling stood.
		poll(s, rec)
		require.Len(t, mine(rec), 4, "PR 3's push, once")
	})

	t.Run("WebhookAndPollingReportAChangeOnce", func(t *testing.T) {
		both := pollingWith(t, f, "ghpoll-both", ptr(config.NewSecret(secret, "test")))
		rec := &recording{}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- both.Receiver.Start(runCtx, rec.emit) }() // the test polls itself
		defer func() { cancel(); require.NoError(t, <-done) }()
		for emit, _ := both.Running(); emit == nil; emit, _ = both.Running() {
			runtime.Gosched()
		}
		srv := httptest.NewServer(both)
		defer srv.Close()
		deliver := func(id, action string) string {
			t.Helper()
			code, body, err := githubtest.Deliver(srv.URL, secret, githubtest.Delivery{Event: "pull_request", ID: id,
				Body: f.GitHub.PullRequestEvent(action, fluxtest.Owner, fluxtest.Repo, 9, "")})
			require.NoError(t, err)
			require.Equal(t, 202, code, body)
			return body
		}
		poll(both, rec) // the baseline
		f.OpenPR(t, 9, "replicas", fluxtest.PRFiles())
		poll(both, rec)
		require.Len(t, mine(rec), 1)
		require.Equal(t, "0 event(s)\n", deliver("b-1", "opened"), "polling reported it")
		f.Push(t, 9, "replicas", map[string]string{"deploy/deployment.yaml": fluxtest.Deployment(6, "nginx:1.27")})
		require.NotEqual(t, "0 event(s)\n", deliver("b-2", "synchronize"))
		require.Len(t, mine(rec), 2, "the webhook reported the push")
		poll(both, rec)
		require.Len(t, mine(rec), 2, "polling does not report it again")
	})

	t.Run("StartPollsAtOnceAndTakesNoWebhooks", func(t *testing.T) {
		only := polling(t, f, "ghpoll-run")
		before := counts()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- only.Start(runCtx, (&recording{}).emit) }()
		require.Eventually(t, func() bool { return counts()[0] > before[0] }, time.Minute, 10*time.Millisecond, "the first poll")
		w := httptest.NewRecorder()
		only.ServeHTTP(w, httptest.NewRequest("POST", "/github/fleet", strings.NewReader("{}")))
		require.Equal(t, 404, w.Code)
		require.Contains(t, w.Body.String(), "takes no webhooks")
		cancel()
		require.NoError(t, <-done)
	})
}

func TestPollingConfigIsChecked(t *testing.T) {
	_, err := New(config.Source{Name: "fleet", Type: config.SourceGitHub, GitHub: &config.GitHubSource{}}, "c1", env.Config, state.NewMemory(), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "github.webhookSecret is required unless the source polls (github.poll)")
}

// BenchmarkPollUnchanged measures a poll of a repository whose pull
// requests did not change: one conditional request answered 304, nothing
// else.
func BenchmarkPollUnchanged(b *testing.B) {
	testenv.Skip(b, env)
	fake := githubtest.New(b, "tok")
	for n := 1; n <= 20; n++ {
		fake.SetPullRequest(githubtest.PullRequest{Owner: "acme", Repo: "fleet", Number: n, Title: "t", HeadRef: "b", HeadSHA: strings.Repeat("a", 40)})
	}
	s, err := New(config.Source{Name: "bench", Type: config.SourceGitHub, GitHub: &config.GitHubSource{
		Poll: &config.GitHubPoll{Repositories: []string{"acme/fleet"}},
		API:  config.GitHubAPI{BaseURL: fake.APIURL(), Token: config.NewSecret("tok", "bench")},
	}}, "c1", env.Config, state.NewMemory(), slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	emit := (&recording{}).emit
	require.Zero(b, s.pollOnce(b.Context(), emit)) // the baseline
	b.ReportAllocs()
	for b.Loop() {
		s.pollOnce(b.Context(), emit)
	}
	b.StopTimer()
	ok, notModified := fake.ListCounts()
	require.Equal(b, (20+githubtest.PerPage-1)/githubtest.PerPage, ok, "the baseline's pages only")
	require.Positive(b, notModified)
}
