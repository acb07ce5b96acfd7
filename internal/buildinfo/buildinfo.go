// Package buildinfo reports the agent's version.
package buildinfo

import "runtime/debug"

// Version is set at build time with -ldflags "-X github.com/kubechat/kubechat/internal/buildinfo.Version=v1.2.3".
var Version = ""

// String returns the version, falling back to the module version or VCS revision.
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
