// Package configs holds the example configurations. Each file is
// documentation, a test fixture (every file must pass check-config), and
// default.yaml is the config "kubechat run" embeds.
package configs

import "embed"

// Default is the embedded default config: alerts go to the agent's log.
//
//go:embed default.yaml
var Default []byte

// Examples holds every example file.
//
//go:embed *.yaml
var Examples embed.FS
