// Package executor defines how commands run. The router parses a command,
// checks the channel's Policy, and calls Execute with the caller's identity;
// executors never check policy themselves.
//
// Who sets timeouts: the router sets the per-command deadline on ctx, and
// Execute must return when ctx ends. Request and Result are plain data, so
// executors could later run out of process without changing implementations.
package executor

import (
	"context"
	"errors"
	"log/slog"

	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/config"
)

// Executor runs one command for the router.
type Executor interface {
	// Name is the configured executor name, such as "kubectl".
	Name() string
	Execute(ctx context.Context, req Request) (Result, error)
}

// Request is one parsed command; Args is argv after the executor name, never a shell string.
type Request struct {
	Args      []string
	Namespace string
	Caller    Caller
}

// Caller is who asked, for policy, impersonation and audit.
type Caller struct {
	Platform string
	Channel  string
	UserID   string
	UserName string
}

// Result is what the router renders back into the channel.
type Result struct {
	Output    string
	Truncated bool
}

// Deps are what the app hands every executor factory.
type Deps struct {
	Log *slog.Logger
	// RESTConfig is the agent's own config; executors must impersonate
	// before they use it and never hand it on as is.
	RESTConfig *rest.Config
	Cluster    string
}

// Factory builds an executor from its config entry.
type Factory func(name string, settings config.Raw, d Deps) (Executor, error)

// Sentinel errors, checked with errors.Is.
var (
	// ErrDenied means policy or RBAC refused the command.
	ErrDenied = errors.New("denied")
	// ErrUnknown means no executor or built-in has that name.
	ErrUnknown = errors.New("unknown command")
)
