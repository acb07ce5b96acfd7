package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubechat/kubechat/internal/templates"
)

// validate checks the decoded config as a whole and joins every problem.
func (c *Config) validate(known Known) error {
	v := &validator{doc: c.doc}
	v.cluster(c.Cluster)
	v.log(c.Log)
	v.http(c.HTTP)
	if d := c.Delivery; d.Deadline < Duration(time.Second) {
		v.add("delivery.deadline", "must be at least 1s, got %s", d.Deadline)
	} else if d.MaxBackoff <= 0 || d.MaxBackoff > d.Deadline {
		v.add("delivery.maxBackoff", "must be positive and at most delivery.deadline (%s), got %s", d.Deadline, d.MaxBackoff)
	}
	if m := c.Commands; m.MaxConcurrent < 0 {
		v.add("commands.maxConcurrent", "must be positive, got %d", m.MaxConcurrent)
	} else if m.MaxConcurrentPerChannel < 0 || m.MaxConcurrentPerChannel > m.MaxConcurrent {
		v.add("commands.maxConcurrentPerChannel", "must be positive and at most commands.maxConcurrent (%d), got %d", m.MaxConcurrent, m.MaxConcurrentPerChannel)
	}
	if c.Commands.QueueTimeout < 0 {
		v.add("commands.queueTimeout", "must be positive, got %s", c.Commands.QueueTimeout)
	}
	if h := c.HA; !(h.RetryPeriod < h.RenewDeadline && h.RenewDeadline < h.LeaseDuration) {
		v.add("ha", "need retryPeriod < renewDeadline < leaseDuration, got %s < %s < %s", h.RetryPeriod, h.RenewDeadline, h.LeaseDuration)
	}

	platforms := v.names("platforms", len(c.Platforms), func(i int) string { return c.Platforms[i].Name })
	for i, p := range c.Platforms {
		path := fmt.Sprintf("platforms[%d]", i)
		v.oneOf(path+".type", p.Type, known.PlatformTypes, "platform type")
	}
	sources := v.names("sources", len(c.Sources), func(i int) string { return c.Sources[i].Name })
	for i, s := range c.Sources {
		v.source(fmt.Sprintf("sources[%d]", i), s)
	}
	executors := v.names("executors", len(c.Executors), func(i int) string { return c.Executors[i].Name })
	for i, e := range c.Executors {
		v.executor(fmt.Sprintf("executors[%d]", i), e, known)
	}
	actions := v.names("actions", len(c.Actions), func(i int) string { return c.Actions[i].Name })
	for i, a := range c.Actions {
		path := fmt.Sprintf("actions[%d]", i)
		v.oneOf(path+".source", a.Source, sources, "source")
		if strings.TrimSpace(a.Command) == "" {
			v.add(path+".command", "is required")
		} else if err := CheckActionCommand(a.Command); err != nil {
			v.add(path+".command", "%v", err)
		}
		for j, k := range a.Kinds {
			if !objectKind.MatchString(k) {
				v.add(fmt.Sprintf("%s.kinds[%d]", path, j), "%q is not a Kubernetes kind (a name such as Kustomization or Application)", k)
			}
		}
	}
	templates := v.templates(c.Templates)
	for i, s := range c.Sources {
		if s.Template != "" {
			v.oneOf(fmt.Sprintf("sources[%d].template", i), s.Template, templates, "template")
		}
	}
	channels := v.names("channels", len(c.Channels), func(i int) string { return c.Channels[i].Name })
	v.fleet(c.Fleet, c.Channels)
	for i, ch := range c.Channels {
		path := fmt.Sprintf("channels[%d]", i)
		v.oneOf(path+".platform", ch.Platform, platforms, "platform")
		for j, s := range ch.Bindings.Sources {
			v.oneOf(fmt.Sprintf("%s.bindings.sources[%d]", path, j), s, sources, "source")
		}
		for j, e := range ch.Bindings.Executors {
			v.oneOf(fmt.Sprintf("%s.bindings.executors[%d]", path, j), e, executors, "executor")
		}
		for j, a := range ch.Bindings.Actions {
			v.oneOf(fmt.Sprintf("%s.bindings.actions[%d]", path, j), a, actions, "action")
		}
		for j, m := range ch.Bindings.Matchers {
			if _, err := ParseMatcher(m); err != nil {
				v.add(fmt.Sprintf("%s.bindings.matchers[%d]", path, j), "%v", err)
			}
		}
		v.rateLimit(path+".rateLimit", ch.RateLimit)
		if ch.Template != "" {
			v.oneOf(path+".template", ch.Template, templates, "template")
		}
		if ch.DefaultCluster != "" {
			if errs := validation.IsDNS1123Label(ch.DefaultCluster); len(errs) > 0 {
				v.add(path+".defaultCluster", "%q is not a valid cluster name: %s", ch.DefaultCluster, strings.Join(errs, "; "))
			}
		}
		if ch.Identity != nil {
			v.identity(path+".identity", *ch.Identity)
		} else if need := c.needIdentity(ch, known); len(need) > 0 {
			v.add(path+".identity", "is required when executors that reach the cluster are bound (%s): commands run as this Kubernetes identity (serviceAccount or user)", strings.Join(need, ", "))
		}
	}
	seenUsers := map[string]int{}
	for i, u := range c.Users {
		path := fmt.Sprintf("users[%d]", i)
		v.oneOf(path+".platform", u.Platform, platforms, "platform")
		if u.ID == "" {
			v.add(path+".id", "is required (the user's id on the platform)")
		}
		key := u.Platform + "/" + u.ID
		if j, dup := seenUsers[key]; dup {
			v.add(path+".id", "user %q on %q is mapped twice (also users[%d])", u.ID, u.Platform, j)
		}
		seenUsers[key] = i
		if u.Identity != nil {
			v.identity(path+".identity", *u.Identity)
		}
	}
	aliasNames := slices.Sorted(maps.Keys(c.Aliases))
	for _, name := range aliasNames {
		path := joinPath("aliases", name)
		if !nameRE.MatchString(name) {
			v.add(path, "alias %q must be lower case letters, digits and dashes", name)
		}
		if strings.TrimSpace(c.Aliases[name]) == "" {
			v.add(path, "alias %q has an empty expansion", name)
		}
	}
	if c.Reload.NotifyChannel != "" {
		v.oneOf("reload.notifyChannel", c.Reload.NotifyChannel, channels, "channel")
	}
	v.inhibit(c.Inhibit)
	v.isolation(c)
	return errors.Join(v.errs...)
}

type validator struct {
	doc  *document
	errs []error
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, v.doc.at(path, format, args...))
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// names checks that each entry has a valid, unique name and returns them.
func (v *validator) names(list string, n int, name func(int) string) []string {
	var out []string
	seen := map[string]int{}
	for i := range n {
		path := fmt.Sprintf("%s[%d].name", list, i)
		nm := name(i)
		switch {
		case nm == "":
			v.add(path, "is required")
			continue
		case !nameRE.MatchString(nm):
			v.add(path, "%q is not a valid name (lower case letters, digits and dashes, at most 63)", nm)
		}
		if j, dup := seen[nm]; dup {
			v.add(path, "duplicate name %q (also %s[%d])", nm, list, j)
			continue
		}
		seen[nm] = i
		out = append(out, nm)
	}
	return out
}

// oneOf checks that value is one of known; what names the kind in the message.
func (v *validator) oneOf(path, value string, known []string, what string) {
	if value == "" {
		v.add(path, "is required")
		return
	}
	if slices.Contains(known, value) {
		return
	}
	list := "none configured"
	if len(known) > 0 {
		list = strings.Join(known, ", ")
	}
	v.add(path, "unknown %s %q (known: %s)", what, value, list)
}

func (v *validator) cluster(c Cluster) {
	if c.Name == "" {
		v.add("cluster.name", "is required")
		return
	}
	if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
		v.add("cluster.name", "%q is not a valid cluster name: %s", c.Name, strings.Join(errs, "; "))
	}
	// The longest name made from it, <stateName>-buttons, must be a valid ConfigMap name.
	if errs := validation.IsDNS1123Label(c.ButtonsConfigMap()); len(errs) > 0 {
		v.add("cluster.stateName", "%q cannot prefix the agent's ConfigMap and Lease names (lower case letters, digits and '-', at most 55 characters): %s", c.StateName, strings.Join(errs, "; "))
	}
}

func (v *validator) log(l Log) {
	if !slices.Contains([]string{"json", "text"}, l.Format) {
		v.add("log.format", "unknown format %q (known: json, text)", l.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		v.add("log.level", "unknown level %q (known: debug, info, warn, error)", l.Level)
	}
}

func (v *validator) http(h HTTP) {
	host, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		v.add("http.listen", "%q is not a host:port address", h.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		v.add("http.listen", "port %q is not a number from 0 to 65535", port)
	} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		v.add("http.listen", "host %q is not an IP address", host)
	}
	if h.UnhealthyAfter < 0 {
		v.add("http.unhealthyAfter", "must be positive, got %s", h.UnhealthyAfter)
	}
	if h.ShutdownTimeout < 0 {
		v.add("http.shutdownTimeout", "must be positive, got %s", h.ShutdownTimeout)
	}
}

// MaxPerSecond caps a channel's rateLimit.perSecond. No chat platform
// takes a million messages a second into one channel; a larger value is a
// typo (1e308 would parse), not a wish.
const MaxPerSecond = 1e6

func (v *validator) rateLimit(path string, r RateLimit) {
	// The decoder has refused .nan and .inf already; 0 is "unset".
	if r.PerSecond < 0 || r.PerSecond > MaxPerSecond {
		v.add(path+".perSecond", "must be a positive number of messages per second, at most %g (0 or unset: the default, 1), got %g", float64(MaxPerSecond), r.PerSecond)
	}
	if r.Burst < 0 {
		v.add(path+".burst", "must be positive (0 or unset: the default, 10), got %d", r.Burst)
	}
}

func (v *validator) source(path string, s Source) {
	v.oneOf(path+".type", s.Type, []string{SourceKubernetes, SourceAlertmanager, SourceGitHub}, "source type")
	if s.GitHub != nil && s.Type != SourceGitHub {
		v.add(path+".github", "is set, but the source type is %q", s.Type)
	}
	switch s.Type {
	case SourceGitHub:
		if s.Kubernetes != nil {
			v.add(path+".kubernetes", "is set, but the source type is %q", s.Type)
		}
		if s.Alertmanager != nil {
			v.add(path+".alertmanager", "is set, but the source type is %q", s.Type)
		}
		gs := s.GitHub
		if gs == nil || (gs.Poll == nil && (gs.WebhookSecret == nil || gs.WebhookSecret.IsZero())) {
			v.add(path+".github.webhookSecret", "is required unless the source polls (github.poll): every delivery's signature is checked with it")
			return
		}
		if p := gs.Poll; p != nil {
			if p.Interval != 0 && (p.Interval < MinPollInterval || p.Interval > MaxPollInterval) {
				v.add(path+".github.poll.interval", "must be from %s to %s (unset: %s), got %s", MinPollInterval, MaxPollInterval, DefaultPollInterval, p.Interval)
			}
			if len(p.Repositories) == 0 {
				v.add(path+".github.poll.repositories", "list the repositories to poll, as owner/name")
			}
			seen := map[string]int{}
			for i, r := range p.Repositories {
				at := fmt.Sprintf("%s.github.poll.repositories[%d]", path, i)
				if !repoName.MatchString(r) {
					v.add(at, "%q is not owner/name", r)
				} else if j, dup := seen[strings.ToLower(r)]; dup {
					v.add(at, "%q is listed twice (also repositories[%d])", r, j)
				} else {
					seen[strings.ToLower(r)] = i
				}
			}
		}
		if gs.Deliveries < 0 {
			v.add(path+".github.deliveries", "must not be negative, got %d", gs.Deliveries)
		}
		gs.API.Check(func(field, problem string) {
			at := path + ".github.api"
			if field != "" {
				at += "." + field
			}
			v.add(at, "%s", problem)
		})
		if gs.API.BaseURL != "" {
			if err := CheckHTTPURL(path+".github.api.baseURL", gs.API.BaseURL); err != nil {
				v.add(path+".github.api.baseURL", "%q is not an http(s) URL", gs.API.BaseURL)
			}
		}
	case SourceKubernetes:
		if s.Alertmanager != nil {
			v.add(path+".alertmanager", "is set, but the source type is %q", s.Type)
		}
		if s.Kubernetes == nil || len(s.Kubernetes.Resources) == 0 {
			v.add(path+".kubernetes.resources", "a kubernetes source needs at least one resource")
			return
		}
		v.namespaces(path+".kubernetes.namespaces", s.Kubernetes.Namespaces)
		for i, r := range s.Kubernetes.Resources {
			v.resource(fmt.Sprintf("%s.kubernetes.resources[%d]", path, i), r)
		}
		if a := s.Kubernetes.ArgoCD; a.URL != "" {
			if err := CheckHTTPURL(path+".kubernetes.argocd.url", a.URL); err != nil {
				v.add(path+".kubernetes.argocd.url", "%q is not an http(s) URL", a.URL)
			}
		}
	case SourceAlertmanager:
		if s.Kubernetes != nil {
			v.add(path+".kubernetes", "is set, but the source type is %q", s.Type)
		}
		am := s.Alertmanager
		switch {
		case am == nil || (am.BearerToken == nil && am.BasicAuth == nil):
			v.add(path+".alertmanager", "needs bearerToken or basicAuth: the webhook receiver never runs unauthenticated")
		case am.BearerToken != nil && am.BasicAuth != nil:
			v.add(path+".alertmanager", "set bearerToken or basicAuth, not both")
		case am.BearerToken != nil && am.BearerToken.IsZero():
			v.add(path+".alertmanager.bearerToken", "is empty")
		case am.BasicAuth != nil:
			if am.BasicAuth.Username == "" || strings.Contains(am.BasicAuth.Username, ":") {
				v.add(path+".alertmanager.basicAuth.username", "is required and may not contain \":\"")
			}
			if am.BasicAuth.Password == nil || am.BasicAuth.Password.IsZero() {
				v.add(path+".alertmanager.basicAuth.password", "is required")
			}
		}
	}
}

func (v *validator) resource(path string, r Resource) {
	if _, err := ParseGVR(r.Type); err != nil {
		v.add(path+".type", "%v", err)
	}
	for i, e := range r.Events {
		v.oneOf(fmt.Sprintf("%s.events[%d]", path, i), e, EventTypes, "event type")
	}
	if r.Namespaces != nil {
		v.namespaces(path+".namespaces", *r.Namespaces)
	}
	v.regex(path+".name", r.Name)
	if r.Labels != "" {
		if _, err := labels.Parse(r.Labels); err != nil {
			v.add(path+".labels", "invalid label selector %q: %v", r.Labels, err)
		}
	}
	if r.Annotations != "" {
		if _, err := labels.Parse(r.Annotations); err != nil {
			v.add(path+".annotations", "invalid selector %q: %v", r.Annotations, err)
		}
	}
	if r.Message != "" {
		if _, err := regexp.Compile(r.Message); err != nil {
			v.add(path+".message", "invalid regular expression %q: %s", r.Message, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	for i, f := range r.Fields {
		if _, err := ParseFieldPath(f); err != nil {
			v.add(fmt.Sprintf("%s.fields[%d]", path, i), "%v", err)
		}
	}
}

func (v *validator) namespaces(path string, n Namespaces) {
	for i, re := range n.Include {
		v.regex(fmt.Sprintf("%s.include[%d]", path, i), re)
	}
	for i, re := range n.Exclude {
		v.regex(fmt.Sprintf("%s.exclude[%d]", path, i), re)
	}
}

func (v *validator) regex(path, expr string) {
	if expr == "" {
		return
	}
	if _, err := CompileAnchored(expr); err != nil {
		v.add(path, "%v", err)
	}
}

// policyResource is "pods", "deployments.apps", "pods/log", "pods.metrics.k8s.io".
var policyResource = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(/[a-z]+)?$`)

func (v *validator) executor(path string, e Executor, known Known) {
	v.oneOf(path+".type", e.Type, known.ExecutorTypes, "executor type")
	p := e.Policy
	if p.Timeout < 0 {
		v.add(path+".policy.timeout", "must be positive, got %s", p.Timeout)
	}
	if p.MaxOutputBytes < 0 {
		v.add(path+".policy.maxOutputBytes", "must be positive, got %d", p.MaxOutputBytes)
	}
	for i, r := range p.Resources {
		if r != "*" && !policyResource.MatchString(r) {
			v.add(fmt.Sprintf("%s.policy.resources[%d]", path, i),
				"%q is not a resource as discovery names it: resource[.group][/subresource] in lower case, such as pods or deployments.apps, or \"*\"", r)
		}
	}
	for i, ns := range p.Namespaces {
		if ns == "*" {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			v.add(fmt.Sprintf("%s.policy.namespaces[%d]", path, i), "%q is not a namespace name or \"*\"", ns)
		}
	}
	if p.DefaultNamespace != "" && len(p.Namespaces) > 0 &&
		!slices.Contains(p.Namespaces, "*") && !slices.Contains(p.Namespaces, p.DefaultNamespace) {
		v.add(path+".policy.defaultNamespace", "%q is not among the allowed namespaces (%s)",
			p.DefaultNamespace, strings.Join(p.Namespaces, ", "))
	}
}

func (v *validator) identity(path string, id Identity) {
	switch {
	case id.ServiceAccount != "" && (id.User != "" || len(id.Groups) > 0):
		v.add(path, "set either serviceAccount or user/groups, not both")
	case id.ServiceAccount != "":
		ns, name, ok := strings.Cut(id.ServiceAccount, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			v.add(path+".serviceAccount", "%q is not namespace/name", id.ServiceAccount)
		}
	case id.User == "":
		v.add(path, "needs serviceAccount (namespace/name) or user")
	case strings.HasPrefix(id.User, "system:") && !strings.HasPrefix(id.User, "system:serviceaccount:"):
		v.add(path+".user", "%q is a system identity; use a dedicated user or a ServiceAccount", id.User)
	}
	for i, g := range id.Groups {
		if g == "system:masters" {
			v.add(fmt.Sprintf("%s.groups[%d]", path, i), "system:masters bypasses RBAC; grant a ClusterRole to a dedicated group instead")
		}
	}
}

// CheckHTTPURL reports, naming path, when value is not an absolute http or
// https URL with a host. Platforms check their settings with it.
func CheckHTTPURL(path, value string) error {
	if u, err := url.Parse(value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", path, value)
	}
	return nil
}

// CompileAnchored compiles expr so that it must match the whole string.
func CompileAnchored(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %s", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

// Warnings lists what a valid config most likely does not mean: it loads
// and runs, but a part a working agent needs is missing, as when a file
// was cut short. "kubechat check-config" prints them and the agent logs
// them when it starts; neither refuses the config.
func (c *Config) Warnings() []*Error {
	d := c.doc
	if d == nil {
		d = newDocument()
	}
	var out []*Error
	warn := func(path, msg string) {
		e := d.at(path, "%s", msg)
		if _, ok := d.pos[path]; !ok {
			e.Line = 0 // the key is absent: name the file, not the line it would be on
		}
		out = append(out, e)
	}
	if len(c.Platforms) == 0 {
		warn("platforms", "no platform is configured: the agent can post no alert and hear no command")
	}
	if len(c.Sources) == 0 && len(c.Fleet.Clusters) == 0 { // a hub has no sources by design
		warn("sources", "no source is configured: the agent posts no alerts (it still answers commands)")
	}
	return out
}

// templates checks that every template parses, naming the template's own
// line in the error, and returns their names.
func (v *validator) templates(ts []Template) []string {
	names := v.names("templates", len(ts), func(i int) string { return ts[i].Name })
	check := func(path, text string) {
		if _, err := templates.Parse("t", text); err != nil {
			v.add(path, "%v", err)
		}
	}
	for i, t := range ts {
		path := fmt.Sprintf("templates[%d]", i)
		check(path+".title", t.Title)
		check(path+".text", t.Text)
		check(path+".context", t.Context)
		for j, f := range t.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", path, j)
			if f.Name == "" {
				v.add(fp+".name", "is required")
			}
			check(fp+".name", f.Name)
			check(fp+".value", f.Value)
		}
		for j, b := range t.Buttons {
			bp := fmt.Sprintf("%s.buttons[%d]", path, j)
			if b.Label == "" || b.URL == "" {
				v.add(bp, "needs a label and a url")
			}
			check(bp+".label", b.Label)
			check(bp+".url", b.URL)
		}
	}
	return names
}

// inhibit checks the inhibition rules: every matcher parses, and a rule
// selects both sides, so that no rule suppresses every alert.
func (v *validator) inhibit(in Inhibit) {
	if in.ForgetAfter < Duration(time.Minute) {
		v.add("inhibit.forgetAfter", "must be at least 1m (Alertmanager's repeat_interval plus a margin), got %s", in.ForgetAfter)
	}
	seen := map[string]int{}
	for i, r := range in.Rules {
		path := fmt.Sprintf("inhibit.rules[%d]", i)
		if r.Name != "" {
			if !nameRE.MatchString(r.Name) {
				v.add(path+".name", "%q is not a valid name (lower case letters, digits and dashes, at most 63)", r.Name)
			} else if j, dup := seen[r.Name]; dup {
				v.add(path+".name", "duplicate name %q (also inhibit.rules[%d])", r.Name, j)
			}
			seen[r.Name] = i
		}
		for _, side := range []struct {
			field string
			ms    []string
			what  string
		}{{"sourceMatchers", r.SourceMatchers, "the Alertmanager alerts that inhibit"}, {"targetMatchers", r.TargetMatchers, "the alerts inhibited"}} {
			if len(side.ms) == 0 {
				v.add(path+"."+side.field, "is required: at least one matcher selecting %s", side.what)
			}
			for j, m := range side.ms {
				if _, err := ParseMatcher(m); err != nil {
					v.add(fmt.Sprintf("%s.%s[%d]", path, side.field, j), "%v", err)
				}
			}
		}
		labels := map[string]int{}
		for j, l := range r.Equal {
			lp := fmt.Sprintf("%s.equal[%d]", path, j)
			if strings.TrimSpace(l) == "" || strings.ContainsAny(l, " \t\"=!~{},") {
				v.add(lp, "%q is not a label name", l)
			}
			if k, dup := labels[l]; dup {
				v.add(lp, "label %q is listed twice (also equal[%d])", l, k)
			}
			labels[l] = j
		}
	}
}

// needIdentity names the executors bound to ch whose commands reach the
// cluster: all but those of a type known to be cluster-free (an unknown
// name or type counts as reaching it).
func (c *Config) needIdentity(ch Channel, known Known) []string {
	var out []string
	for _, name := range ch.Bindings.Executors {
		i := slices.IndexFunc(c.Executors, func(e Executor) bool { return e.Name == name })
		if i < 0 || !slices.Contains(known.ClusterFreeTypes, c.Executors[i].Type) {
			out = append(out, name)
		}
	}
	return out
}

// repoName is a GitHub repository's owner/name.
var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$`)

// objectKind is what a Kubernetes kind looks like: a letter, then letters
// and digits (Kustomization, Application, HelmRelease).
var objectKind = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
