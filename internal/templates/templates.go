// Package templates is the template language of alert messages (config
// templates:): Go text/template over an event, with a small function set
// that reads nothing but its arguments: no file, environment, network or
// clock access. Templates are parsed when the config loads, so an error
// names the config's file and line and the template's own line.
package templates

import (
	"fmt"
	"strings"
	"text/template"
	"unicode/utf8"
)

// MaxOutput bounds what one template renders, in bytes; past it the output
// is cut at a character boundary and ends with "…".
const MaxOutput = 16 << 10

// funcs are the functions templates may call, besides text/template's
// own. Each is a pure function of its arguments.
var funcs = template.FuncMap{
	"lower":     strings.ToLower,
	"upper":     strings.ToUpper,
	"trim":      strings.TrimSpace,
	"replace":   func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	"contains":  func(sub, s string) bool { return strings.Contains(s, sub) },
	"hasPrefix": func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
	"hasSuffix": func(suffix, s string) bool { return strings.HasSuffix(s, suffix) },
	"join":      func(sep string, items []string) string { return strings.Join(items, sep) },
	"truncate":  truncate,
	"default": func(def string, v any) string {
		if s := fmt.Sprint(v); v != nil && s != "" {
			return s
		}
		return def
	},
}

// truncate cuts s to at most n characters, ending with "…" when cut.
func truncate(n int, s string) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// Funcs names the functions templates may call, for the docs and errors.
func Funcs() []string {
	return []string{"lower", "upper", "trim", "replace", "contains", "hasPrefix", "hasSuffix", "join", "truncate", "default"}
}

// Parse parses text as the template name. A missing map key renders as
// empty, never as "<no value>".
func Parse(name, text string) (*template.Template, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, errorAt(name, err)
	}
	return t, nil
}

// errorAt rewrites text/template's "template: NAME:LINE: message" (or
// "NAME:LINE:COL") as "template line LINE: message".
func errorAt(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "template: ")
	if rest, ok := strings.CutPrefix(msg, name+":"); ok {
		return fmt.Errorf("template line %s", rest)
	}
	return fmt.Errorf("%s", msg)
}

// Execute renders t over data, capped at MaxOutput.
func Execute(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", errorAt(t.Name(), err)
	}
	s := b.String()
	if len(s) > MaxOutput {
		cut := MaxOutput
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s, nil
}
