// Command kubechat is the kubechat agent. See "kubechat help" and package
// internal/cli.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/kubechat/kubechat/internal/cli"
)

func main() {
	defaultGC(os.LookupEnv)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// gcPercent is the collector's target unless GOGC sets one: the heap
// grows by half of what the last collection kept before the next one
// runs, not by all of it (Go's default, 100). Most of the agent's heap is
// its informer caches, which live as long as it does, so this holds its
// memory near them at little CPU cost (docs/performance.md).
const gcPercent = 50

// defaultGC sets gcPercent unless the environment sets GOGC.
func defaultGC(lookup func(string) (string, bool)) {
	if _, set := lookup("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}

// run is the binary: the command line, cancelled by SIGINT and SIGTERM.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Run(ctx, args, stdout, stderr)
}
