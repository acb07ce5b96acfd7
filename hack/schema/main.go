// Command schema generates the JSON Schema of kubechat's config from the
// Go types that Load decodes it into, so that editors and Helm refuse what
// Load refuses without a second, hand-kept description of the config:
//
//   - configs/kubechat.schema.json, the schema of a config file, which
//     every example names in its "# yaml-language-server: $schema=" line;
//   - the config property of helm/kubechat/values.schema.json, the chart's
//     values schema, whose other properties are the chart's own.
//
// Property names are the yaml tags, descriptions are the Go doc comments,
// and every object refuses unknown keys, as strict decoding does. The
// settings block of a platform or an executor is checked against the
// Settings struct its registry entry names, chosen by the entry's type.
//
// Run it from anywhere in the module with "go generate ./configs"; a test
// fails when a committed file differs from what it generates.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/kubechat/kubechat/internal/chat/platforms"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/plugins"
)

const (
	module = "github.com/kubechat/kubechat"
	// ConfigFile and ChartFile are the generated files, relative to the
	// module root.
	configFile = "configs/kubechat.schema.json"
	chartFile  = "helm/kubechat/values.schema.json"
	draft07    = "http://json-schema.org/draft-07/schema#"
	// chartPrefix names the config's definitions in the chart's schema,
	// apart from the chart's own.
	chartPrefix = "config."
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "schema: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return fmt.Errorf("enter module root: %w", err)
	}
	files, err := generate()
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(name, files[name], 0o644); err != nil {
			return fmt.Errorf("write schema: %w", err)
		}
	}
	return nil
}

// moduleRoot is the nearest directory up from the working directory that
// holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// generate returns the contents of both generated files by their paths.
// The working directory must be the module root: the descriptions come
// from the Go sources there, and the chart's own values schema is read
// from there.
func generate() (map[string][]byte, error) {
	schema, err := configSchema()
	if err != nil {
		return nil, err
	}
	configJSON, err := encode(schema)
	if err != nil {
		return nil, err
	}
	old, err := os.ReadFile(chartFile)
	if err != nil {
		return nil, fmt.Errorf("read chart schema: %w", err)
	}
	chart, err := chartSchema(old, schema)
	if err != nil {
		return nil, err
	}
	chartJSON, err := encode(chart)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{configFile: configJSON, chartFile: chartJSON}, nil
}

// configSchema reflects config.Config and every registered Settings
// struct into one draft-07 schema, as a JSON object.
func configSchema() (map[string]any, error) {
	r := &jsonschema.Reflector{
		FieldNameTag: "yaml",
		// Only what a jsonschema:"required" tag marks: the yaml tags have
		// no omitempty to tell, and a file merged over another may leave
		// out what the other sets.
		RequiredFromJSONSchemaTags: true,
		Anonymous:                  true,
		ExpandedStruct:             true,
		Namer:                      typeName,
		Mapper:                     specialType,
	}
	types := []reflect.Type{reflect.TypeFor[config.Config]()}
	platformTypes := map[string]reflect.Type{}
	for name, t := range platforms.Factories {
		platformTypes[name] = reflect.TypeOf(t.Settings)
		types = append(types, platformTypes[name])
	}
	executorTypes := map[string]reflect.Type{}
	for name, t := range plugins.Executors {
		executorTypes[name] = reflect.TypeOf(t.Settings)
		types = append(types, executorTypes[name])
	}
	comments := &jsonschema.Reflector{}
	for _, dir := range sourceDirs(types) {
		if err := comments.AddGoComments(module, dir); err != nil {
			return nil, fmt.Errorf("read doc comments of %s: %w", dir, err)
		}
	}
	r.LookupComment = func(t reflect.Type, field string) string {
		return description(comments.CommentMap, t, field)
	}

	root := r.Reflect(&config.Config{})
	root.Version = draft07
	root.Title = "kubechat configuration"
	root.Description = "The configuration of a kubechat agent (kubechat run --config, kubechat check-config). " +
		"kubechat check-config checks everything this schema does and more, naming each problem's file, line and path."
	defs := root.Definitions
	defs["Secret"] = secretSchema()
	defs["Duration"] = &jsonschema.Schema{
		Type:        "string",
		Pattern:     config.DurationPattern,
		Description: "A duration as Go writes it: 30s, 2m, 1h30m, 500ms.",
	}
	// Each settings struct, and what it refers to, as a definition of its own.
	r.ExpandedStruct = false
	for _, t := range types[1:] {
		s := r.ReflectFromType(t)
		for name, def := range s.Definitions {
			if err := addDefinition(defs, name, def); err != nil {
				return nil, err
			}
		}
	}
	if err := discriminate(defs["Platform"], "platform", platformTypes); err != nil {
		return nil, err
	}
	if err := discriminate(defs["Executor"], "executor", executorTypes); err != nil {
		return nil, err
	}
	return draft07JSON(root)
}

// typeName names the definition of t: config's types by their own name,
// others qualified by their package ("slack.Settings").
func typeName(t reflect.Type) string {
	if t.Name() == "" || t.PkgPath() == reflect.TypeFor[config.Config]().PkgPath() {
		return t.Name()
	}
	return filepath.Base(t.PkgPath()) + "." + t.Name()
}

// specialType maps the config types that decode themselves: a Secret and
// a Duration refer to their definitions, and a settings block is an
// object that the entry's type narrows (see discriminate). Each call
// returns a new schema, as the reflector sets each field's description on it.
func specialType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[config.Secret]():
		return &jsonschema.Schema{Ref: "#/$defs/Secret"}
	case reflect.TypeFor[config.Duration]():
		return &jsonschema.Schema{Ref: "#/$defs/Duration"}
	case reflect.TypeFor[config.Raw]():
		return &jsonschema.Schema{Type: "object"}
	}
	return nil
}

// secretSchema follows config.Secret's UnmarshalYAML: "${NAME}", or a
// mapping with exactly one of fromEnv and fromFile.
func secretSchema() *jsonschema.Schema {
	ref := func(key, what string) *jsonschema.Schema {
		props := jsonschema.NewProperties()
		one := uint64(1)
		props.Set(key, &jsonschema.Schema{Type: "string", MinLength: &one, Description: what})
		return &jsonschema.Schema{Type: "object", Properties: props, Required: []string{key}, AdditionalProperties: jsonschema.FalseSchema}
	}
	return &jsonschema.Schema{
		Description: `A credential, never written inline: "${ENV_VAR}", {fromEnv: NAME} or {fromFile: /path}.`,
		OneOf: []*jsonschema.Schema{
			{Type: "string", Pattern: config.SecretEnvPattern, Description: "The value of an environment variable."},
			ref("fromEnv", "The environment variable that holds the value."),
			ref("fromFile", "The file that holds the value (a trailing newline is dropped)."),
		},
	}
}

// description is the doc comment of t, or of its field, as a schema
// description: a field's comment speaks of the field by its yaml name,
// and lines are joined into paragraphs.
func description(comments map[string]string, t reflect.Type, field string) string {
	key := t.PkgPath() + "." + t.Name()
	if field != "" {
		key += "." + field
	}
	text := comments[key]
	if field == "" || t.Kind() != reflect.Struct {
		return paragraphs(text)
	}
	if f, ok := t.FieldByName(field); ok {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if rest, ok := strings.CutPrefix(text, field+" "); ok && name != "" {
			text = name + " " + rest
		}
	}
	return paragraphs(text)
}

// paragraphs joins the lines of each paragraph of a comment.
func paragraphs(text string) string {
	ps := strings.Split(strings.TrimSpace(text), "\n\n")
	for i, p := range ps {
		ps[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.Join(ps, "\n\n")
}

// addDefinition adds def as name, unless a different definition has it.
func addDefinition(defs jsonschema.Definitions, name string, def *jsonschema.Schema) error {
	if old, ok := defs[name]; ok {
		a, errA := json.Marshal(old)
		b, errB := json.Marshal(def)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			return fmt.Errorf("two types are named %s in the schema", name)
		}
		return nil
	}
	defs[name] = def
	return nil
}

// discriminate narrows the settings of an entry (a Platform or an
// Executor) by its type: the type must be a registered one, and for each,
// settings must match that type's Settings struct.
func discriminate(entry *jsonschema.Schema, what string, settings map[string]reflect.Type) error {
	if entry == nil {
		return fmt.Errorf("no %s definition to narrow", what)
	}
	typ, ok := entry.Properties.Get("type")
	if !ok {
		return fmt.Errorf("the %s definition has no type property", what)
	}
	names := slices.Sorted(maps.Keys(settings))
	for _, name := range names {
		typ.Enum = append(typ.Enum, name)
		props := jsonschema.NewProperties()
		props.Set("type", &jsonschema.Schema{Const: name})
		then := jsonschema.NewProperties()
		then.Set("settings", &jsonschema.Schema{Ref: "#/$defs/" + typeName(settings[name])})
		entry.AllOf = append(entry.AllOf, &jsonschema.Schema{
			If:   &jsonschema.Schema{Properties: props, Required: []string{"type"}},
			Then: &jsonschema.Schema{Properties: then},
		})
	}
	return nil
}

// sourceDirs are the module's directories that declare types, relative
// to the module root, for their doc comments.
func sourceDirs(types []reflect.Type) []string {
	var dirs []string
	for _, t := range types {
		dir, ok := strings.CutPrefix(t.PkgPath(), module+"/")
		if ok && !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	slices.Sort(dirs)
	return dirs
}

// draft07JSON turns the reflected (draft 2020-12) schema into draft-07,
// which Helm and the YAML language server both read: definitions under
// "definitions" rather than "$defs".
func draft07JSON(root *jsonschema.Schema) (map[string]any, error) {
	b, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	m["definitions"] = m["$defs"]
	delete(m, "$defs")
	rewriteRefs(m, "#/$defs/", "#/definitions/")
	return m, nil
}

// rewriteRefs replaces the prefix from with to in every $ref under v.
func rewriteRefs(v any, from, to string) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if s, ok := c.(string); ok && k == "$ref" {
				if rest, ok := strings.CutPrefix(s, from); ok {
					v[k] = to + rest
				}
				continue
			}
			rewriteRefs(c, from, to)
		}
	case []any:
		for _, c := range v {
			rewriteRefs(c, from, to)
		}
	}
}

// chartSchema returns the chart's values schema old with its config
// property, and the definitions that property uses, replaced by schema.
// The chart's own properties and definitions stay as they are.
func chartSchema(old []byte, schema map[string]any) (map[string]any, error) {
	var chart map[string]any
	if err := json.Unmarshal(old, &chart); err != nil {
		return nil, fmt.Errorf("read chart schema %s: %w", chartFile, err)
	}
	props, ok := chart["properties"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("chart schema %s has no properties", chartFile)
	}
	defs, _ := chart["definitions"].(map[string]any)
	if defs == nil {
		defs = map[string]any{}
	}
	for name := range defs {
		if strings.HasPrefix(name, chartPrefix) {
			delete(defs, name)
		}
	}
	// A deep copy, so that configs/kubechat.schema.json keeps its names.
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("copy schema: %w", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("copy schema: %w", err)
	}
	rewriteRefs(cfg, "#/definitions/", "#/definitions/"+chartPrefix)
	for name, def := range cfg["definitions"].(map[string]any) {
		defs[chartPrefix+name] = def
	}
	delete(cfg, "definitions")
	delete(cfg, "$schema")
	delete(cfg, "title")
	cfg["description"] = "The agent's configuration, as in configs/kubechat.yaml (the chart sets cluster.namespace, http.listen and, with 2 or more replicas, ha.leaderElection). " +
		"Generated from the Go config types by hack/schema: edit those, not this."
	props["config"] = cfg
	chart["definitions"] = defs
	return chart, nil
}

// encode writes v as indented JSON, keys sorted, without HTML escapes.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	return buf.Bytes(), nil
}
