// Package platforms is the registry of chat platforms: the only list of
// platform types. Adding a platform means one package under internal/chat
// and one line here.
package platforms

import (
	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/discord"
	"github.com/kubechat/kubechat/internal/chat/logsink"
	"github.com/kubechat/kubechat/internal/chat/mattermost"
	"github.com/kubechat/kubechat/internal/chat/slack"
	"github.com/kubechat/kubechat/internal/chat/teams"
	"github.com/kubechat/kubechat/internal/chat/webchat"
	"github.com/kubechat/kubechat/internal/chat/webhook"
)

// Factories maps a platform type, as written in config, to its factory.
var Factories = map[string]chat.Factory{
	"discord":    discord.New,
	"log":        logsink.New,
	"mattermost": mattermost.New,
	"slack":      slack.New,
	"teams":      teams.New,
	"webchat":    webchat.New,
	"webhook":    webhook.New,
}
