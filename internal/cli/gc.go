package cli

import (
	"runtime/debug"
)

// The collector's targets for the long-running commands (run, hub),
// unless GOGC sets one. During the start the informer caches fill from
// the initial lists, and each decoded object is garbage as soon as its
// trimmed copy is cached: a low target then collects again and again a
// heap that is still growing (at 50k pods, 40% of the start's CPU went to
// the collector at 50). Once ready, most of the heap is the caches, which
// live as long as the process: the heap may grow by half of what the last
// collection kept before the next one, not by all of it (Go's default,
// 100), which holds memory near them at little CPU cost
// (docs/performance.md). GOMEMLIMIT bounds both.
const (
	startGCPercent  = 200
	steadyGCPercent = 50
)

// startGC sets startGCPercent unless lookup finds GOGC, and returns what
// settles the collector once the start is over: steadyGCPercent, and the
// start's garbage collected and its memory handed back to the system.
// With GOGC set it changes nothing and what it returns does nothing.
func startGC(lookup func(string) (string, bool)) (settle func()) {
	if _, set := lookup("GOGC"); set {
		return func() {}
	}
	debug.SetGCPercent(startGCPercent)
	return func() {
		debug.SetGCPercent(steadyGCPercent)
		debug.FreeOSMemory()
	}
}
