package argocd

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/executor"
)

// TestFollow: what a github source's merge runs. The Application is
// followed, as the caller, through the states the application controller
// writes, until it is Synced and Healthy at the merge commit, with how
// long that took; a sync of the commit that fails, and an Application
// Degraded once synced to it, end the follow as failures with Argo CD's
// message.
func TestFollow(t *testing.T) {
	apps := world(t)
	newApp(t, apps, "rollout", nil)
	e := newExecutor(t, "url: https://argocd.example.com")
	follow := func(sha string) executor.Request {
		return executor.Request{Args: []string{"app", "follow", "rollout", "--sha", sha}, Identity: viewer, Namespace: appNS}
	}
	type watched struct {
		res  executor.Result
		done bool
		err  error
	}
	watch := func(req executor.Request, last executor.Result) <-chan watched {
		ch := make(chan watched, 1)
		go func() {
			r, done, err := e.Watch(t.Context(), req, last)
			ch <- watched{r, done, err}
		}()
		return ch
	}

	merge := strings.Repeat("c", 40)
	req := follow(merge)
	res, err := e.Execute(t.Context(), req)
	require.NoError(t, err)
	require.True(t, res.Ongoing)
	require.Equal(t, "Waiting for application argocd/rollout to sync ccccccc: at 2222222, Synced, Healthy.\n", res.Output)

	// The controller starts syncing the merge, ...
	w := watch(req, res)
	setStatus(t, apps, "rollout", func(st map[string]any) {
		st["sync"] = map[string]any{"status": "OutOfSync", "revision": merge}
		st["operationState"] = map[string]any{"operation": map[string]any{"sync": map[string]any{"revision": merge}},
			"phase": "Running", "message": "waiting for healthy state of apps/Deployment/rollout", "startedAt": now()}
	})
	got := <-w
	require.NoError(t, got.err)
	require.False(t, got.done)
	require.True(t, got.res.Ongoing)
	require.Equal(t, "Waiting for application argocd/rollout to sync ccccccc: at ccccccc, OutOfSync, Healthy; operation Running: waiting for healthy state of apps/Deployment/rollout.\n", got.res.Output)

	// ... syncs it while the Deployment rolls out, ...
	w = watch(req, got.res)
	setStatus(t, apps, "rollout", func(st map[string]any) {
		st["sync"] = map[string]any{"status": "Synced", "revision": merge}
		st["health"] = map[string]any{"status": "Progressing", "lastTransitionTime": now()}
		st["operationState"] = map[string]any{"operation": map[string]any{"sync": map[string]any{"revision": merge}},
			"phase": "Succeeded", "message": "successfully synced (all tasks run)", "startedAt": now(), "finishedAt": now(),
			"syncResult": map[string]any{"revision": merge}}
	})
	got = <-w
	require.NoError(t, got.err)
	require.False(t, got.done)
	require.Contains(t, got.res.Output, "at ccccccc, Synced, Progressing.")

	// ... and it turns Healthy: the end.
	w = watch(req, got.res)
	setStatus(t, apps, "rollout", func(st map[string]any) {
		st["health"] = map[string]any{"status": "Healthy", "lastTransitionTime": now()}
	})
	got = <-w
	require.NoError(t, got.err)
	require.True(t, got.done)
	require.False(t, got.res.Ongoing)
	require.Equal(t, 0, got.res.ExitCode, got.res.Errors)
	require.Contains(t, got.res.Output, "Application argocd/rollout is Synced and Healthy at ccccccc.\nSynced ")
	require.Contains(t, got.res.Output, " after kubechat started following it.\n")
	require.Equal(t, []executor.Button{{Label: "View in Argo CD", URL: "https://argocd.example.com/applications/argocd/rollout"}}, got.res.Buttons)

	// A sync of the next commit that fails.
	broken := strings.Repeat("d", 40)
	req = follow(broken)
	res, err = e.Execute(t.Context(), req)
	require.NoError(t, err)
	require.True(t, res.Ongoing)
	w = watch(req, res)
	setStatus(t, apps, "rollout", func(st map[string]any) {
		st["sync"] = map[string]any{"status": "OutOfSync", "revision": broken}
		st["operationState"] = map[string]any{"operation": map[string]any{"sync": map[string]any{"revision": broken}},
			"phase": "Failed", "message": `one or more objects failed to apply, reason: Deployment.apps "rollout" is invalid`,
			"startedAt": now(), "finishedAt": now(), "syncResult": map[string]any{"revision": broken}}
	})
	got = <-w
	require.NoError(t, got.err)
	require.True(t, got.done)
	require.Equal(t, 1, got.res.ExitCode)
	require.Equal(t, `Application argocd/rollout failed to sync ddddddd: the operation ended Failed: one or more objects failed to apply, reason: Deployment.apps "rollout" is invalid`+"\n", got.res.Errors)
	require.Equal(t, "Sync", got.res.Buttons[0].Label)

	// Synced to a commit, then Degraded: a failure too, told at once to a
	// follow that starts late.
	degraded := strings.Repeat("e", 40)
	setStatus(t, apps, "rollout", func(st map[string]any) {
		st["sync"] = map[string]any{"status": "Synced", "revision": degraded}
		st["health"] = map[string]any{"status": "Degraded", "message": `Deployment "rollout" exceeded its progress deadline`, "lastTransitionTime": now()}
		st["operationState"] = map[string]any{"operation": map[string]any{"sync": map[string]any{"revision": degraded}},
			"phase": "Succeeded", "startedAt": now(), "finishedAt": now(), "syncResult": map[string]any{"revision": degraded}}
	})
	res, err = e.Execute(t.Context(), follow(degraded))
	require.NoError(t, err)
	require.False(t, res.Ongoing)
	require.Equal(t, 1, res.ExitCode)
	require.Equal(t, `Application argocd/rollout is Degraded at eeeeeee: Deployment "rollout" exceeded its progress deadline`+"\n", res.Errors)

	// Following is reading: an identity that may not read the Application
	// is told so.
	res, err = e.Execute(t.Context(), executor.Request{Args: []string{"app", "follow", "rollout", "--sha", merge}, Identity: executor.Identity{User: "nobody"}, Namespace: appNS})
	require.NoError(t, err)
	require.True(t, res.Forbidden)
}
