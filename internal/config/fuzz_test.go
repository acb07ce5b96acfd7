package config

import (
	"testing"
)

// FuzzParse proves that no input makes the loader panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("cluster: {name: x}\nplatforms: [{name: a, type: log, settings: {level: info}}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("cluster:\n  name: [1, {a: b}]\naliases: {k: null}\n"))
	f.Add([]byte("executors: [{type: kubectl, policy: {timeout: -1s, maxOutputBytes: x}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(known, File{Name: "fuzz.yaml", Data: data}, File{Name: "fuzz2.yaml", Data: data})
		if err == nil {
			if _, err := c.Redacted(); err != nil {
				t.Fatalf("redact a valid config: %v", err)
			}
			for _, p := range c.Platforms {
				var v map[string]any
				_ = DecodeStrict(p.Settings, &v)
			}
		}
	})
}
