//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds Debian's chromium (or a Chrome); without one the test
// is skipped, unless KUBECHAT_REQUIRE_CHROMIUM makes that a failure (CI).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("KUBECHAT_REQUIRE_CHROMIUM") != "" {
		t.Fatal("no chromium in PATH, and KUBECHAT_REQUIRE_CHROMIUM is set")
	}
	t.Skip("no chromium in PATH (set KUBECHAT_REQUIRE_CHROMIUM to make this a failure)")
	return ""
}

var demoURL = regexp.MustCompile(`open (http://\S+/chat/demo/\?token=\S+)`)

// TestMakeRunDemo runs what "make run" runs: its own control plane, the demo
// workloads and the agent with the web chat. Headless Chromium opens the
// printed address, sees the crash-loop alert, types a command, gets its
// reply and clicks Run again; then, in #ops, it fixes the broken rollout
// (kubectl rollout undo) and the failed Helm release (helm rollback), each
// after a Confirm click, and sees both alerts edited into "Resolved".
func TestMakeRunDemo(t *testing.T) {
	browser := chromiumPath(t)
	bin := filepath.Join(t.TempDir(), "local")
	build := exec.Command("go", "build", "-o", bin, "../hack/local")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "KUBECHAT_LISTEN=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var logs safeBuffer
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := demoURL.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("make run log:\n%s", logs.String())
		}
	})
	var url string
	select {
	case url = <-urls:
	case err := <-exited:
		t.Fatalf("make run exited (%v)", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("make run printed no address within 2 minutes")
	}

	ctx, cancel := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Headless)...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	waitText := func(pattern string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](
			`(re) => new RegExp(re, "m").test(document.querySelector("#messages").innerText)`,
			chromedp.WithPollingArgs(pattern), chromedp.WithPollingTimeout(60*time.Second)))
		require.NoError(t, err, "the page never showed %q", pattern)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	waitText(`Pod demo/api-\S+ is failing \(CrashLoopBackOff\)`)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#input"), "@kubechat kubectl get pods"),
		chromedp.Click(chromedp.CSS("#send")),
	))
	waitText(`^web-\S+\s+1/1\s+Running`)
	waitText(`api-\S+\s+0/1\s+CrashLoopBackOff`)
	count := func() int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".replies .msg").length`))
		require.NoError(t, err)
		return n
	}
	before := count()
	clicked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`(() => { const b = [...document.querySelectorAll(".replies button")].find(b => b.textContent.trim() === "Run again"); if (b) b.click(); return !!b })()`))
	require.NoError(t, err)
	require.True(t, clicked, "the reply has a Run again button")
	_, err = chromedp.Run(ctx, chromedp.PollFunction[bool](`(n) => document.querySelectorAll(".replies .msg").length > n`,
		chromedp.WithPollingArgs(before), chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "Run again answered in the thread")

	// #ops: fix what broke, and watch the alerts resolve in place.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const b = document.querySelector('button.channel[data-channel="ops"]'); if (b) b.click(); return !!b })()`))
	require.NoError(t, err)
	waitText(`Pod demo/api-\S+ is failing \(CrashLoopBackOff\)`)
	waitText(`HelmRelease demo/shop is failing`)
	confirm := func(command, done string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#input"), "@kubechat "+command),
			chromedp.Click(chromedp.CSS("#send")),
		))
		waitText(`Confirm: ` + regexp.QuoteMeta(command))
		_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](
			`(cmd) => { const m = [...document.querySelectorAll(".msg")].find(m => m.innerText.includes("Confirm: " + cmd));
				const b = m && [...m.querySelectorAll("button")].find(b => b.textContent.trim() === "Confirm" && !b.disabled);
				if (b) b.click(); return !!b }`,
			chromedp.WithPollingArgs(command), chromedp.WithPollingTimeout(30*time.Second)))
		require.NoError(t, err, "a Confirm button under %q", command)
		waitText(done)
	}
	confirm("kubectl rollout undo deployment/api", `deployment.apps/api rolled back`)
	waitText(`Resolved: Pod demo/api-\S+`)
	confirm("helm rollback shop", `Rollback was a success`)
	waitText(`Resolved: HelmRelease demo/shop`)

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		require.NoError(t, err, "make run stops cleanly on Ctrl-C")
	case <-time.After(60 * time.Second):
		t.Fatal("make run did not stop within 60 s of Ctrl-C")
	}
}

// safeBuffer is a log buffer a process writes to while the test reads it.
type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
