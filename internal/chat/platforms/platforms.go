// Package platforms is the registry of chat platforms: the only list of
// platform types. Adding a platform means one package under internal/chat
// and one line here.
package platforms

import (
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/discord"
	"github.com/kubechat/kubechat/internal/chat/logsink"
	"github.com/kubechat/kubechat/internal/chat/mattermost"
	"github.com/kubechat/kubechat/internal/chat/pagerduty"
	"github.com/kubechat/kubechat/internal/chat/searchsink"
	"github.com/kubechat/kubechat/internal/chat/slack"
	"github.com/kubechat/kubechat/internal/chat/teams"
	"github.com/kubechat/kubechat/internal/chat/webchat"
	"github.com/kubechat/kubechat/internal/chat/webhook"
	"github.com/kubechat/kubechat/internal/fleet/agent"
)

// Type is what the registry knows of one platform type: the factory that
// builds an instance, and a zero value of the Settings struct that the
// factory decodes the instance's settings block into. The config schema
// is generated from Settings, so the two cannot drift apart.
type Type struct {
	New      chat.Factory
	Settings any
}

// Factories maps a platform type, as written in config, to its factory
// and settings.
var Factories = map[string]Type{
	"discord":       {discord.New, discord.Settings{}},
	"elasticsearch": {searchsink.NewElasticsearch, searchsink.Settings{}},
	"log":           {logsink.New, logsink.Settings{}},
	"mattermost":    {mattermost.New, mattermost.Settings{}},
	"opensearch":    {searchsink.NewOpenSearch, searchsink.Settings{}},
	"pagerduty":     {pagerduty.New, pagerduty.Settings{}},
	"slack":         {slack.New, slack.Settings{}},
	"teams":         {teams.New, teams.Settings{}},
	"webchat":       {webchat.New, webchat.Settings{}},
	"webhook":       {webhook.New, webhook.Settings{}},
	// hub: an agent of a fleet reaches the chat platforms through the hub.
	"hub": {agent.New, agent.Settings{}},
}
