package teams

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/teams/teamstest"
	"github.com/kubechat/kubechat/internal/config"
)

// TestGuideEndpointIsServed: the messaging endpoint that docs/teams.md and
// configs/teams.yaml tell people to give the Azure Bot is where the agent
// takes activities. The adapter is mounted where the app mounts it, and a
// signed mention sent to the documented path reaches the handler.
func TestGuideEndpointIsServed(t *testing.T) {
	endpoint := regexp.MustCompile("https://<(?:your )?host>(/[^`\n]*?/api/messages)")
	var paths []string
	for _, f := range []string{"docs/teams.md", "configs/teams.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", f))
		require.NoError(t, err)
		found := endpoint.FindAllStringSubmatch(string(data), -1)
		require.NotEmpty(t, found, "%s names no messaging endpoint", f)
		for _, m := range found {
			paths = append(paths, m[1])
		}
	}

	srv := teamstest.New()
	t.Cleanup(srv.Close)
	t.Setenv("TEST_TEAMS_PASSWORD", teamstest.AppPassword)
	raw, err := config.RawFromYAML(fmt.Sprintf("appID: %s\nappPassword: ${TEST_TEAMS_PASSWORD}\nserviceURL: %s\nopenIDURL: %s\ntokenURL: %s\n",
		teamstest.AppID, srv.ServiceURL(), srv.OpenIDURL(), srv.TokenURL()))
	require.NoError(t, err)
	p, err := New("ops-teams", raw, chat.Deps{})
	require.NoError(t, err)
	prefix := chat.HTTPPrefix(p)
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, p.(chat.HTTPReceiver).HTTPHandler()))
	bot := httptest.NewServer(mux)
	t.Cleanup(bot.Close)

	got := make(chan chat.Inbound, len(paths))
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
	require.Eventually(t, p.(*platform).ready, 10*time.Second, 10*time.Millisecond)

	for _, path := range paths {
		srv.SetBotEndpoint(bot.URL + strings.ReplaceAll(path, "<platform name>", p.Name()))
		_, status, err := srv.Mention(srv.ChannelID("alerts"), "29:user-1", "ping")
		require.NoError(t, err, path)
		require.Equal(t, http.StatusOK, status, "the documented endpoint %s is not served", path)
		require.Equal(t, "ping", (<-got).Text, path)
	}
}
