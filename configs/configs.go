// Package configs holds the example configurations. Each file is
// documentation, a test fixture (every file must pass check-config), and
// default.yaml is the config "kubechat run" embeds, demo.yaml the one
// "make run" embeds. The subdirectories hold the platforms' own setup files
// (the Slack app manifests, the Teams app manifest template), each checked
// by its platform's tests.
package configs

import "embed"

// The config schema (kubechat.schema.json, and the config property of the
// chart's values schema) is generated from the Go config types.
//go:generate go run ../hack/schema

// Default is the embedded default config: alerts go to the agent's log.
//
//go:embed default.yaml
var Default []byte

// Demo is the config of "make run": the built-in web chat on loopback.
//
//go:embed demo.yaml
var Demo []byte

// TeamsManifest is the Teams app manifest template that
// internal/chat/teams/teamsapp fills in and packs.
//
//go:embed teams/manifest.json
var TeamsManifest []byte

// Examples holds every example file.
//
//go:embed *.yaml
var Examples embed.FS

// ExampleEnv holds placeholder values for the environment variables the
// examples reference for their secrets, so that tests can check them
// offline. None is a real credential.
var ExampleEnv = map[string]string{
	"SLACK_BOT_TOKEN":       "xoxb-example",
	"SLACK_APP_TOKEN":       "xapp-example",
	"TEAMS_APP_PASSWORD":    "example-client-secret",
	"DISCORD_BOT_TOKEN":     "example-discord-token",
	"MATTERMOST_BOT_TOKEN":  "example-mattermost-token",
	"WEBCHAT_TOKEN":         "example-webchat-token-0123456789",
	"KUBECHAT_DEMO_TOKEN":   "example-demo-token-0123456789",
	"ALERTMANAGER_TOKEN":    "example-alertmanager-token",
	"GITHUB_TOKEN":          "ghp_example",
	"GITHUB_WEBHOOK_SECRET": "example-webhook-secret",
	"KUBECHAT_BUTTON_KEY":   "example-button-key-0123456789abcdef",
	"OPENAI_API_KEY":        "sk-example",
	"PAGERDUTY_OPS_KEY":     "example-pagerduty-routing-key-0001",
	"PAGERDUTY_DB_KEY":      "example-pagerduty-routing-key-0002",
	"ELASTICSEARCH_API_KEY": "ZXhhbXBsZS1pZDpleGFtcGxlLWtleQ==",
	"OPENSEARCH_PASSWORD":   "example-opensearch-password",
}
