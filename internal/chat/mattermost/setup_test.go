package mattermost

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/mattermost/mattermosttest"
	"github.com/kubechat/kubechat/internal/config"
)

// clientCalls are the calls this package makes on the Mattermost client,
// each with the permissions the server checks for it
// (https://api.mattermost.com, and the Member role's defaults).
var clientCalls = map[string][]string{
	"p.client.GetMe(": nil,
	// A public channel by name needs read_public_channel in the team; a
	// private one read_channel, which only its members have.
	"p.client.GetChannelByNameForTeamName(": {model.PermissionReadPublicChannel.Id, model.PermissionReadChannel.Id},
	"p.client.CreatePost(":                  {model.PermissionCreatePost.Id},
	"p.client.PatchPost(":                   {model.PermissionEditPost.Id}, // its own posts
	"p.client.UploadFile(":                  {model.PermissionUploadFile.Id},
	// Message links: the channel's team (a member reads its channel and
	// team) and the server's SiteURL (the public client config).
	"p.client.GetChannel(":      {model.PermissionReadChannel.Id},
	"p.client.GetTeam(":         {model.PermissionViewTeam.Id},
	"p.client.GetClientConfig(": nil,
	// The websocket carries the events of the bot's channels: no permission.
	"model.NewWebSocketClient4WithDialer(":        nil,
	"model.NewReliableWebSocketClientWithDialer(": nil,
}

func guide(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", file))
	require.NoError(t, err)
	return string(data)
}

// TestPermissionsFollowTheCode: every Mattermost client call in the
// package is in clientCalls and every entry is still called; the guide's
// permission table lists exactly what they need; and every server setting
// the guide names exists in Mattermost's own config model.
func TestPermissionsFollowTheCode(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	found := map[string]bool{}
	call := regexp.MustCompile(`\b(p\.client\.[A-Z]\w*\(|model\.New\w*WebSocket\w*\()`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range call.FindAllString(string(src), -1) {
			found[m] = true
		}
	}
	require.Equal(t, slices.Sorted(maps.Keys(clientCalls)), slices.Sorted(maps.Keys(found)),
		"a Mattermost call was added or removed: update clientCalls and docs/mattermost.md")

	doc := guide(t, "docs/mattermost.md")
	want := map[string]bool{}
	for _, perms := range clientCalls {
		for _, p := range perms {
			want[p] = true
		}
	}
	table := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(doc, -1) {
		table[m[1]] = true
	}
	require.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(table)), "the guide's permission table")

	cfg := reflect.TypeFor[model.Config]()
	settings := regexp.MustCompile(`\b([A-Z][A-Za-z]+Settings)\.([A-Z][A-Za-z]+)\b`).FindAllStringSubmatch(doc, -1)
	require.NotEmpty(t, settings)
	for _, m := range settings {
		section, ok := cfg.FieldByName(m[1])
		require.True(t, ok, "Mattermost has no %s", m[1])
		_, ok = section.Type.FieldByName(m[2])
		require.True(t, ok, "Mattermost has no %s.%s", m[1], m[2])
	}
}

// TestGuideActionsPathIsServed: the click path that docs/mattermost.md
// gives, and the actionsURL in configs/mattermost.yaml, are where the
// adapter takes clicks when mounted where the app mounts it: a button
// posted with that actionsURL, clicked on the fake server, reaches the
// handler.
func TestGuideActionsPathIsServed(t *testing.T) {
	const name = "ops-mattermost"
	m := regexp.MustCompile(`POST (/\S*<platform name>\S*)`).FindStringSubmatch(guide(t, "docs/mattermost.md"))
	require.NotNil(t, m, "docs/mattermost.md names no click path")
	fromGuide := strings.ReplaceAll(m[1], "<platform name>", name)
	m = regexp.MustCompile(`actionsURL: https?://[^/\s]+(/\S+)`).FindStringSubmatch(guide(t, "configs/mattermost.yaml"))
	require.NotNil(t, m, "configs/mattermost.yaml has no actionsURL")
	fromExample := m[1]

	t.Run("docs/mattermost.md", func(t *testing.T) { clickVia(t, name, fromGuide) })
	t.Run("configs/mattermost.yaml", func(t *testing.T) { clickVia(t, name, fromExample) })
}

// clickVia runs the adapter with its actionsURL at path on a test agent
// server and clicks a button it posted.
func clickVia(t *testing.T, name, path string) {
	t.Helper()
	srv := mattermosttest.New()
	t.Cleanup(srv.Close)
	mux := http.NewServeMux()
	agent := httptest.NewServer(mux)
	t.Cleanup(agent.Close)
	t.Setenv("TEST_MATTERMOST_TOKEN", mattermosttest.Token)
	raw, err := config.RawFromYAML(fmt.Sprintf("url: %s\ntoken: ${TEST_MATTERMOST_TOKEN}\nactionsURL: %s%s\n", srv.URL(), agent.URL, path))
	require.NoError(t, err)
	p, err := New(name, raw, chat.Deps{})
	require.NoError(t, err)
	prefix := chat.HTTPPrefix(p)
	mux.Handle(prefix+"/", http.StripPrefix(prefix, p.(chat.HTTPReceiver).HTTPHandler()))

	got := make(chan chat.Inbound, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		_ = p.Listen(ctx, chat.HandlerFunc(func(_ context.Context, in chat.Inbound) chat.Message {
			got <- in
			return chat.Message{}
		}))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.NoError(t, srv.WaitConnected(t.Context(), 1))
	alerts := srv.ChannelID("alerts")
	ref, err := p.Post(t.Context(), chat.Channel{ID: alerts}, chat.Message{Title: "CrashLoopBackOff",
		Sections: []chat.Section{{Buttons: []chat.Button{{Label: "Run again", ID: "act-1"}}}}})
	require.NoError(t, err)
	status, body, err := srv.Click(ref.ID, "user1", buttonID(t, srv, alerts, ref.ID), "")
	require.NoError(t, err, path)
	require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
	select {
	case in := <-got:
		require.Equal(t, "act-1", in.ButtonID, path)
	case <-time.After(10 * time.Second):
		t.Fatalf("the click posted to %s did not reach the handler", path)
	}
}

// buttonID returns the Mattermost action id of the first button of a post.
func buttonID(t *testing.T, srv *mattermosttest.Server, channel, postID string) string {
	t.Helper()
	for _, p := range srv.Posts(channel) {
		if p.ID != postID {
			continue
		}
		var props struct {
			Attachments []struct {
				Actions []struct {
					ID string `json:"id"`
				} `json:"actions"`
			} `json:"attachments"`
		}
		require.NoError(t, json.Unmarshal(p.Props, &props))
		for _, a := range props.Attachments {
			for _, act := range a.Actions {
				return act.ID
			}
		}
	}
	t.Fatalf("post %s has no button", postID)
	return ""
}
