package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted is how a Secret prints, logs and marshals.
const Redacted = "***"

// Secret is a credential read from the environment or a file. It never
// prints its value: String, GoString, slog and YAML/JSON marshalling all
// give "***". Call Reveal where the value is really needed.
//
// In YAML a Secret is written as "${ENV_VAR}", or as {fromEnv: NAME} or
// {fromFile: /path}. Inline literal values are refused, so that credentials
// never sit in a ConfigMap.
type Secret struct {
	value  string
	source string // "env FOO" or "file /x": safe to show
}

// SecretEnvPattern is the regular expression a Secret written as a string
// must match: a reference to one environment variable, "${NAME}". The
// config schema uses it too.
const SecretEnvPattern = `^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`

var envRef = regexp.MustCompile(SecretEnvPattern)

// NewSecret wraps a value obtained elsewhere (tests, generated tokens).
func NewSecret(value, source string) Secret { return Secret{value: value, source: source} }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return s.value }

// Source says where the value came from, without revealing it.
func (s Secret) Source() string { return s.source }

// IsZero reports whether no value is set.
func (s Secret) IsZero() bool { return s.value == "" }

func (s Secret) String() string   { return Redacted }
func (s Secret) GoString() string { return Redacted }

// LogValue keeps the value out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalYAML redacts the value.
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }

// MarshalJSON redacts the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// UnmarshalYAML resolves "${ENV}", {fromEnv: NAME} or {fromFile: PATH}.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		m := envRef.FindStringSubmatch(n.Value)
		if m == nil {
			return errors.New(`inline secret values are not allowed: write "${ENV_VAR}", {fromEnv: NAME} or {fromFile: /path}`)
		}
		return s.fromEnv(m[1])
	case yaml.MappingNode:
		var ref struct {
			FromEnv  string `yaml:"fromEnv"`
			FromFile string `yaml:"fromFile"`
		}
		dec := n.Decode(&ref)
		if dec != nil || len(n.Content) != 2 || (ref.FromEnv == "") == (ref.FromFile == "") {
			return errors.New("a secret needs exactly one of fromEnv or fromFile")
		}
		if ref.FromEnv != "" {
			return s.fromEnv(ref.FromEnv)
		}
		b, err := os.ReadFile(ref.FromFile)
		if err != nil {
			return fmt.Errorf("read secret file: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return fmt.Errorf("secret file %s is empty", ref.FromFile)
		}
		*s = Secret{value: v, source: "file " + ref.FromFile}
		return nil
	default:
		return errors.New(`expected a secret reference: "${ENV_VAR}", {fromEnv: NAME} or {fromFile: /path}`)
	}
}

func (s *Secret) fromEnv(name string) error {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return fmt.Errorf("environment variable %s is not set", name)
	}
	*s = Secret{value: v, source: "env " + name}
	return nil
}

// UnmarshalYAML parses "30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration like 30s, got %s", kindName(n))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
