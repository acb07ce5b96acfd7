package discord

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat/discord/discordtest"
)

// use is one thing the adapter does and what it needs for it.
type use struct {
	needle  string // found verbatim in the package's source
	perms   int64
	intents discordgo.Intent
}

// uses are what this package does that may need a permission in a channel
// or a gateway intent: a needle found in its source, and what it needs
// (https://discord.com/developers/docs/topics/permissions,
// https://discord.com/developers/docs/topics/gateway#gateway-intents).
var uses = []use{
	// Post and Upload send messages to a channel the bot must see.
	{"p.session.ChannelMessageSendComplex(", discordgo.PermissionViewChannel | discordgo.PermissionSendMessages, 0},
	// Post: alerts and replies are embeds, which need Embed Links.
	{"Embeds: embeds", discordgo.PermissionEmbedLinks, 0},
	// Upload: long output is attached as a file.
	{"Files: ", discordgo.PermissionAttachFiles, 0},
	// Post in a thread and Upload reply to the command's message.
	{"&discordgo.MessageReference{", discordgo.PermissionReadMessageHistory, 0},
	// Post with Replace edits the bot's own message: no permission.
	{"p.session.ChannelMessageEditComplex(", 0, 0},
	// interaction acknowledges a click with the interaction's own token.
	{"s.InteractionRespond(", 0, 0},
	// Listen: commands are mentions in channels the bot sees, and direct
	// messages, read with their text.
	{"*discordgo.MessageCreate)", discordgo.PermissionViewChannel,
		discordgo.IntentGuildMessages | discordgo.IntentDirectMessages | discordgo.IntentMessageContent},
	// Listen: clicks reach the bot without an intent.
	{"*discordgo.InteractionCreate)", 0, 0},
	// resolve and channel read the servers and their channels from the
	// gateway's state, which the Guilds intent fills.
	{"p.session.State.Guilds", 0, discordgo.IntentGuilds},
	{"s.State.Channel(", 0, discordgo.IntentGuilds},
	// Permalink reads a channel's guild over REST before the gateway has it.
	{"p.session.Channel(", discordgo.PermissionViewChannel, 0},
	// The gateway connection and its lifecycle events.
	{"p.session.AddHandler(", 0, 0},
	{"p.session.Open(", 0, 0},
	{"p.session.Close(", 0, 0},
	{"*discordgo.Connect)", 0, 0},
	{"*discordgo.Disconnect)", 0, 0},
	{"*discordgo.Ready)", 0, 0},
}

// permissionNames are Discord's names for the permissions, as the developer
// portal and docs/discord.md show them.
var permissionNames = map[int64]string{
	discordgo.PermissionViewChannel:           "View Channels",
	discordgo.PermissionSendMessages:          "Send Messages",
	discordgo.PermissionEmbedLinks:            "Embed Links",
	discordgo.PermissionAttachFiles:           "Attach Files",
	discordgo.PermissionReadMessageHistory:    "Read Message History",
	discordgo.PermissionSendMessagesInThreads: "Send Messages in Threads",
	discordgo.PermissionCreatePublicThreads:   "Create Public Threads",
	discordgo.PermissionManageMessages:        "Manage Messages",
	discordgo.PermissionAddReactions:          "Add Reactions",
}

// intentNames are Discord's names for the intents.
var intentNames = map[string]discordgo.Intent{
	"GUILDS": discordgo.IntentGuilds, "GUILD_MEMBERS": discordgo.IntentGuildMembers,
	"GUILD_MODERATION": discordgo.IntentGuildModeration, "GUILD_EXPRESSIONS": discordgo.IntentGuildEmojis,
	"GUILD_INTEGRATIONS": discordgo.IntentGuildIntegrations, "GUILD_WEBHOOKS": discordgo.IntentGuildWebhooks,
	"GUILD_INVITES": discordgo.IntentGuildInvites, "GUILD_VOICE_STATES": discordgo.IntentGuildVoiceStates,
	"GUILD_PRESENCES": discordgo.IntentGuildPresences, "GUILD_MESSAGES": discordgo.IntentGuildMessages,
	"GUILD_MESSAGE_REACTIONS": discordgo.IntentGuildMessageReactions, "GUILD_MESSAGE_TYPING": discordgo.IntentGuildMessageTyping,
	"DIRECT_MESSAGES": discordgo.IntentDirectMessages, "DIRECT_MESSAGE_REACTIONS": discordgo.IntentDirectMessageReactions,
	"DIRECT_MESSAGE_TYPING": discordgo.IntentDirectMessageTyping, "MESSAGE_CONTENT": discordgo.IntentMessageContent,
	"GUILD_SCHEDULED_EVENTS": discordgo.IntentGuildScheduledEvents,
}

// privilegedNames are the portal's switches for the privileged intents.
var privilegedNames = map[discordgo.Intent]string{
	discordgo.IntentGuildPresences: "Presence Intent",
	discordgo.IntentGuildMembers:   "Server Members Intent",
	discordgo.IntentMessageContent: "Message Content Intent",
}

func source(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var b strings.Builder
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			b.Write(data)
		}
	}
	return b.String()
}

// needs is what uses adds up to: the invite's permissions and the intents.
func needs() (perms int64, intents discordgo.Intent) {
	for _, u := range uses {
		perms |= u.perms
		intents |= u.intents
	}
	return perms, intents
}

// TestUsesFollowTheCode: every call on the discordgo session and every
// gateway event handled is in uses, and every entry of uses is still in
// the code; a new call fails here until uses says what it needs.
func TestUsesFollowTheCode(t *testing.T) {
	src := source(t)
	for _, u := range uses {
		require.Contains(t, src, u.needle, "uses lists %q, which the code no longer has", u.needle)
	}
	listed := func(needle string) bool {
		return slices.ContainsFunc(uses, func(u use) bool { return u.needle == needle })
	}
	for _, m := range regexp.MustCompile(`\b(p\.session|s)\.([A-Z]\w*)\(`).FindAllStringSubmatch(src, -1) {
		require.True(t, listed(m[0]), "the code calls %s, which uses does not list: add what it needs", m[0])
	}
	for _, m := range regexp.MustCompile(`\w+ \*discordgo\.([A-Z]\w*)\) \{`).FindAllStringSubmatch(src, -1) {
		require.True(t, listed("*discordgo."+m[1]+")"), "Listen handles %s, which uses does not list", m[1])
	}
	_, intents := needs()
	require.Equal(t, intents, Intents, "Intents must be what the code needs")
	srv := discordtest.New()
	t.Cleanup(srv.Close)
	require.Equal(t, Intents, newPlatform(t, srv).(*platform).session.Identify.Intents, "the session identifies with Intents")
}

// TestInviteURLAndIntentsInTheGuide: the invite URL in docs/discord.md and
// configs/discord.yaml carries the permissions integer uses adds up to, the
// guide's table lists exactly those permissions, and it names the intents
// the adapter identifies with and the privileged ones to switch on.
func TestInviteURLAndIntentsInTheGuide(t *testing.T) {
	perms, _ := needs()
	require.Equal(t, int64(117760), perms, "the permissions changed: update docs/discord.md and configs/discord.yaml")
	want := "https://discord.com/oauth2/authorize?client_id=<APP_ID>&scope=bot&permissions=" + strconv.FormatInt(perms, 10)
	url := regexp.MustCompile(`https://discord\.com/\S*oauth2/authorize\S*`)
	docs := map[string]string{}
	for _, f := range []string{"docs/discord.md", "configs/discord.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", f))
		require.NoError(t, err)
		docs[f] = string(data)
		found := url.FindAllString(string(data), -1)
		require.NotEmpty(t, found, "%s has no invite URL", f)
		for _, u := range found {
			require.Equal(t, want, u, f)
		}
	}
	guide := docs["docs/discord.md"]

	// The table: | Permission | Value | Why |, one row per permission.
	table := map[int64]string{}
	for _, m := range regexp.MustCompile(`(?m)^\| ([A-Z][A-Za-z ]+) \| (\d+) \|`).FindAllStringSubmatch(guide, -1) {
		v, err := strconv.ParseInt(m[2], 10, 64)
		require.NoError(t, err)
		table[v] = m[1]
	}
	var sum int64
	for v, name := range table {
		require.Equal(t, permissionNames[v], name, "the guide's row for %d", v)
		sum |= v
	}
	require.Equal(t, perms, sum, "the guide's table must list exactly the permissions in the URL")

	m := regexp.MustCompile("gateway intents\\s+((?:`[A-Z_]+`(?:,\\s+|\\s+and\\s+)?)+)\\s+\\((\\d+)\\)").FindStringSubmatch(guide)
	require.NotNil(t, m, "the guide names no gateway intents")
	var listed discordgo.Intent
	for _, n := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(m[1], -1) {
		i, ok := intentNames[n[1]]
		require.True(t, ok, "unknown intent %s", n[1])
		listed |= i
	}
	require.Equal(t, Intents, listed, "the intents the guide lists")
	require.Equal(t, strconv.Itoa(int(Intents)), m[2])

	var privileged []string
	for bit := discordgo.Intent(1); bit != 0 && bit <= Intents; bit <<= 1 {
		if Intents&bit != 0 && discordgo.IntentsAllWithoutPrivileged&bit == 0 {
			require.Contains(t, privilegedNames, bit)
			privileged = append(privileged, privilegedNames[bit])
		}
	}
	switchedOn := map[string]bool{}
	for _, s := range regexp.MustCompile(`\*\*([A-Za-z ]+ Intent)\*\*`).FindAllStringSubmatch(guide, -1) {
		switchedOn[s[1]] = true
	}
	require.ElementsMatch(t, privileged, slices.Collect(maps.Keys(switchedOn)), "the guide switches on exactly the privileged intents the agent asks for")
}
