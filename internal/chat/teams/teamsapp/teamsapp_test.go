package teamsapp_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/teams"
	"github.com/kubechat/kubechat/internal/chat/teams/teamsapp"
	"github.com/kubechat/kubechat/internal/config"
)

const appID = "3f6a1c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"

// manifest is the part of a Teams app manifest the tests read
// (https://learn.microsoft.com/microsoftteams/platform/resources/schema/manifest-schema).
type manifest struct {
	Schema          string `json:"$schema"`
	ManifestVersion string `json:"manifestVersion"`
	Version         string `json:"version"`
	ID              string `json:"id"`
	Developer       struct {
		Name, WebsiteURL, PrivacyURL, TermsOfUseURL string
	} `json:"developer"`
	Name        struct{ Short, Full string }    `json:"name"`
	Description struct{ Short, Full string }    `json:"description"`
	Icons       struct{ Color, Outline string } `json:"icons"`
	AccentColor string                          `json:"accentColor"`
	Bots        []struct {
		BotID              string   `json:"botId"`
		Scopes             []string `json:"scopes"`
		SupportsFiles      bool     `json:"supportsFiles"`
		IsNotificationOnly bool     `json:"isNotificationOnly"`
		CommandLists       []struct {
			Scopes   []string `json:"scopes"`
			Commands []struct{ Title, Description string }
		} `json:"commandLists"`
	} `json:"bots"`
	ValidDomains *[]string `json:"validDomains"`
}

func unzip(t *testing.T, o teamsapp.Options) map[string][]byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, teamsapp.Write(&b, o))
	zr, err := zip.NewReader(bytes.NewReader(b.Bytes()), int64(b.Len()))
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		require.NoError(t, err)
		data, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		files[f.Name] = data
	}
	return files
}

// TestPackage: the zip holds exactly the manifest and the two icons at its
// root; the manifest is valid JSON, in schema 1.16 or later, with the app
// id in every place the template had its placeholder, the bot in the
// scopes the adapter serves, and the icons it names at the sizes Teams
// requires.
func TestPackage(t *testing.T) {
	files := unzip(t, teamsapp.Options{AppID: appID, ShortName: `kube "chat"`})
	require.Equal(t, []string{"color.png", "manifest.json", "outline.png"}, slices.Sorted(maps.Keys(files)))

	raw := files[teamsapp.ManifestFile]
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	require.NoError(t, dec.Decode(&m), "manifest.json is not valid JSON")
	require.NotContains(t, string(raw), "{{", "a placeholder was left")
	template := strings.Count(string(configs.TeamsManifest), "{{appID}}")
	require.Positive(t, template)
	require.Equal(t, template, strings.Count(string(raw), appID), "the app id replaces every {{appID}}")

	minor, err := strconv.Atoi(strings.TrimPrefix(m.ManifestVersion, "1."))
	require.NoError(t, err, "manifestVersion %q", m.ManifestVersion)
	require.GreaterOrEqual(t, minor, 16, "manifestVersion")
	require.Equal(t, "https://developer.microsoft.com/json-schemas/teams/v"+m.ManifestVersion+"/MicrosoftTeams.schema.json", m.Schema)
	require.Equal(t, "1.0.0", m.Version)
	require.Equal(t, appID, m.ID)
	require.Equal(t, `kube "chat"`, m.Name.Short, "names are escaped into the JSON")
	require.Equal(t, "kubechat: Kubernetes ChatOps", m.Name.Full)
	for what, v := range map[string]string{
		"developer.name": m.Developer.Name, "developer.websiteUrl": m.Developer.WebsiteURL,
		"developer.privacyUrl": m.Developer.PrivacyURL, "developer.termsOfUseUrl": m.Developer.TermsOfUseURL,
		"description.short": m.Description.Short, "description.full": m.Description.Full, "accentColor": m.AccentColor,
	} {
		require.NotEmpty(t, v, "%s is required", what)
	}
	require.LessOrEqual(t, len(m.Description.Short), 80, "description.short")
	require.NotNil(t, m.ValidDomains, "validDomains")

	require.Len(t, m.Bots, 1)
	bot := m.Bots[0]
	require.Equal(t, appID, bot.BotID)
	require.ElementsMatch(t, []string{"team", "personal", "groupChat"}, bot.Scopes)
	require.False(t, bot.IsNotificationOnly, "the bot takes commands")
	// Teams bots cannot upload files to channels, and the adapter does not try.
	t.Setenv("TEAMS_TEST_PASSWORD", "secret")
	raw2, err := config.RawFromYAML("appID: " + appID + "\nappPassword: ${TEAMS_TEST_PASSWORD}\n")
	require.NoError(t, err)
	p, err := teams.New("ops-teams", raw2, chat.Deps{})
	require.NoError(t, err)
	_, uploads := p.(chat.Uploader)
	require.Equal(t, uploads, bot.SupportsFiles, "supportsFiles follows whether the adapter uploads")
	for _, l := range bot.CommandLists {
		require.LessOrEqual(t, len(l.Commands), 10)
		for _, c := range l.Commands {
			require.LessOrEqual(t, len(c.Title), 32, c.Title)
			require.LessOrEqual(t, len(c.Description), 128, c.Title)
		}
	}

	for name, size := range map[string]int{m.Icons.Color: teamsapp.ColorSize, m.Icons.Outline: teamsapp.OutlineSize} {
		data, ok := files[name]
		require.True(t, ok, "the manifest names the icon %s, which the zip lacks", name)
		img, err := png.Decode(bytes.NewReader(data))
		require.NoError(t, err, name)
		require.Equal(t, image.Rect(0, 0, size, size), img.Bounds(), name)
	}
	require.Equal(t, 192, teamsapp.ColorSize)
	require.Equal(t, 32, teamsapp.OutlineSize)

	// The outline icon is white on transparent, and draws something.
	outline, err := png.Decode(bytes.NewReader(files[m.Icons.Outline]))
	require.NoError(t, err)
	drawn := 0
	for y := range teamsapp.OutlineSize {
		for x := range teamsapp.OutlineSize {
			r, g, b, a := outline.At(x, y).RGBA()
			if a == 0 {
				continue
			}
			drawn++
			require.Equal(t, [3]uint32{a, a, a}, [3]uint32{r, g, b}, "outline pixel (%d,%d) is not white", x, y)
		}
	}
	require.Positive(t, drawn)
	require.Less(t, drawn, teamsapp.OutlineSize*teamsapp.OutlineSize/2)
	// The color icon is opaque.
	colorIcon, err := png.Decode(bytes.NewReader(files[m.Icons.Color]))
	require.NoError(t, err)
	for y := range teamsapp.ColorSize {
		for x := range teamsapp.ColorSize {
			_, _, _, a := colorIcon.At(x, y).RGBA()
			require.Equal(t, uint32(0xffff), a, "color pixel (%d,%d) is not opaque", x, y)
		}
	}
}

func TestPackageIsReproducible(t *testing.T) {
	var a, b bytes.Buffer
	o := teamsapp.Options{AppID: appID, ShortName: "kubechat-prod", Version: "1.2.3"}
	require.NoError(t, teamsapp.Write(&a, o))
	require.NoError(t, teamsapp.Write(&b, o))
	require.Equal(t, a.Bytes(), b.Bytes())
}

func TestOptionsErrorsNameTheOption(t *testing.T) {
	_, err := teamsapp.Manifest(teamsapp.Options{
		AppID: "kubechat", ShortName: strings.Repeat("k", 31), FullName: strings.Repeat("k", 101), Version: "v1",
	})
	require.ErrorContains(t, err, `app id "kubechat": is not a GUID`)
	require.ErrorContains(t, err, "short name")
	require.ErrorContains(t, err, "has 31 characters, Teams allows 30")
	require.ErrorContains(t, err, "has 101 characters, Teams allows 100")
	require.ErrorContains(t, err, `version "v1": is not MAJOR.MINOR.PATCH`)
	require.Error(t, teamsapp.Write(io.Discard, teamsapp.Options{}))
}
