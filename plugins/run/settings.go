package run

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubechat/kubechat/internal/config"
)

// Settings configure the run executor.
type Settings struct {
	// Namespace is where template pods run (default: the namespace of the
	// template's or the caller's ServiceAccount, which it must equal).
	Namespace string     `yaml:"namespace"`
	Templates []Template `yaml:"templates"`
}

// Template is one pod a channel may run.
type Template struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Image       string `yaml:"image"`
	// ImagePullPolicy is IfNotPresent (default), Always or Never.
	ImagePullPolicy string `yaml:"imagePullPolicy"`
	// Command is the container's argv; "{{name}}" in an element is
	// replaced by the parameter's value.
	Command    []string            `yaml:"command"`
	Parameters []Parameter         `yaml:"parameters"`
	Env        map[string]string   `yaml:"env"`
	Resources  config.PodResources `yaml:"resources"`
	// Deadline is the pod's activeDeadlineSeconds (default: the policy's
	// timeout less 5s).
	Deadline config.Duration `yaml:"deadline"`
	// ServiceAccount ("namespace/name") the pod runs as (default: the
	// channel's or user's identity, which must then be a ServiceAccount).
	ServiceAccount string `yaml:"serviceAccount"`
}

// Parameter is one argument a template takes, as name=value.
type Parameter struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Required    bool   `yaml:"required"`
	Default     string `yaml:"default"`
	// Pattern is an anchored regular expression the value must match.
	Pattern string `yaml:"pattern"`
	// Enum lists the values allowed.
	Enum []string `yaml:"enum"`

	re *regexp.Regexp
}

var (
	nameRE        = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	paramNameRE   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,62}$`)
	placeholderRE = regexp.MustCompile(`\{\{\s*([^{}\s]*)\s*\}\}`)
)

func (s *Settings) check() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("settings.%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if s.Namespace != "" && len(validation.IsDNS1123Label(s.Namespace)) > 0 {
		add("namespace", "%q is not a namespace name", s.Namespace)
	}
	if len(s.Templates) == 0 {
		add("templates", "declare at least one template: only declared templates run")
	}
	seen := map[string]bool{}
	for i := range s.Templates {
		t := &s.Templates[i]
		path := fmt.Sprintf("templates[%d]", i)
		switch {
		case !nameRE.MatchString(t.Name):
			add(path+".name", "%q is not a valid name (lower case letters, digits and dashes)", t.Name)
		case seen[t.Name]:
			add(path+".name", "duplicate template %q", t.Name)
		}
		seen[t.Name] = true
		if t.Image == "" || strings.ContainsAny(t.Image, " \t\n") {
			add(path+".image", "%q is not an image reference", t.Image)
		}
		switch t.ImagePullPolicy {
		case "", "IfNotPresent", "Always", "Never":
		default:
			add(path+".imagePullPolicy", "unknown pull policy %q (known: IfNotPresent, Always, Never)", t.ImagePullPolicy)
		}
		if len(t.Command) == 0 || t.Command[0] == "" {
			add(path+".command", "is required: the argv the container runs")
		}
		if t.Deadline < 0 {
			add(path+".deadline", "must be positive, got %s", t.Deadline)
		}
		if t.ServiceAccount != "" {
			ns, sa, ok := strings.Cut(t.ServiceAccount, "/")
			if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(sa)) > 0 {
				add(path+".serviceAccount", "%q is not namespace/name", t.ServiceAccount)
			} else if s.Namespace != "" && ns != s.Namespace {
				add(path+".serviceAccount", "%q is not in namespace %q, where template pods run (settings.namespace)", t.ServiceAccount, s.Namespace)
			}
		}
		if err := config.CheckPodResources("settings."+path+".resources", t.Resources); err != nil {
			errs = append(errs, err)
		}
		for k := range t.Env {
			if len(validation.IsEnvVarName(k)) > 0 {
				add(path+".env", "%q is not an environment variable name", k)
			}
		}
		params := map[string]bool{}
		for j := range t.Parameters {
			p := &t.Parameters[j]
			ppath := fmt.Sprintf("%s.parameters[%d]", path, j)
			if !paramNameRE.MatchString(p.Name) {
				add(ppath+".name", "%q is not a valid parameter name (a letter, then letters, digits, _ and -)", p.Name)
			}
			if params[p.Name] {
				add(ppath+".name", "duplicate parameter %q", p.Name)
			}
			params[p.Name] = true
			if p.Pattern == "" && len(p.Enum) == 0 {
				add(ppath, "parameter %q needs a pattern or an enum: chat input is never passed on unchecked", p.Name)
			}
			if p.Pattern != "" {
				re, err := config.CompileAnchored(p.Pattern)
				if err != nil {
					add(ppath+".pattern", "%v", err)
				}
				p.re = re
			}
			if p.Required && p.Default != "" {
				add(ppath+".default", "a required parameter takes no default")
			}
			if p.Default != "" && (p.re != nil || len(p.Enum) > 0) {
				if err := p.check(p.Default); err != nil {
					add(ppath+".default", "%v", err)
				}
			}
		}
		for k, el := range t.Command {
			for _, m := range placeholderRE.FindAllStringSubmatch(el, -1) {
				if !params[m[1]] {
					add(fmt.Sprintf("%s.command[%d]", path, k), "placeholder %q names no declared parameter", m[0])
				}
			}
		}
	}
	return errors.Join(errs...)
}

// check validates one value of p.
func (p *Parameter) check(v string) error {
	if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
		return fmt.Errorf("%q is not one of %s", v, strings.Join(p.Enum, ", "))
	}
	if p.re != nil && !p.re.MatchString(v) {
		return fmt.Errorf("%q does not match the pattern %s", v, p.Pattern)
	}
	return nil
}
