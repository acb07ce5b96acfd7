// Package config is kubechat's configuration model: one or more YAML files,
// merged in order as Helm merges values files, decoded strictly (an unknown key
// is an error) and validated as a whole. Every error names the file, the line
// and the field path, for example
//
//	config.yaml:14: channels[2].bindings.executors[0]: unknown executor "kubctl" (known: kubectl, helm)
//
// The central Config has no platform or executor fields: each platform and
// executor entry carries a raw settings block that only its own package
// decodes, with DecodeStrict, so that its errors carry positions too.
package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is the whole agent configuration.
type Config struct {
	Cluster   Cluster           `yaml:"cluster"`
	Log       Log               `yaml:"log"`
	HTTP      HTTP              `yaml:"http"`
	Platforms []Platform        `yaml:"platforms"` // named chat platform instances
	Channels  []Channel         `yaml:"channels"`  // channels, each on a platform, with their bindings
	Sources   []Source          `yaml:"sources"`   // where events come from
	Executors []Executor        `yaml:"executors"` // what commands run, with their policies
	Actions   []Action          `yaml:"actions"`   // commands run when a source's event matches
	Aliases   map[string]string `yaml:"aliases"`   // short names for command lines: k -> kubectl
	Users     []User            `yaml:"users"`     // chat users' own identities and roles
	HA        HA                `yaml:"ha"`
	Delivery  Delivery          `yaml:"delivery"`
	Commands  Commands          `yaml:"commands"`
	Reload    Reload            `yaml:"reload"`
	// Fleet is read by `kubechat hub` only (see docs/fleet.md).
	Fleet Fleet `yaml:"fleet"`
	// Templates shape alert messages; a channel or a source names one
	// (docs/templates.md).
	Templates []Template `yaml:"templates"`
	// Inhibit suppresses the Kubernetes alerts about a workload while an
	// Alertmanager alert about it fires (docs/silences.md).
	Inhibit Inhibit `yaml:"inhibit"`

	// Files lists the files this config was merged from, in order.
	Files []string `yaml:"-"`
	doc   *document
}

// Cluster describes the cluster this agent runs in.
type Cluster struct {
	// Name identifies this agent's cluster in every message and in --cluster.
	Name string `yaml:"name" jsonschema:"minLength=1,maxLength=63,pattern=^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"`
	// Kubeconfig is used when the agent does not run in a pod and --kubeconfig is not given.
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace is where the agent keeps its state ConfigMap (default: kubechat).
	Namespace string `yaml:"namespace"`
	// StateName prefixes the names of what the agent keeps in Namespace:
	// the ConfigMaps <stateName>-state, -outbox and -buttons, and the
	// Lease <stateName>-leader unless ha.leaseName is set (default:
	// kubechat). Two agents in one namespace need different names.
	StateName string `yaml:"stateName" jsonschema:"maxLength=55,pattern=^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"`
}

// StateConfigMap names the ConfigMap of the agent's small state (open
// alerts, switches, the leader's address).
func (c Cluster) StateConfigMap() string { return c.StateName + "-state" }

// OutboxConfigMap names the ConfigMap of the messages queued and not yet
// delivered.
func (c Cluster) OutboxConfigMap() string { return c.StateName + "-outbox" }

// ButtonsConfigMap names the ConfigMap of the buttons posted and not yet
// expired.
func (c Cluster) ButtonsConfigMap() string { return c.StateName + "-buttons" }

// Log selects the log format and level.
type Log struct {
	Format string `yaml:"format" jsonschema:"enum=json,enum=text"`                      // json or text
	Level  string `yaml:"level" jsonschema:"enum=debug,enum=info,enum=warn,enum=error"` // debug, info, warn or error
}

// HTTP configures the agent's HTTP server (/healthz, /readyz, /metrics, inbound hooks).
type HTTP struct {
	// Listen is the address to listen on, for example ":8080" or "127.0.0.1:0".
	Listen string `yaml:"listen"`
	// UnhealthyAfter is how long a component may stay unhealthy before /healthz fails.
	UnhealthyAfter Duration `yaml:"unhealthyAfter"`
	// ShutdownTimeout bounds the graceful shutdown of the whole agent.
	ShutdownTimeout Duration `yaml:"shutdownTimeout"`
}

// Delivery tunes how messages to chat platforms are retried. A message
// waits in its channel's queue, in order, through 429s, 5xx and network
// errors until it is delivered or its deadline passes.
type Delivery struct {
	// Deadline is how long after it was queued a message may still be
	// delivered; after that it is dead-lettered: logged and counted (default 10m).
	Deadline Duration `yaml:"deadline"`
	// MaxBackoff caps the wait between two attempts (default 30s).
	MaxBackoff Duration `yaml:"maxBackoff"`
}

// Commands bounds how many commands run at once. A command that finds
// no free slot waits in line, in arrival order, and its reply says it is
// queued and where, until it runs (see docs/commands.md).
type Commands struct {
	// MaxConcurrent is how many commands run at once in the agent, from
	// every channel, actions and the assistant's tool calls included
	// (default 10).
	MaxConcurrent int `yaml:"maxConcurrent" jsonschema:"minimum=0"`
	// MaxConcurrentPerChannel is how many of them may come from one
	// channel (default 4), so one busy channel cannot take every slot.
	MaxConcurrentPerChannel int `yaml:"maxConcurrentPerChannel" jsonschema:"minimum=0"`
	// QueueTimeout is how long a command waits for a slot before its
	// reply says the agent is too busy (default 2m).
	QueueTimeout Duration `yaml:"queueTimeout"`
}

// Defaults of Commands.
const (
	DefaultMaxConcurrentCommands           = 10
	DefaultMaxConcurrentCommandsPerChannel = 4
	DefaultCommandQueueTimeout             = 2 * time.Minute
)

// Reload configures how the agent takes a changed config while it runs
// (it watches its config files and reloads on SIGHUP; see docs/reload.md).
type Reload struct {
	// NotifyChannel names a configured channel that hears when a changed
	// config was refused (the running one is kept). Empty: the log and
	// the metrics only.
	NotifyChannel string `yaml:"notifyChannel"`
}

// Platform is one named chat platform instance. Settings are decoded by the
// platform's own package.
type Platform struct {
	Name     string `yaml:"name" jsonschema:"required"`
	Type     string `yaml:"type" jsonschema:"required"`
	Settings Raw    `yaml:"settings"`
}

// Channel is one chat channel on one platform, with what it is bound to.
type Channel struct {
	Name     string   `yaml:"name" jsonschema:"required"`
	Platform string   `yaml:"platform" jsonschema:"required"`
	ID       string   `yaml:"id"` // the platform's channel id or name; defaults to Name
	Bindings Bindings `yaml:"bindings"`
	// DefaultCluster is the cluster that answers commands without --cluster
	// in this channel when several agents (one per cluster) share it; the
	// other agents stay silent. Empty: every agent that hears the command
	// answers it.
	DefaultCluster string `yaml:"defaultCluster"`
	// Clusters, on a hub (`kubechat hub`), are the fleet's clusters that
	// may post to this channel and take commands from it.
	Clusters []string `yaml:"clusters"`
	// Identity is who commands from this channel act as in Kubernetes,
	// unless the user has a mapping in Users.
	Identity *Identity `yaml:"identity"`
	// RateLimit bounds the messages sent to this channel; excess waits in order.
	RateLimit RateLimit `yaml:"rateLimit"`
	// Template names the templates entry that shapes this channel's
	// alerts (default: the source's, else the built-in one).
	Template string `yaml:"template"`
	// Isolation overrides the isolation of every executor bound to this
	// channel: inProcess or pod.
	Isolation string `yaml:"isolation" jsonschema:"enum=inProcess,enum=pod"`
}

// RateLimit is a token bucket: PerSecond messages on average, bursts of Burst.
type RateLimit struct {
	PerSecond float64 `yaml:"perSecond" jsonschema:"minimum=0,maximum=1000000"`
	Burst     int     `yaml:"burst" jsonschema:"minimum=0"`
}

// WithDefaults fills in 1 message/s with bursts of 10 (Slack's per-channel pace).
func (r RateLimit) WithDefaults() RateLimit {
	if r.PerSecond <= 0 {
		r.PerSecond = 1
	}
	if r.Burst <= 0 {
		r.Burst = 10
	}
	return r
}

// HA configures leader election between replicas: only the leader watches
// and notifies; a standby takes over when the leader's Lease expires.
type HA struct {
	LeaderElection bool     `yaml:"leaderElection"`
	LeaseName      string   `yaml:"leaseName"`     // default <cluster.stateName>-leader, in cluster.namespace
	LeaseDuration  Duration `yaml:"leaseDuration"` // default 10s
	RenewDeadline  Duration `yaml:"renewDeadline"` // default 7s
	RetryPeriod    Duration `yaml:"retryPeriod"`   // default 2s
	// ButtonKey signs button ids (at least 16 bytes). Every replica must
	// have the same one, from a Secret, so that a button works on any of
	// them and after a restart; the Helm chart makes one. Without it, each
	// process signs with a random key of its own.
	ButtonKey *Secret `yaml:"buttonKey"`
	// AdvertiseURL is where the other replica reaches this one's HTTP
	// server, to hand it inbound requests while it leads (default: the
	// pod's IP from $KUBECHAT_POD_IP, else the listen address).
	AdvertiseURL string `yaml:"advertiseURL"`
}

// Identity is a Kubernetes identity to impersonate: a ServiceAccount
// ("namespace/name"), or a user with groups.
type Identity struct {
	ServiceAccount string   `yaml:"serviceAccount" jsonschema:"pattern=^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"`
	User           string   `yaml:"user"`
	Groups         []string `yaml:"groups"`
}

// UserInfo is the user and groups the agent impersonates for id: a
// ServiceAccount's user name and its groups, or the user with its groups.
// Both add system:authenticated, which the API server gives every
// authenticated request.
func (id Identity) UserInfo() (user string, groups []string) {
	if id.ServiceAccount != "" {
		ns, name, _ := strings.Cut(id.ServiceAccount, "/")
		return "system:serviceaccount:" + ns + ":" + name,
			[]string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	return id.User, append(slices.Clone(id.Groups), "system:authenticated")
}

// User maps one chat user to a Kubernetes identity and kubechat role.
type User struct {
	// Platform is the platform instance name; ID is the user's id there.
	Platform string `yaml:"platform" jsonschema:"required"`
	ID       string `yaml:"id" jsonschema:"required"`
	// Identity, when set, replaces the channel's identity for this user's commands.
	Identity *Identity `yaml:"identity"`
	// Admin allows the admin built-ins (notifications on|off, show config).
	Admin bool `yaml:"admin"`
}

// Bindings connects a channel to the sources it hears and the executors it may run.
type Bindings struct {
	Sources   []string `yaml:"sources"`
	Executors []string `yaml:"executors"`
	Actions   []string `yaml:"actions"`
	// Matchers are Alertmanager label matchers (severity="critical",
	// team=~"web|db", env!="dev"); an alert from an alertmanager source
	// reaches this channel only when it matches all of them.
	Matchers []string `yaml:"matchers"`
}

// Source is one named event source. Exactly one of the type blocks is set, matching Type.
type Source struct {
	Name         string              `yaml:"name" jsonschema:"required"`
	Type         string              `yaml:"type" jsonschema:"required,enum=kubernetes,enum=alertmanager,enum=github"`
	Kubernetes   *KubernetesSource   `yaml:"kubernetes"`
	Alertmanager *AlertmanagerSource `yaml:"alertmanager"`
	GitHub       *GitHubSource       `yaml:"github"`
	// Template names the templates entry that shapes this source's alerts
	// in channels that name none.
	Template string `yaml:"template"`
}

// Inhibit holds the inhibition rules, modelled on Alertmanager's
// inhibit_rules: while an Alertmanager alert group that a rule's source
// matchers select fires, the events its target matchers select and that
// agree with it on every equal label are not posted.
type Inhibit struct {
	Rules []InhibitRule `yaml:"rules"`
	// ForgetAfter is how long a firing Alertmanager alert group still
	// inhibits without being notified again. Alertmanager repeats a firing
	// group's notification every repeat_interval (default 4h), so keep it
	// above that; it ends inhibition when a resolution never comes
	// (send_resolved: false). Default 5h.
	ForgetAfter Duration `yaml:"forgetAfter"`
}

// InhibitRule is one inhibition rule. Each matcher is one Alertmanager
// label matcher (severity="critical", alertname=~"Kube.*").
type InhibitRule struct {
	// Name names the rule in explain and in the metrics (default: its
	// place, inhibit.rules[0]).
	Name string `yaml:"name"`
	// SourceMatchers select the inhibiting Alertmanager alert groups, over
	// the labels their firing alerts share.
	SourceMatchers []string `yaml:"sourceMatchers" jsonschema:"minItems=1"`
	// TargetMatchers select the inhibited events, over the labels silences
	// match (cluster, source, namespace, kind, name, reason, the workload
	// labels and the object's labels).
	TargetMatchers []string `yaml:"targetMatchers" jsonschema:"minItems=1"`
	// Equal are labels that must have the same value, and one, on both
	// sides: namespace and a workload label (deployment, statefulset,
	// daemonset, job_name, pod).
	Equal []string `yaml:"equal"`
}

// Template shapes an alert message: each string is a Go text/template
// over the event (docs/templates.md). An empty title, text or context
// keeps the built-in one; a field or button that renders empty is left
// out.
type Template struct {
	Name    string `yaml:"name" jsonschema:"required"`
	Title   string `yaml:"title"`
	Text    string `yaml:"text"`
	Context string `yaml:"context"`
	// Fields are labelled values; with EventFields, the fields the source
	// attached to the event (an update's changed paths, an alert's
	// labels) follow them.
	Fields      []TemplateField `yaml:"fields"`
	EventFields bool            `yaml:"eventFields"`
	// Buttons are links. A template never makes a command button: those
	// come only from what the channel's policy allows.
	Buttons []TemplateButton `yaml:"buttons"`
}

// TemplateField is one labelled value of a template.
type TemplateField struct {
	Name  string `yaml:"name" jsonschema:"required"`
	Value string `yaml:"value" jsonschema:"required"`
}

// TemplateButton is a link button of a template.
type TemplateButton struct {
	Label string `yaml:"label" jsonschema:"required"`
	URL   string `yaml:"url" jsonschema:"required"`
}

// Source types.
const (
	SourceKubernetes   = "kubernetes"
	SourceAlertmanager = "alertmanager"
	SourceGitHub       = "github"
)

// KubernetesSource watches Kubernetes resources.
type KubernetesSource struct {
	// Namespaces filters every resource of this source unless the resource sets its own.
	Namespaces Namespaces `yaml:"namespaces"`
	Resources  []Resource `yaml:"resources"`
	// Recommendations are checks run on newly created pods and ingresses
	// among the watched resources; each is switched on by itself.
	Recommendations Recommendations `yaml:"recommendations"`
	// ArgoCD tunes the alerts on Argo CD Applications
	// (argoproj.io/v1alpha1/applications) among the watched resources.
	ArgoCD ArgoCDAlerts `yaml:"argocd"`
}

// ArgoCDAlerts tunes the alerts on Argo CD Applications.
type ArgoCDAlerts struct {
	// URL is the Argo CD web UI (https://argocd.example.com); when set,
	// an Application's alert links to the Application there.
	URL string `yaml:"url"`
	// OutOfSyncAfter is how long an Application may stay OutOfSync, and
	// otherwise healthy, before it is an alert (default 10m).
	OutOfSyncAfter Duration `yaml:"outOfSyncAfter"`
}

// DefaultOutOfSyncAfter is ArgoCDAlerts.OutOfSyncAfter's default.
const DefaultOutOfSyncAfter = 10 * time.Minute

// Recommendations switches the best-practice checks.
type Recommendations struct {
	// LatestTag: a container image uses the "latest" tag, or none.
	LatestTag bool `yaml:"latestTag"`
	// ResourceLimits: a container has no CPU or memory limit.
	ResourceLimits bool `yaml:"resourceLimits"`
	// PodLabels: a pod has no labels.
	PodLabels bool `yaml:"podLabels"`
	// IngressBackends: an Ingress points at a missing Service or TLS Secret.
	IngressBackends bool `yaml:"ingressBackends"`
}

// Resource selects one resource to watch and which changes of it become events.
type Resource struct {
	// Type is "[group/]version/resource", for example "v1/pods" or "apps/v1/deployments".
	Type string `yaml:"type" jsonschema:"required,pattern=^([a-z0-9.-]+/)?v[0-9a-z]+/[a-z0-9]+$"`
	// Events lists the change types to report: create, update, delete, error.
	Events     []string    `yaml:"events" jsonschema:"enum=create,enum=update,enum=delete,enum=error"`
	Namespaces *Namespaces `yaml:"namespaces"`
	// Name is an anchored regular expression on the object name.
	Name string `yaml:"name"`
	// Labels is a label selector, for example "app=web,tier!=cache".
	Labels string `yaml:"labels"`
	// Annotations is a selector on annotations, in label selector syntax.
	Annotations string `yaml:"annotations"`
	// Reasons keeps only Kubernetes Events with one of these reasons (v1/events).
	Reasons []string `yaml:"reasons"`
	// Message is a regular expression an Event's message must contain (v1/events).
	Message string `yaml:"message"`
	// Fields lists the field paths whose change makes an update worth
	// reporting ("spec.replicas", "spec.template.spec.containers[0].image");
	// the update shows each one's old and new value. Without Fields, any
	// change but metadata bookkeeping counts.
	Fields []string `yaml:"fields"`
}

// Event types a Resource can report.
var EventTypes = []string{"create", "update", "delete", "error"}

// Namespaces includes and excludes namespaces by anchored regular expressions.
type Namespaces struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// AlertmanagerSource receives Alertmanager webhooks at /alertmanager/<name>.
// Requests must carry the bearer token or the basic auth credentials.
type AlertmanagerSource struct {
	BearerToken *Secret    `yaml:"bearerToken"`
	BasicAuth   *BasicAuth `yaml:"basicAuth"`
}

// GitHubSource receives GitHub webhooks at /github/<name>, polls GitHub's
// API, or both: each pull request opened, pushed to, reopened or merged
// becomes an event per Flux Kustomization whose source is the pull
// request's repository and whose path the pull request touches (see
// docs/github.md).
type GitHubSource struct {
	// WebhookSecret is the webhook's secret: every delivery must carry its
	// X-Hub-Signature-256. Required unless the source polls.
	WebhookSecret *Secret `yaml:"webhookSecret"`
	// Poll makes the source poll the repositories' pull requests, where
	// GitHub cannot reach the agent.
	Poll *GitHubPoll `yaml:"poll"`
	// API is the GitHub API the source reads pull requests' files from.
	API GitHubAPI `yaml:"api"`
	// Deliveries is how many delivery ids are remembered to refuse a
	// replay (default 500; they are kept in the state ConfigMap).
	Deliveries int `yaml:"deliveries" jsonschema:"minimum=0"`
}

// DefaultDeliveries is GitHubSource.Deliveries' default.
const DefaultDeliveries = 500

// GitHubPoll is the polling mode of a github source: every interval, one
// conditional request per repository (an unchanged answer costs no rate
// limit).
type GitHubPoll struct {
	// Interval between two polls (default 1m, from 10s to 1h).
	Interval Duration `yaml:"interval"`
	// Repositories to poll, as owner/name (at least one).
	Repositories []string `yaml:"repositories" jsonschema:"minItems=1"`
}

// Bounds and default of GitHubPoll.Interval.
const (
	DefaultPollInterval = Duration(time.Minute)
	MinPollInterval     = Duration(10 * time.Second)
	MaxPollInterval     = Duration(time.Hour)
)

// GitHubAPI is a GitHub API and its credentials: a token, or a GitHub App
// installation. With neither, only public repositories can be read.
type GitHubAPI struct {
	// BaseURL is the API's base URL (default https://api.github.com/;
	// GitHub Enterprise: https://HOST/api/v3/).
	BaseURL string     `yaml:"baseURL"`
	Token   Secret     `yaml:"token"`
	App     *GitHubApp `yaml:"app"`
}

// GitHubApp identifies a GitHub App installation.
type GitHubApp struct {
	ID             int64  `yaml:"id"`
	InstallationID int64  `yaml:"installationID"`
	PrivateKey     Secret `yaml:"privateKey"`
}

// Check reports each problem of g to report, with the field it is about
// ("app.id"; "" for the block).
func (g GitHubAPI) Check(report func(field, problem string)) {
	a := g.App
	if a == nil {
		return
	}
	if !g.Token.IsZero() {
		report("", "set token or app, not both")
	}
	if a.ID <= 0 {
		report("app.id", "the GitHub App's id is required")
	}
	if a.InstallationID <= 0 {
		report("app.installationID", "the id of the app's installation is required")
	}
	if a.PrivateKey.IsZero() {
		report("app.privateKey", "the app's PEM private key is required")
	}
}

// BasicAuth is a user name and password for HTTP basic authentication.
type BasicAuth struct {
	Username string  `yaml:"username"`
	Password *Secret `yaml:"password"`
}

// Executor is one named executor with the policy every channel bound to it gets.
type Executor struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type" jsonschema:"required"`
	Policy   Policy `yaml:"policy"`
	Settings Raw    `yaml:"settings"`
	// Isolation is inProcess (default) or pod: each command in its own Pod.
	Isolation string `yaml:"isolation" jsonschema:"enum=inProcess,enum=pod"`
	// Pod shapes the command pods when isolation is pod.
	Pod PodSettings `yaml:"pod"`
}

// Policy says what an executor may do.
type Policy struct {
	Verbs []string `yaml:"verbs"`
	// Resources are written resource[.group][/subresource], as discovery
	// names them: "pods", "deployments.apps", "pods.metrics.k8s.io"; "*"
	// for any.
	Resources        []string `yaml:"resources"`
	Namespaces       []string `yaml:"namespaces"`
	DefaultNamespace string   `yaml:"defaultNamespace"`
	// Raw allows raw API paths (kubectl get --raw), each checked as the
	// resource and namespace it names.
	Raw            bool     `yaml:"raw"`
	Timeout        Duration `yaml:"timeout"`
	MaxOutputBytes int      `yaml:"maxOutputBytes" jsonschema:"minimum=0"`
	// Confirm lists verbs that first answer with Confirm and Cancel
	// buttons, and run only once confirmed; "*" is every verb beyond the
	// executor's read-only ones. (helm's writes always ask.)
	Confirm []string `yaml:"confirm"`
}

// Action runs a command when an event from a source matches.
type Action struct {
	Name    string `yaml:"name" jsonschema:"required"`
	Enabled *bool  `yaml:"enabled"`
	// Source is the source whose events trigger the action.
	Source string `yaml:"source" jsonschema:"required"`
	// Reasons limits the action to events with one of these reasons.
	Reasons []string `yaml:"reasons"`
	// Kinds limits the action to events about objects of these kinds
	// (Kustomization, Application; in any case): a github source's events
	// are about both, and each needs its own executor's command.
	Kinds []string `yaml:"kinds"`
	// Command is the command line to run, as typed after @kubechat. Words
	// may hold placeholders for the event's fields ({namespace}, {name},
	// {kind}, {reason}, {cluster}, {label:NAME}); each is replaced inside
	// its word after the line was split, so a value never becomes syntax.
	Command string `yaml:"command" jsonschema:"required"`
}

// Duration is a time.Duration written as "30s" or "2m" in YAML.
type Duration time.Duration

// DurationPattern is the regular expression of the durations the config
// schema accepts: what time.ParseDuration parses, but never negative, as
// no duration in the config means anything below zero.
const DurationPattern = `^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes d as "30s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use a value like 30s or 2m)", s)
	}
	return Duration(v), nil
}

// Defaults applied by Load.
const (
	DefaultListen          = ":8080"
	DefaultUnhealthyAfter  = 2 * time.Minute
	DefaultShutdownTimeout = 10 * time.Second
	DefaultCommandTimeout  = 30 * time.Second
	DefaultMaxOutputBytes  = 1 << 20
	DefaultDeliveryTimeout = 10 * time.Minute
	DefaultMaxBackoff      = 30 * time.Second
	// DefaultInhibitForgetAfter is Alertmanager's default repeat_interval
	// (4h) plus an hour.
	DefaultInhibitForgetAfter = 5 * time.Hour
)

func (c *Config) withDefaults() {
	if c.Cluster.StateName == "" {
		c.Cluster.StateName = "kubechat"
	}
	if c.HA.LeaseName == "" {
		c.HA.LeaseName = c.Cluster.StateName + "-leader"
	}
	if c.HA.LeaseDuration == 0 {
		c.HA.LeaseDuration = Duration(10 * time.Second)
	}
	if c.HA.RenewDeadline == 0 {
		c.HA.RenewDeadline = Duration(7 * time.Second)
	}
	if c.HA.RetryPeriod == 0 {
		c.HA.RetryPeriod = Duration(2 * time.Second)
	}
	if c.Cluster.Namespace == "" {
		c.Cluster.Namespace = "kubechat"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = DefaultListen
	}
	if c.HTTP.UnhealthyAfter == 0 {
		c.HTTP.UnhealthyAfter = Duration(DefaultUnhealthyAfter)
	}
	if c.Delivery.Deadline == 0 {
		c.Delivery.Deadline = Duration(DefaultDeliveryTimeout)
	}
	if c.Delivery.MaxBackoff == 0 {
		c.Delivery.MaxBackoff = Duration(DefaultMaxBackoff)
	}
	if c.Commands.MaxConcurrent == 0 {
		c.Commands.MaxConcurrent = DefaultMaxConcurrentCommands
	}
	if c.Commands.MaxConcurrentPerChannel == 0 {
		c.Commands.MaxConcurrentPerChannel = min(DefaultMaxConcurrentCommandsPerChannel, c.Commands.MaxConcurrent)
	}
	if c.Commands.QueueTimeout == 0 {
		c.Commands.QueueTimeout = Duration(DefaultCommandQueueTimeout)
	}
	if c.HTTP.ShutdownTimeout == 0 {
		c.HTTP.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	c.Fleet.withDefaults()
	if c.Inhibit.ForgetAfter == 0 {
		c.Inhibit.ForgetAfter = Duration(DefaultInhibitForgetAfter)
	}
	for i := range c.Channels {
		if c.Channels[i].ID == "" {
			c.Channels[i].ID = c.Channels[i].Name
		}
	}
	for i := range c.Executors {
		e := &c.Executors[i]
		if e.Name == "" {
			e.Name = e.Type
		}
		if e.Policy.Timeout == 0 {
			e.Policy.Timeout = Duration(DefaultCommandTimeout)
		}
		if e.Policy.MaxOutputBytes == 0 {
			e.Policy.MaxOutputBytes = DefaultMaxOutputBytes
		}
	}
}
