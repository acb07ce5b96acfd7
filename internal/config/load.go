package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxFileBytes bounds one config file.
const MaxFileBytes = 4 << 20

// Known lists the registered type names that Validate checks references
// against. The registries live above config, so the caller passes them in.
type Known struct {
	PlatformTypes []string
	ExecutorTypes []string
	// ClusterFreeTypes are the executor types whose commands never reach
	// the cluster (executor.ClusterFree): a channel bound only to such
	// executors needs no identity.
	ClusterFreeTypes []string
}

// File is one named config document.
type File struct {
	Name string
	Data []byte
}

// Load reads the files in order, merges them, decodes strictly, applies
// defaults and validates. The error joins every problem found.
func Load(known Known, paths ...string) (*Config, error) {
	if len(paths) == 0 {
		return nil, errors.New("load config: no file given")
	}
	files := make([]File, 0, len(paths))
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load config: %w", err)
		}
		if st.Size() > MaxFileBytes {
			return nil, fmt.Errorf("load config %s: file is %d bytes, over the %d byte limit", p, st.Size(), MaxFileBytes)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("load config: %w", err)
		}
		files = append(files, File{Name: p, Data: b})
	}
	return Parse(known, files...)
}

// Parse is Load for documents already in memory.
func Parse(known Known, files ...File) (*Config, error) {
	d := newDocument()
	var root *yaml.Node
	for _, f := range files {
		n, err := parseFile(f)
		if err != nil {
			return nil, err
		}
		if n.Kind == 0 {
			continue // empty file
		}
		d.mark(n, f.Name)
		top := n.Content[0]
		if top.Kind != yaml.MappingNode && !isNull(top) {
			return nil, d.errorf(top, "", "the config must be a mapping, got %s", kindName(top))
		}
		if isNull(top) {
			continue
		}
		root = merge(root, top)
	}
	c := &Config{doc: d}
	for _, f := range files {
		c.Files = append(c.Files, f.Name)
	}
	if root == nil {
		return nil, fmt.Errorf("%s: the config is empty", strings.Join(c.Files, ", "))
	}
	if err := d.decode(root, reflect.ValueOf(c).Elem(), ""); err != nil {
		return nil, err
	}
	c.withDefaults()
	if err := c.validate(known); err != nil {
		return nil, err
	}
	return c, nil
}

// parseFile parses the one YAML document of f. A YAML decoder reads the
// first document of a stream and ignores the rest, so a second document
// (after a "---" line) would be silently dropped: it is refused instead,
// unless it is empty (a trailing "---").
func parseFile(f File) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil && !errors.Is(err, io.EOF) {
		return nil, parseError(f.Name, err)
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		switch {
		case errors.Is(err, io.EOF):
			return &first, nil
		case err != nil:
			return nil, parseError(f.Name, err)
		case len(next.Content) > 0 && !isNull(next.Content[0]):
			return nil, &Error{File: f.Name, Line: next.Line,
				Msg: "a second YAML document starts here, and it would be ignored: a config file holds one document (to merge several, give several files)"}
		}
	}
}

// parseError turns yaml.v3's "yaml: line 3: did not find expected key" into "file:3: ...".
func parseError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, rest, _ := strings.Cut(msg, ": ")
		return &Error{File: file, Line: line, Msg: rest}
	}
	return &Error{File: file, Msg: yamlMessage(err)}
}

// Errors splits a Load error into its positioned problems.
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *Error
		if errors.As(err, &e) {
			out = append(out, e)
		}
	}
	walk(err)
	return out
}

// Redacted returns the merged config as YAML with every secret shown as "***".
func (c *Config) Redacted() ([]byte, error) {
	return yaml.Marshal(redactedView(c))
}

func redactedView(c *Config) any {
	type view Config // drops methods, keeps yaml tags
	v := view(*c)
	v.Platforms = make([]Platform, len(c.Platforms))
	for i, p := range c.Platforms {
		p.Settings = p.Settings.redacted()
		v.Platforms[i] = p
	}
	v.Executors = make([]Executor, len(c.Executors))
	for i, e := range c.Executors {
		e.Settings = e.Settings.redacted()
		v.Executors[i] = e
	}
	return v
}

// redacted copies the settings tree with every scalar that is or may hold a
// secret replaced: secret references, and keys that name credentials.
func (r Raw) redacted() Raw {
	if r.node == nil {
		return r
	}
	return Raw{node: redactNode(r.node, false), doc: r.doc, path: r.path}
}

var secretishKeys = []string{"token", "secret", "password", "key", "credential", "fromenv", "fromfile", "webhook", "url"}

func redactNode(n *yaml.Node, secretish bool) *yaml.Node {
	c := *n
	c.Content = nil
	if n.Kind == yaml.ScalarNode {
		if secretish || envRef.MatchString(n.Value) {
			c.Value, c.Tag, c.Style = Redacted, "!!str", 0
		}
		return &c
	}
	for i, ch := range n.Content {
		s := secretish
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			s = false // keys stay readable
		}
		if n.Kind == yaml.MappingNode && i%2 == 1 {
			k := strings.ToLower(n.Content[i-1].Value)
			for _, w := range secretishKeys {
				s = s || strings.Contains(k, w)
			}
		}
		c.Content = append(c.Content, redactNode(ch, s))
	}
	return &c
}

// Errorf returns a problem with c that its user found outside this package
// (such as a reload that changes a field only a restart applies),
// positioned as Load positions its own: "file:line: path: message".
func (c *Config) Errorf(path, format string, args ...any) error {
	if c.doc == nil {
		return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	return c.doc.at(path, format, args...)
}
