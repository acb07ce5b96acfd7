// Package logging builds the agent's slog logger and routes klog (client-go's
// logger) into it, so that every line has one format.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"k8s.io/klog/v2"
)

// New returns a logger writing format ("json" or "text") at level to w, and
// makes klog write through it.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: known levels are debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: known formats are json, text", format)
	}
	log := slog.New(h)
	klog.SetSlogLogger(log.With("logger", "klog"))
	return log, nil
}
