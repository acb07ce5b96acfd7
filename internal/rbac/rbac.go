// Package rbac derives, from a loaded config, the Kubernetes RBAC the
// agent needs and nothing more: list and watch on the resources its
// sources watch, impersonate on the identities of the commands it runs
// itself, pods in the namespaces command pods run in, and its own
// ConfigMaps and Lease. "kubechat rbac" prints it; the Helm chart renders
// the same objects with the same names, and a test in helm/ holds the two
// together.
//
// Where commands run, and so who is impersonated and where pods run, is
// podrun.Place: the same derivation the agent itself runs by.
package rbac

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/plugins"
)

// Options name the agent's installation.
type Options struct {
	// Namespace is where the agent's ServiceAccount lives (default:
	// cluster.namespace, where the agent keeps its ConfigMaps and Lease).
	Namespace string
	// Release is the installation's name; objects are named after it as
	// the Helm chart names them (default: kubechat). See Name and
	// WideName.
	Release string
	// ServiceAccount is the agent's ServiceAccount (default: Name(Release)).
	ServiceAccount string
}

func (o Options) withDefaults(cfg *config.Config) Options {
	if o.Namespace == "" {
		o.Namespace = cfg.Cluster.Namespace
	}
	if o.Release == "" {
		o.Release = "kubechat"
	}
	if o.ServiceAccount == "" {
		o.ServiceAccount = Name(o.Release)
	}
	return o
}

// Name is the name of a release's objects, as the chart's
// "kubechat.fullname" makes it: the release name if it contains
// "kubechat", else "<release>-kubechat", at most 63 characters.
func Name(release string) string {
	name := release
	if !strings.Contains(release, "kubechat") {
		name = release + "-kubechat"
	}
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimSuffix(name, "-")
}

// WideName prefixes the names of a release's objects that are
// cluster-scoped or in namespaces other than its own: Name(release) and
// the namespace of the agent's ServiceAccount, so that releases of one
// name in two namespaces never share such an object. The chart names them
// the same way.
func WideName(release, namespace string) string {
	return Name(release) + "-" + namespace
}

// Objects returns the RBAC objects the agent needs to run with cfg, in a
// stable order: Roles and ClusterRoles, each followed by its binding to
// the agent's ServiceAccount. cfg must be loaded (defaults applied and
// validated).
func Objects(cfg *config.Config, o Options) ([]client.Object, error) {
	o = o.withDefaults(cfg)
	execs, err := plugins.Build(cfg, executor.Deps{Cluster: cfg.Cluster.Name})
	if err != nil {
		return nil, fmt.Errorf("build executors: %w", err)
	}
	place := podrun.Place(cfg, execs)
	b := builder{release: o.Release,
		subject: rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: o.ServiceAccount, Namespace: o.Namespace}}
	wide := WideName(o.Release, o.Namespace)

	b.role(cfg.Cluster.Namespace, Name(o.Release), own(cfg))
	if w := watched(cfg); len(w) > 0 {
		b.clusterRole(wide+"-watch", w)
	}
	if slices.ContainsFunc(cfg.Executors, func(e config.Executor) bool { return e.Type == "ai" || e.Type == "github" }) {
		// The AI assistant and the github executor mask the values of the
		// Secrets of each namespace they look into before anything is sent
		// to the model or to GitHub.
		b.clusterRole(wide+"-mask", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}})
	}
	users, groups, sas := impersonated(place.Impersonated)
	var imp []rbacv1.PolicyRule
	if len(users) > 0 {
		imp = append(imp, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}, ResourceNames: users})
	}
	if len(groups) > 0 {
		imp = append(imp, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"groups"}, Verbs: []string{"impersonate"}, ResourceNames: groups})
	}
	if len(imp) > 0 {
		b.clusterRole(wide+"-impersonate", imp)
	}
	for _, ns := range sortedKeys(sas) {
		b.role(ns, wide+"-impersonate", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}, ResourceNames: sas[ns]},
		})
	}
	for _, ns := range place.Namespaces {
		b.role(ns, wide+"-command-pods", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "list", "watch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		})
	}
	argoCD(cfg, &b, wide)
	return b.objs, nil
}

// argoCD grants each channel's identity what the policy of each argocd
// executor bound to the channel lets it do with Argo CD Applications: get,
// list and watch, and patch where the policy allows app sync, refresh or
// rollback (they write the Application). It is granted in the policy's
// namespaces, or cluster-wide when the policy allows any namespace. The
// argocd executor reaches nothing else, so nothing else is granted.
func argoCD(cfg *config.Config, b *builder, wide string) {
	byName := map[string]config.Executor{}
	for _, e := range cfg.Executors {
		byName[e.Name] = e
	}
	for _, ch := range cfg.Channels {
		subject, ok := identitySubject(ch.Identity)
		if !ok {
			continue
		}
		for _, name := range ch.Bindings.Executors {
			e, ok := byName[name]
			if !ok || e.Type != "argocd" {
				continue
			}
			verbs := []string{"get", "list", "watch"}
			for _, v := range e.Policy.Verbs {
				if v == "*" || v == "app sync" || v == "app refresh" || v == "app rollback" {
					verbs = append(verbs, "patch")
					break
				}
			}
			rules := []rbacv1.PolicyRule{{APIGroups: []string{"argoproj.io"}, Resources: []string{"applications"}, Verbs: verbs}}
			objName := wide + "-argocd-" + ch.Name + "-" + name
			if len(e.Policy.Namespaces) == 0 || slices.Contains(e.Policy.Namespaces, "*") {
				b.bound(b.clusterRoleOnly(objName, rules), subject)
				continue
			}
			for _, ns := range sortedSet(slices.Clone(e.Policy.Namespaces)) {
				b.bound(b.roleOnly(ns, objName, rules), subject)
			}
		}
	}
}

// identitySubject is the RBAC subject of an identity: its ServiceAccount,
// or its user (its groups stay unbound: they are others' too).
func identitySubject(id *config.Identity) (rbacv1.Subject, bool) {
	if id == nil {
		return rbacv1.Subject{}, false
	}
	user := id.User
	if id.ServiceAccount != "" {
		ns, name, _ := strings.Cut(id.ServiceAccount, "/")
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}, true
	}
	if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		ns, name, _ := strings.Cut(rest, ":")
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}, true
	}
	if user == "" {
		return rbacv1.Subject{}, false
	}
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}, true
}

// own is what the agent keeps in its namespace: its ConfigMaps (the state
// is watched, so both replicas see it) and its leader Lease; leader
// election records its changes as Events.
func own(cfg *config.Config) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{cfg.Cluster.StateConfigMap(), cfg.Cluster.OutboxConfigMap(), cfg.Cluster.ButtonsConfigMap()},
			Verbs:         []string{"get", "update", "list", "watch"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{cfg.HA.LeaseName}, Verbs: []string{"get", "update"}},
	}
}

// watched is list and watch on exactly what the kubernetes sources watch,
// list on Kustomizations, GitRepositories and Argo CD Applications for a
// github source,
// and get on Services and Secrets for the Ingress recommendation, which
// checks that an Ingress's backends and TLS Secrets exist (by metadata,
// but RBAC has no metadata-only verb).
func watched(cfg *config.Config) []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	ingressBackends := false
	gitops := false
	for _, s := range cfg.Sources {
		gitops = gitops || s.Type == config.SourceGitHub
		if s.Type != config.SourceKubernetes || s.Kubernetes == nil {
			continue
		}
		for _, r := range s.Kubernetes.Resources {
			gvr, err := config.ParseGVR(r.Type)
			if err != nil {
				continue // Load refuses it
			}
			rule := rbacv1.PolicyRule{APIGroups: []string{gvr.Group}, Resources: []string{gvr.Resource}, Verbs: []string{"list", "watch"}}
			if !slices.ContainsFunc(rules, func(o rbacv1.PolicyRule) bool { return o.APIGroups[0] == gvr.Group && o.Resources[0] == gvr.Resource }) {
				rules = append(rules, rule)
			}
		}
		ingressBackends = ingressBackends || s.Kubernetes.Recommendations.IngressBackends
	}
	if ingressBackends {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services", "secrets"}, Verbs: []string{"get"}})
	}
	if gitops {
		// A github source finds the Kustomizations and Argo CD
		// Applications a pull request touches.
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{"kustomize.toolkit.fluxcd.io"}, Resources: []string{"kustomizations"}, Verbs: []string{"list"}},
			rbacv1.PolicyRule{APIGroups: []string{"source.toolkit.fluxcd.io"}, Resources: []string{"gitrepositories"}, Verbs: []string{"list"}},
			rbacv1.PolicyRule{APIGroups: []string{"argoproj.io"}, Resources: []string{"applications"}, Verbs: []string{"list"}})
	}
	return rules
}

// impersonated is what impersonating ids takes, as the API server checks
// it: each user (a ServiceAccount's user name is checked as that
// ServiceAccount, in its namespace), and each group, sorted.
func impersonated(ids []config.Identity) (users, groups []string, sas map[string][]string) {
	sas = map[string][]string{}
	for _, id := range ids {
		user, gs := id.UserInfo()
		if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
			ns, name, _ := strings.Cut(rest, ":")
			sas[ns] = append(sas[ns], name)
		} else {
			users = append(users, user)
		}
		groups = append(groups, gs...)
	}
	for ns := range sas {
		sas[ns] = sortedSet(sas[ns])
	}
	return sortedSet(users), sortedSet(groups), sas
}

func sortedSet(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// builder appends roles with their bindings to the agent's ServiceAccount.
type builder struct {
	release string
	subject rbacv1.Subject
	objs    []client.Object
}

func (b *builder) meta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{
		"app.kubernetes.io/name":     "kubechat",
		"app.kubernetes.io/instance": b.release,
	}}
}

func (b *builder) role(namespace, name string, rules []rbacv1.PolicyRule) {
	b.bound(b.roleOnly(namespace, name, rules), b.subject)
}

func (b *builder) clusterRole(name string, rules []rbacv1.PolicyRule) {
	b.bound(b.clusterRoleOnly(name, rules), b.subject)
}

// roleOnly appends a Role; bound binds it.
func (b *builder) roleOnly(namespace, name string, rules []rbacv1.PolicyRule) client.Object {
	r := &rbacv1.Role{TypeMeta: typeMeta("Role"), ObjectMeta: b.meta(namespace, name), Rules: rules}
	b.objs = append(b.objs, r)
	return r
}

func (b *builder) clusterRoleOnly(name string, rules []rbacv1.PolicyRule) client.Object {
	r := &rbacv1.ClusterRole{TypeMeta: typeMeta("ClusterRole"), ObjectMeta: b.meta("", name), Rules: rules}
	b.objs = append(b.objs, r)
	return r
}

// bound appends the binding of role (from roleOnly or clusterRoleOnly) to subject.
func (b *builder) bound(role client.Object, subject rbacv1.Subject) {
	if _, ok := role.(*rbacv1.ClusterRole); ok {
		b.objs = append(b.objs, &rbacv1.ClusterRoleBinding{TypeMeta: typeMeta("ClusterRoleBinding"), ObjectMeta: b.meta("", role.GetName()),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.GetName()}, Subjects: []rbacv1.Subject{subject}})
		return
	}
	b.objs = append(b.objs, &rbacv1.RoleBinding{TypeMeta: typeMeta("RoleBinding"), ObjectMeta: b.meta(role.GetNamespace(), role.GetName()),
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.GetName()}, Subjects: []rbacv1.Subject{subject}})
}

func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: kind}
}

// YAML renders objs as YAML documents separated by "---", ready for
// kubectl apply -f.
func YAML(objs []client.Object) ([]byte, error) {
	var out []byte
	for i, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, b...)
	}
	return out, nil
}
