// Package buildinfo reports the agent's version.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X github.com/kubechat/kubechat/internal/buildinfo.Version=v1.2.3".
var Version = ""

// Info describes the running binary.
type Info struct {
	// Version is the stamped version, else the module version, else
	// "devel-<revision>" or "devel".
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, when the Go
	// toolchain recorded it.
	Revision string `json:"revision,omitempty"`
	// RevisionTime is that commit's time (RFC 3339).
	RevisionTime string `json:"revisionTime,omitempty"`
	// Modified reports uncommitted changes in the build's working tree.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns what the binary knows about its build.
func Get() Info {
	info := Info{GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		info.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.RevisionTime = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	switch {
	case Version != "":
		info.Version = Version
	case ok && bi.Main.Version != "" && bi.Main.Version != "(devel)":
		info.Version = bi.Main.Version
	case len(info.Revision) >= 12:
		info.Version = "devel-" + info.Revision[:12]
	default:
		info.Version = "devel"
	}
	return info
}

// String returns the version, falling back to the module version or VCS revision.
func String() string { return Get().Version }
