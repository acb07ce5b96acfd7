// Package endpoint aims discordgo at another server than discord.com: a
// proxy, or a test server. discordgo keeps its endpoints in package
// variables, so this is process-wide: call it before opening any session,
// and never while sessions to different servers are in use.
package endpoint

import "github.com/bwmarrin/discordgo"

// Point makes every discordgo endpoint variable derive from base (a URL
// without a trailing slash): the API under base/api/v<version>/, the CDN
// under base/cdn/ and the status page under base/status/api/v2/. The
// function-valued endpoints read these variables on each call, so they
// follow. Pointing them where they already point writes nothing, so a
// reload that keeps the same server does not race with sessions in use.
func Point(base string) {
	if discordgo.EndpointDiscord == base+"/" {
		return
	}
	Set(base+"/status/api/v2/", base+"/", base+"/cdn/")
}

// Set reassigns every string endpoint variable of discordgo's endpoints.go,
// derived from the status page, Discord and CDN URLs (discordgo's
// EndpointStatus, EndpointDiscord and EndpointCDN) as discordgo derives
// them. Setting the values these three held puts every variable back.
func Set(status, discord, cdn string) {
	discordgo.EndpointStatus = status
	discordgo.EndpointSm = discordgo.EndpointStatus + "scheduled-maintenances/"
	discordgo.EndpointSmActive = discordgo.EndpointSm + "active.json"
	discordgo.EndpointSmUpcoming = discordgo.EndpointSm + "upcoming.json"

	discordgo.EndpointDiscord = discord
	discordgo.EndpointAPI = discordgo.EndpointDiscord + "api/v" + discordgo.APIVersion + "/"
	discordgo.EndpointGuilds = discordgo.EndpointAPI + "guilds/"
	discordgo.EndpointChannels = discordgo.EndpointAPI + "channels/"
	discordgo.EndpointUsers = discordgo.EndpointAPI + "users/"
	discordgo.EndpointGateway = discordgo.EndpointAPI + "gateway"
	discordgo.EndpointGatewayBot = discordgo.EndpointGateway + "/bot"
	discordgo.EndpointWebhooks = discordgo.EndpointAPI + "webhooks/"
	discordgo.EndpointStickers = discordgo.EndpointAPI + "stickers/"
	discordgo.EndpointStageInstances = discordgo.EndpointAPI + "stage-instances"
	discordgo.EndpointSKUs = discordgo.EndpointAPI + "skus"

	discordgo.EndpointCDN = cdn
	discordgo.EndpointCDNAttachments = discordgo.EndpointCDN + "attachments/"
	discordgo.EndpointCDNAvatars = discordgo.EndpointCDN + "avatars/"
	discordgo.EndpointCDNIcons = discordgo.EndpointCDN + "icons/"
	discordgo.EndpointCDNSplashes = discordgo.EndpointCDN + "splashes/"
	discordgo.EndpointCDNChannelIcons = discordgo.EndpointCDN + "channel-icons/"
	discordgo.EndpointCDNBanners = discordgo.EndpointCDN + "banners/"
	discordgo.EndpointCDNGuilds = discordgo.EndpointCDN + "guilds/"
	discordgo.EndpointCDNRoleIcons = discordgo.EndpointCDN + "role-icons/"

	// discordgo builds these two with a doubled slash; kept as it does.
	discordgo.EndpointVoice = discordgo.EndpointAPI + "/voice/"
	discordgo.EndpointVoiceRegions = discordgo.EndpointVoice + "regions"
	discordgo.EndpointNitroStickersPacks = discordgo.EndpointAPI + "/sticker-packs"

	discordgo.EndpointGuildCreate = discordgo.EndpointAPI + "guilds"
	discordgo.EndpointApplications = discordgo.EndpointAPI + "applications"

	discordgo.EndpointOAuth2 = discordgo.EndpointAPI + "oauth2/"
	discordgo.EndpointOAuth2Applications = discordgo.EndpointOAuth2 + "applications"
	// Deprecated aliases, copied at init rather than derived at call time.
	discordgo.EndpointOauth2 = discordgo.EndpointOAuth2
	discordgo.EndpointOauth2Applications = discordgo.EndpointOAuth2Applications
}
