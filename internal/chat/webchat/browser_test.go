package webchat

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/color"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
)

// requireChromiumEnv makes a missing browser a failure instead of a skip
// (CI sets it).
const requireChromiumEnv = "KUBECHAT_REQUIRE_CHROMIUM"

// update rewrites the README's screenshot (docs/webchat.png) from
// TestBrowser; without it, the test compares the page with it.
var update = flag.Bool("update", false, "rewrite docs/webchat.png from the page TestBrowser renders")

// screenshotPath is the screenshot the README shows.
const screenshotPath = "../../../docs/webchat.png"

// screenshotWidth and screenshotHeight are the page's viewport in CSS
// pixels, and so the screenshot's size.
const (
	screenshotWidth  = 1280
	screenshotHeight = 1257
)

// chromium finds a Chromium or Chrome to drive.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv(requireChromiumEnv) != "" {
		t.Fatalf("no chromium, chromium-browser or google-chrome in PATH, and %s is set", requireChromiumEnv)
	}
	t.Skipf("no chromium, chromium-browser or google-chrome in PATH (set %s to make this a failure)", requireChromiumEnv)
	return ""
}

// podsReply is what the fake handler answers "kubectl get pods" with; a
// click on its "Run again" answers with the next run.
func podsReply(run int) chat.Message {
	return chat.Message{
		Title: fmt.Sprintf("kubectl get pods (run %d)", run),
		Sections: []chat.Section{{
			Code: "NAME                     READY   STATUS             RESTARTS      AGE\n" +
				"web-1                    0/1     CrashLoopBackOff   7 (2m ago)    14m\n" +
				"web-2                    1/1     Running            0             14m\n" +
				"cart-6d9f7b8c4d-x2x7q    1/1     Running            0             3h\n",
			Buttons: []chat.Button{{Label: "Run again", ID: "act-run-again", Style: chat.ButtonPrimary}},
			Selects: []chat.Select{{Placeholder: "Namespace", ID: "act-ns", Options: []chat.Option{
				{Label: "default", Value: "default"}, {Label: "shop", Value: "shop"}}}},
		}},
		Context: "cluster: test-cluster · kubectl · 0.21 s",
	}
}

// TestBrowser drives the page in a headless Chromium: an alert shows up
// live, a typed command is answered in its thread, a click on the reply's
// button is answered there too, a command typed with "Reply" goes into the
// alert's thread, an edit replaces a message in place, and markup in a
// message is shown as text, not run.
func TestBrowser(t *testing.T) {
	browser := chromium(t)
	p := newPlatform(t, tokenSettings(t, "title: kubechat\n"))
	srv := serve(t, p)
	var (
		mu  sync.Mutex
		got []chat.Inbound
	)
	listen(t, p, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
		mu.Lock()
		got = append(got, in)
		mu.Unlock()
		switch {
		case in.Text == "kubectl get pods":
			return podsReply(1)
		case in.ButtonID == "act-run-again":
			return podsReply(2)
		case in.Text == "describe pod web-1":
			return chat.Message{Title: "kubectl describe pod web-1", Sections: []chat.Section{{Code: "Name:         web-1\nNamespace:    default\nStatus:       Running"}}}
		}
		return chat.Message{Title: "unexpected: " + in.Text + in.ButtonID, Level: chat.LevelError}
	}))
	alerts := chat.Channel{Name: "alerts", ID: "alerts"}
	_, err := p.Post(t.Context(), alerts, chat.Message{
		Title: "CrashLoopBackOff: default/web-1",
		Level: chat.LevelError,
		Sections: []chat.Section{{
			Text:   "Back-off restarting failed container `web` in pod `web-1`.",
			Fields: []chat.Field{{Name: "Namespace", Value: "default"}, {Name: "Pod", Value: "web-1"}, {Name: "Container", Value: "web"}, {Name: "Restarts", Value: "7"}},
			Code:   "2024-05-02T10:14:03Z INFO  listening on :8080\n2024-05-02T10:14:04Z ERROR cannot connect to postgres:5432: connection refused\npanic: database unavailable",
			Buttons: []chat.Button{
				{Label: "Describe pod", ID: "act-describe", Style: chat.ButtonPrimary},
				{Label: "Delete pod", ID: "act-delete", Style: chat.ButtonDanger},
				{Label: "Runbook", URL: "https://runbooks.example.com/crashloop"},
			},
		}},
		Context: "cluster: test-cluster · source: failures",
	})
	require.NoError(t, err)

	ctx, cancel := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // tests may run as root, where the sandbox refuses to start
		chromedp.Headless,
		chromedp.WindowSize(1280, 1400),
	)...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx), "start %s", browser)
	// The page gets a fixed viewport: the window's size leaves a frame
	// that differs between Chromium releases (148 drew 4 px less than
	// 147), and the screenshot must not depend on it.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(screenshotWidth, screenshotHeight)))
	console := chromedp.Console(ctx)
	var (
		consoleMu sync.Mutex
		problems  []string
	)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Source == "security" {
				consoleMu.Lock()
				problems = append(problems, m.String())
				consoleMu.Unlock()
			}
		}
	}()
	// A bound for a hung page, not a speed check: under -race on a busy
	// machine the whole walk has taken over 20 s.
	ctx, cancelSteps := context.WithTimeout(ctx, 90*time.Second)
	defer cancelSteps()

	// waitText waits until the page shows text (as text: markup in it too).
	waitText := func(text string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](
			`(text) => document.querySelector("#messages").innerText.includes(text)`,
			chromedp.WithPollingArgs(text), chromedp.WithPollingTimeout(10*time.Second)))
		require.NoError(t, err, "the page never showed %q", text)
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		require.NoError(t, err, expr)
		return v
	}

	// Sign in with the token; the page drops it from the address.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+p.HTTPPrefix()+"/?token="+url.QueryEscape(testToken))))
	waitText("CrashLoopBackOff: default/web-1")
	location, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Equal(t, srv.URL+p.HTTPPrefix()+"/", strings.TrimSuffix(location, "#alerts"), "no token in the address")
	waitText("Back-off restarting failed container web in pod web-1.")
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#status").dataset.state === "live"`, chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the stream is live")

	// An alert posted now shows up live, and its edit replaces it.
	warning, err := p.Post(t.Context(), alerts, chat.Message{Title: "High memory: shop/cart-6d9f7b8c4d-x2x7q", Level: chat.LevelWarning,
		Sections: []chat.Section{{Text: "Memory at 93% of the limit (1Gi) for 10 minutes."}}, Context: "cluster: test-cluster · source: resources"})
	require.NoError(t, err)
	waitText("High memory: shop/cart-6d9f7b8c4d-x2x7q")
	_, err = p.Post(t.Context(), alerts, chat.Message{Title: "Recovered: shop/cart-6d9f7b8c4d-x2x7q", Level: chat.LevelSuccess,
		Sections: []chat.Section{{Text: "Memory back at 41% of the limit."}}, Context: "cluster: test-cluster · source: resources", Replace: &warning})
	require.NoError(t, err)
	waitText("Recovered: shop/cart-6d9f7b8c4d-x2x7q")
	require.Equal(t, "false", eval(`String(document.querySelector("#messages").innerText.includes("High memory"))`), "the edit replaced the message")

	// Type a command; the reply shows in its thread.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#input"), "@kubechat kubectl get pods"),
		chromedp.Click(chromedp.CSS("#send")),
	))
	waitText("kubectl get pods (run 1)")
	waitText("web-1                    0/1     CrashLoopBackOff")
	require.Equal(t, "@kubechat kubectl get pods", eval(`document.querySelector(".msg.user .command").textContent`))
	require.Equal(t, "kubectl get pods (run 1)", eval(`document.querySelector(".msg.user").closest(".thread").querySelector(".replies .msg-title").textContent`),
		"the reply is in the command's thread")

	// Click "Run again" on the reply: the second run lands in the same thread.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.replies button[data-action="act-run-again"]`))))
	waitText("kubectl get pods (run 2)")
	require.Equal(t, "kubectl get pods (run 1)|kubectl get pods (run 2)",
		eval(`[...document.querySelector(".msg.user").closest(".thread").querySelectorAll(".replies .msg-title")].map(e => e.textContent).join("|")`))
	mu.Lock()
	require.Len(t, got, 2)
	require.Equal(t, "kubectl get pods", got[0].Text)
	require.Equal(t, "token", got[0].UserID)
	require.Equal(t, "act-run-again", got[1].ButtonID)
	require.Equal(t, got[0].Thread.ID, got[1].Thread.ID)
	mu.Unlock()

	// The README's screenshot is this page, once the clicked button is
	// back: -update rewrites it, and otherwise the page must still look
	// like it (times in messages aside).
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector(".busy") === null`, chromedp.WithPollingTimeout(5*time.Second)))
	require.NoError(t, err)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(screenshotPath, shot, 0o644))
	} else {
		requireLooksLike(t, screenshotPath, shot)
	}

	// "Reply" on the alert: the command and its answer go into the alert's thread.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`.msg.level-error .reply-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#replying`)),
		chromedp.SendKeys(chromedp.CSS("#input"), "describe pod web-1"),
		chromedp.Click(chromedp.CSS("#send")),
	))
	waitText("kubectl describe pod web-1")
	require.Equal(t, "describe pod web-1|kubectl describe pod web-1",
		eval(`[...document.querySelector(".msg.level-error").closest(".thread").querySelectorAll(".replies .command, .replies .msg-title")].map(e => e.textContent).join("|")`))

	// A message's link (Permalink's #channel/id) opens its channel and shows it.
	linked, err := p.Post(t.Context(), chat.Channel{Name: "ops", ID: "ops"}, chat.Message{Title: "Deployment shop/web is failing", Level: chat.LevelError})
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(srv.URL+p.HTTPPrefix()+"/#ops/"+linked.ID)))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector(".msg.focused") !== null`, chromedp.WithPollingTimeout(10*time.Second)))
	require.NoError(t, err, "the linked message is shown")
	require.Equal(t, linked.ID+"|ops", eval(`document.querySelector(".msg.focused").dataset.id + "|" + document.querySelector("#channel-name").innerText.replace("#", "")`))
	eval(`location.hash = "#alerts"; ""`)
	waitText("CrashLoopBackOff: default/web-1")

	// Markup in a message is text.
	xss := `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`
	_, err = p.Post(t.Context(), alerts, chat.Message{Title: "pod " + xss, Level: chat.LevelInfo,
		Sections: []chat.Section{{Text: xss, Code: xss, Fields: []chat.Field{{Name: "Name", Value: xss}}}}})
	require.NoError(t, err)
	waitText("pod " + xss)
	require.Equal(t, "undefined", eval(`typeof window.__xss`), "markup in a message ran")
	require.Equal(t, "0", eval(`String(document.querySelectorAll("#messages img, #messages script").length)`))

	cancelSteps()
	cancel()
	<-consoleDone
	consoleMu.Lock()
	defer consoleMu.Unlock()
	require.Empty(t, problems, "the page logged errors (a CSP violation shows here too)")
}

// requireLooksLike fails unless the PNG shot differs from the one in file
// in at most 1 % of its pixels: what changes from run to run (the time of
// a message) is that small, a change of the page's look is not. Run the
// test with -update to take the new look as the README's screenshot.
func requireLooksLike(t *testing.T, file string, shot []byte) {
	t.Helper()
	want, err := os.ReadFile(file)
	require.NoError(t, err)
	a, err := png.Decode(bytes.NewReader(want))
	require.NoError(t, err)
	b, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err)
	require.Equal(t, a.Bounds(), b.Bounds(), "%s has another size than the page now: run go test -run TestBrowser -update", file)
	differ := 0
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			if colorDistance(a.At(x, y), b.At(x, y)) > 48 {
				differ++
			}
		}
	}
	total := a.Bounds().Dx() * a.Bounds().Dy()
	require.LessOrEqual(t, differ*100, total, "%d of %d pixels differ from %s: the page looks different; run go test -run TestBrowser -update and look at it", differ, total, file)
}

// colorDistance is the largest difference of two colours' channels, 0 to 255.
func colorDistance(a, b color.Color) int {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	d := 0
	for _, p := range [][2]uint32{{ar, br}, {ag, bg}, {ab, bb}} {
		diff := int(p[0]>>8) - int(p[1]>>8)
		d = max(d, diff, -diff)
	}
	return d
}
