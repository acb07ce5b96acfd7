package mattermost

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/chattest"
	"github.com/kubechat/kubechat/internal/chat/mattermost/mattermosttest"
	"github.com/kubechat/kubechat/internal/config"
)

// newPlatform builds the adapter against srv, with its action endpoint
// served on loopback where the fake server posts clicks.
func newPlatform(t *testing.T, srv *mattermosttest.Server) *platform {
	t.Helper()
	var (
		mu      sync.Mutex
		handler http.Handler = http.NotFoundHandler()
	)
	actions := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := handler
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(actions.Close)
	t.Setenv("TEST_MATTERMOST_TOKEN", mattermosttest.Token)
	raw, err := config.RawFromYAML(fmt.Sprintf("url: %s\ntoken: ${TEST_MATTERMOST_TOKEN}\nteam: %s\nactionsURL: %s/actions\n",
		srv.URL(), mattermosttest.TeamName, actions.URL))
	require.NoError(t, err)
	p, err := New("ops-mattermost", raw, chat.Deps{})
	require.NoError(t, err)
	mu.Lock()
	handler = p.(*platform).HTTPHandler()
	mu.Unlock()
	return p.(*platform)
}

type fake struct{ srv *mattermosttest.Server }

func (f fake) Messages(ch string) []chattest.Posted {
	var out []chattest.Posted
	for _, p := range f.srv.Posts(ch) {
		if len(p.FileIDs) > 0 {
			continue // a file: it comes with a post of its own (see Files)
		}
		out = append(out, chattest.Posted{ID: p.ID, Thread: p.RootID, Text: visibleText(p), Edits: p.Edits})
	}
	return out
}

// Files are the uploads attached to posts in the channel, with their post's thread.
func (f fake) Files(ch string) []chattest.Uploaded {
	var out []chattest.Uploaded
	for _, file := range f.srv.Files() {
		if file.ChannelID != ch {
			continue
		}
		for _, p := range f.srv.Posts(ch) {
			if slices.Contains(p.FileIDs, file.ID) {
				out = append(out, chattest.Uploaded{Name: file.Name, Content: file.Content, Thread: p.RootID})
			}
		}
	}
	return out
}

func (f fake) Mention(ch, user, text string) error {
	_, err := f.srv.Mention(ch, user, text)
	return err
}

// Click finds the Mattermost action that carries actionID in its context
// and clicks it, as a user would.
func (f fake) Click(ch, postID, user, actionID, value string) error {
	for _, p := range f.srv.Posts(ch) {
		if p.ID != postID {
			continue
		}
		var props struct {
			Attachments []struct {
				Actions []struct {
					ID          string `json:"id"`
					Integration struct {
						Context map[string]any `json:"context"`
					} `json:"integration"`
				} `json:"actions"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal(p.Props, &props); err != nil {
			return err
		}
		for _, a := range props.Attachments {
			for _, act := range a.Actions {
				if act.Integration.Context[actionContextKey] == actionID {
					status, body, err := f.srv.Click(postID, user, act.ID, value)
					if err == nil && status != http.StatusOK {
						err = fmt.Errorf("integration answered %d %s", status, body)
					}
					return err
				}
			}
		}
		return fmt.Errorf("post %s has no action %s", postID, actionID)
	}
	return fmt.Errorf("no post %s in %s", postID, ch)
}

func (f fake) FailNext(n, status int, retryAfter time.Duration) {
	f.srv.FailNext(n, status, retryAfter)
}
func (f fake) Drop()            { f.srv.Drop() }
func (f fake) Connections() int { return f.srv.Connections() }
func (f fake) Connected() int   { return f.srv.Connected() }

// The adapter dials out: the conformance suite checks it hangs up.
var _ chattest.OpenConnections = fake{}

// visibleText is the message plus every text of its attachments.
func visibleText(p mattermosttest.Post) string {
	return p.Message + "\n" + chattest.JSONText([]string{"title", "text", "value", "footer", "name"}, p.Props)
}

func TestConformance(t *testing.T) {
	chattest.RunConformance(t, func(t *testing.T) chattest.Setup {
		srv := mattermosttest.New()
		t.Cleanup(srv.Close)
		return chattest.Setup{
			Platform:  newPlatform(t, srv),
			Fake:      fake{srv},
			Channel:   chat.Channel{Name: "alerts", ID: srv.ChannelID("alerts")},
			CanUpload: true,
			Secrets:   []string{mattermosttest.Token},
			Permalink: func(ref chat.MessageRef) string { return srv.URL() + "/" + mattermosttest.TeamName + "/pl/" + ref.ID },
		}
	})
}

func TestChannelsByName(t *testing.T) {
	srv := mattermosttest.New()
	t.Cleanup(srv.Close)
	p := newPlatform(t, srv)
	ref, err := p.Post(t.Context(), chat.Channel{ID: "alerts"}, chat.Message{Title: "by name"})
	require.NoError(t, err)
	require.Equal(t, srv.ChannelID("alerts"), ref.Channel)
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	t.Setenv("MM", "tok")
	for yaml, want := range map[string]string{
		"token: ${MM}\n":                                        `settings.url: "" is not an http(s) URL`,
		"url: https://chat.example.com\n":                       "settings.token: is required",
		"url: https://c.example\ntoken: ${MM}\nactionsURL: x\n": `settings.actionsURL: "x" is not an http(s) URL`,
	} {
		raw, err := config.RawFromYAML(yaml)
		require.NoError(t, err)
		_, err = New("m", raw, chat.Deps{})
		require.ErrorContains(t, err, want, yaml)
	}
}
