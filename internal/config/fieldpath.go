package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// FieldPath is a parsed field path: map keys, and list indexes as ints.
type FieldPath []any

var pathElem = regexp.MustCompile(`^([A-Za-z0-9_-]+)((?:\[\d+\])*)$`)

// ParseFieldPath parses "spec.replicas" or ".spec.template.spec.containers[0].image".
func ParseFieldPath(s string) (FieldPath, error) {
	trimmed := strings.TrimPrefix(s, ".")
	if trimmed == "" {
		return nil, fmt.Errorf("field path %q is empty", s)
	}
	var p FieldPath
	for _, part := range strings.Split(trimmed, ".") {
		m := pathElem.FindStringSubmatch(part)
		if m == nil {
			return nil, fmt.Errorf("field path %q: %q is not a field name with optional [index]", s, part)
		}
		p = append(p, m[1])
		for _, idx := range regexp.MustCompile(`\d+`).FindAllString(m[2], -1) {
			n, _ := strconv.Atoi(idx)
			p = append(p, n)
		}
	}
	return p, nil
}

// String renders the path as written without a leading dot.
func (p FieldPath) String() string {
	var b strings.Builder
	for i, e := range p {
		switch v := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(v)
		}
	}
	return b.String()
}

// Get returns the value at p in an unstructured object, and whether it exists.
func (p FieldPath) Get(obj map[string]any) (any, bool) {
	var cur any = obj
	for _, e := range p {
		switch k := e.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			l, ok := cur.([]any)
			if !ok || k >= len(l) {
				return nil, false
			}
			cur = l[k]
		}
	}
	return cur, true
}
