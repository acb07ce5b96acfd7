package podrun

import (
	"slices"
	"strings"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

// Placement is where the commands of a config run: in the agent, which
// impersonates the caller's identity, or in command pods, which run as
// their own ServiceAccount. The agent wraps executors and cleans up pods
// by it, and its RBAC (package rbac, and the Helm chart, which a test
// holds to it) is derived from it, so the two cannot disagree.
type Placement struct {
	// Wrapped names the executors that some channel runs in pods
	// (isolation: pod), in the order channels bind them; they are wrapped
	// with Wrap. Executors that run pods themselves (Isolated) are not.
	Wrapped []string
	// Namespaces are where command pods run, sorted: the namespaces of the
	// identities of channels whose commands run in pods, their executors'
	// pod.namespace, the namespaces an Isolated executor names, and the
	// namespaces of users' ServiceAccount identities on those channels'
	// platforms (a user's identity replaces the channel's).
	Namespaces []string
	// Impersonated are the identities of the commands the agent runs
	// itself: channels with an in-process executor bound, and users of
	// those channels' platforms, in config order, without repeats.
	Impersonated []config.Identity
}

// Place derives the placement of cfg's commands. execs are cfg's
// executors by name, built (they need no cluster connection); an Isolated
// one runs its commands in pods whatever the isolation setting says.
func Place(cfg *config.Config, execs map[string]executor.Executor) Placement {
	byName := map[string]config.Executor{}
	for _, e := range cfg.Executors {
		byName[e.Name] = e
	}
	var p Placement
	saNamespace := func(id *config.Identity) {
		if id != nil && id.ServiceAccount != "" {
			ns, _, _ := strings.Cut(id.ServiceAccount, "/")
			p.Namespaces = append(p.Namespaces, ns)
		}
	}
	impersonate := func(id *config.Identity) {
		if id != nil && !slices.ContainsFunc(p.Impersonated, func(o config.Identity) bool { return sameIdentity(o, *id) }) {
			p.Impersonated = append(p.Impersonated, *id)
		}
	}
	inProcess, inPods := map[string]bool{}, map[string]bool{} // by platform
	for _, ch := range cfg.Channels {
		for _, name := range ch.Bindings.Executors {
			ec, ok := byName[name]
			ex := execs[name]
			if !ok || ex == nil {
				continue
			}
			if iso, ok := ex.(Isolated); ok {
				inPods[ch.Platform] = true
				p.Namespaces = append(p.Namespaces, iso.PodNamespaces()...)
				saNamespace(ch.Identity)
				continue
			}
			if config.IsolationFor(ch, ec) != config.IsolationPod {
				inProcess[ch.Platform] = true
				impersonate(ch.Identity)
				continue
			}
			inPods[ch.Platform] = true
			saNamespace(ch.Identity)
			if ec.Pod.Namespace != "" {
				p.Namespaces = append(p.Namespaces, ec.Pod.Namespace)
			}
			if !slices.Contains(p.Wrapped, name) {
				p.Wrapped = append(p.Wrapped, name)
			}
		}
	}
	for _, u := range cfg.Users {
		if inProcess[u.Platform] {
			impersonate(u.Identity)
		}
		if inPods[u.Platform] {
			saNamespace(u.Identity)
		}
	}
	slices.Sort(p.Namespaces)
	p.Namespaces = slices.Compact(p.Namespaces)
	return p
}

func sameIdentity(a, b config.Identity) bool {
	return a.ServiceAccount == b.ServiceAccount && a.User == b.User && slices.Equal(a.Groups, b.Groups)
}
