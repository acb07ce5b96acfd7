package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one configuration problem, positioned at a file, a line and a field path.
type Error struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// position is where a field path was last set.
type position struct {
	file string
	line int
}

// document is the merged YAML tree with the origin of every node, so that
// errors found after merging and decoding still point at a file and line.
type document struct {
	origin map[*yaml.Node]string // node -> file it came from
	pos    map[string]position   // field path -> position
}

func newDocument() *document {
	return &document{origin: map[*yaml.Node]string{}, pos: map[string]position{}}
}

func (d *document) mark(n *yaml.Node, file string) {
	d.origin[n] = file
	for _, c := range n.Content {
		d.mark(c, file)
	}
}

func (d *document) errorf(n *yaml.Node, path, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.File, e.Line = d.origin[n], n.Line
	}
	return e
}

// at returns an error positioned at path, or at the nearest parent path that
// has a position (a defaulted field has none of its own).
func (d *document) at(path, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	for p := path; ; p = parentPath(p) {
		if pos, ok := d.pos[p]; ok {
			e.File, e.Line = pos.file, pos.line
			return e
		}
		if p == "" {
			return e
		}
	}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// merge merges src into dst as Helm merges values files: mappings merge key
// by key, anything else is replaced, and a null value removes the key.
func merge(dst, src *yaml.Node) *yaml.Node {
	if dst == nil || dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		return src
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		j := mappingIndex(dst, k.Value)
		switch {
		case j < 0 && isNull(v):
		case j < 0:
			dst.Content = append(dst.Content, k, v)
		case isNull(v):
			dst.Content = slices.Delete(dst.Content, j, j+2)
		default:
			dst.Content[j+1] = merge(dst.Content[j+1], v)
		}
	}
	return dst
}

func mappingIndex(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decode strictly decodes n into v, recording the position of every path and
// collecting every error instead of stopping at the first.
func (d *document) decode(n *yaml.Node, v reflect.Value, path string) error {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = position{d.origin[n], n.Line}
	if v.Kind() != reflect.Pointer && v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if isNull(n) {
			return nil
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return d.errorf(n, path, "%s", yamlMessage(err))
		}
		if r, ok := v.Addr().Interface().(*Raw); ok {
			r.doc, r.path = d, path
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		err := d.decode(n, p.Elem(), path)
		v.Set(p)
		return err
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return d.errorf(n, path, "expected a list, got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)))
		}
		v.Set(s)
		return errors.Join(errs...)
	case reflect.Map:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		}
		m := reflect.MakeMap(v.Type())
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			e := reflect.New(v.Type().Elem()).Elem()
			if err := d.decode(val, e, joinPath(path, k.Value)); err != nil {
				errs = append(errs, err)
				continue
			}
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		v.Set(m)
		return errors.Join(errs...)
	default:
		if n.Kind != yaml.ScalarNode {
			return d.errorf(n, path, "expected a %s, got %s", v.Kind(), kindName(n))
		}
		if v.Kind() == reflect.String && n.Tag != "!!str" && !isNull(n) {
			// "yes", 1 and 1.0 decode into strings silently; keep their text.
			v.SetString(n.Value)
			return nil
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return d.errorf(n, path, "expected a %s, got %q", v.Kind(), n.Value)
		}
		if k := v.Kind(); (k == reflect.Float32 || k == reflect.Float64) && (math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0)) {
			// YAML's .nan and .inf, or a number too large for the type:
			// no setting means that.
			return d.errorf(n, path, "expected a finite number, got %q", n.Value)
		}
		return nil
	}
}

func (d *document) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping, got %s", kindName(n))
	}
	fields := map[string]int{}
	var known []string
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		fields[name] = i
		known = append(known, name)
	}
	var errs []error
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		p := joinPath(path, k.Value)
		idx, ok := fields[k.Value]
		switch {
		case !ok:
			errs = append(errs, d.errorf(k, p, "unknown field %q (known: %s)", k.Value, strings.Join(known, ", ")))
		case seen[k.Value]:
			errs = append(errs, d.errorf(k, p, "field %q is set twice", k.Value))
		default:
			seen[k.Value] = true
			errs = append(errs, d.decode(val, v.Field(idx), p))
		}
	}
	return errors.Join(errs...)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
}

// yamlMessage strips yaml.v3's "yaml: unmarshal errors:\n  line N:" framing;
// our own Error carries the position.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			if _, after, ok := strings.Cut(m, ": "); ok && strings.HasPrefix(m, "line ") {
				m = after
			}
			msgs[i] = m
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// Raw is a settings block that only its owner (a platform or executor package)
// knows how to decode. Decode it with DecodeStrict so its errors keep their positions.
type Raw struct {
	node *yaml.Node
	doc  *document
	path string
}

// UnmarshalYAML keeps the node for a later DecodeStrict.
func (r *Raw) UnmarshalYAML(n *yaml.Node) error {
	r.node = n
	return nil
}

// MarshalYAML writes the settings back with secrets redacted, for "show config".
func (r Raw) MarshalYAML() (any, error) {
	if r.node == nil {
		return nil, nil
	}
	return r.node, nil
}

// IsZero reports whether the block was absent.
func (r Raw) IsZero() bool { return r.node == nil || isNull(r.node) }

// RawFromYAML parses text into a Raw block, for tests and for callers that
// build settings in code. Errors are reported against the name "settings".
func RawFromYAML(text string) (Raw, error) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		return Raw{}, fmt.Errorf("parse settings: %s", yamlMessage(err))
	}
	d := newDocument()
	d.mark(&n, "settings")
	root := &n
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == 0 {
		return Raw{}, nil
	}
	return Raw{node: root, doc: d, path: "settings"}, nil
}

// DecodeStrict decodes a settings block into v (a pointer to a struct): an
// unknown key is an error, and every error names its file, line and path.
func DecodeStrict(r Raw, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode settings: need a non-nil pointer, got %T", v)
	}
	if r.node == nil || isNull(r.node) {
		return nil
	}
	d := r.doc
	if d == nil {
		d = newDocument()
	}
	return d.decode(r.node, rv.Elem(), r.path)
}
