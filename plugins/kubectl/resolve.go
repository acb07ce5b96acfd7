package kubectl

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/redact"
)

// resolver turns the resource words of a command ("po", "deploy.apps",
// "all", "pods.metrics.k8s.io") into API resources, the way kubectl
// resolves them: through the API server's discovery (so CRDs and their
// short names count), category expansion ("all"), and kubectl's
// resource-or-kind parsing.
type resolver struct {
	once  sync.Once
	err   error
	disc  discovery.CachedDiscoveryInterface
	rm    *restmapper.DeferredDiscoveryRESTMapper
	short meta.RESTMapper
	cats  restmapper.CategoryExpander

	mu        sync.Mutex
	lastReset time.Time
}

// resetEvery bounds how often an unknown resource refreshes discovery (a
// CRD installed since the last look).
const resetEvery = 5 * time.Second

func (r *resolver) init(base *rest.Config) error {
	r.once.Do(func() {
		if base == nil {
			r.err = errors.New("kubectl: the agent has no cluster connection to resolve resource names")
			return
		}
		// Discovery is the same for every identity: the agent reads it as itself.
		cfg := executor.Impersonating(base, executor.Identity{Own: true}, redact.NewSet())
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			r.err = err
			return
		}
		r.disc = memory.NewMemCacheClient(dc)
		r.rm = restmapper.NewDeferredDiscoveryRESTMapper(r.disc)
		r.short = restmapper.NewShortcutExpander(r.rm, r.disc, func(string) {})
		r.cats = restmapper.NewDiscoveryCategoryExpander(r.disc)
	})
	return r.err
}

// resources resolves one comma-separated TYPE argument ("pods,deploy",
// "all") to its resources.
func (r *resolver) resources(arg string) ([]executor.Resource, error) {
	var out []executor.Resource
	for _, word := range strings.Split(strings.ToLower(arg), ",") {
		if word == "" {
			return nil, fmt.Errorf("%q has an empty resource type", arg)
		}
		if grs, ok := r.cats.Expand(word); ok {
			for _, gr := range grs {
				res, err := r.resource(gr.Resource + strings.TrimSuffix("."+gr.Group, "."))
				if err != nil {
					return nil, err
				}
				out = append(out, res)
			}
			continue
		}
		res, err := r.resource(word)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// resource resolves one resource or kind word, retrying once after a
// discovery refresh when the server seems not to have it.
func (r *resolver) resource(word string) (executor.Resource, error) {
	m, err := r.mapping(word)
	if err != nil && meta.IsNoMatchError(err) && r.mayReset() {
		r.rm.Reset()
		m, err = r.mapping(word)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return executor.Resource{}, fmt.Errorf("the server doesn't have a resource type %q", word)
		}
		return executor.Resource{}, fmt.Errorf("resolve resource type %q: %w", word, err)
	}
	return executor.Resource{
		Group:      m.Resource.Group,
		Resource:   m.Resource.Resource,
		Namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace,
	}, nil
}

func (r *resolver) mayReset() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.lastReset) < resetEvery {
		return false
	}
	r.lastReset = time.Now()
	return true
}

// mapping finds word as kubectl's resource builder does: as a resource
// (resource.version.group, resource.group, resource or a short name), else
// as a kind (Kind.version.group, Kind.group, Kind).
func (r *resolver) mapping(word string) (*meta.RESTMapping, error) {
	gvr, gr := schema.ParseResourceArg(word)
	var gvk schema.GroupVersionKind
	if gvr != nil {
		gvk, _ = r.short.KindFor(*gvr)
	}
	if gvk.Empty() {
		gvk, _ = r.short.KindFor(gr.WithVersion(""))
	}
	if !gvk.Empty() {
		return r.short.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	fullGVK, gk := schema.ParseKindArg(word)
	if fullGVK != nil {
		if m, err := r.short.RESTMapping(fullGVK.GroupKind(), fullGVK.Version); err == nil {
			return m, nil
		}
	}
	return r.short.RESTMapping(gk)
}

// nonResourcePaths are the raw paths that are not API resources and that
// chat may read: the version, health checks and discovery.
var nonResourcePaths = []string{"/version", "/healthz", "/livez", "/readyz", "/api", "/apis"}

// workloadSubresources open a connection to a workload or a node through
// the API server; they are refused on raw paths.
var workloadSubresources = sets.New("proxy", "exec", "attach", "portforward")

var requestInfo = &apirequest.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// raw analyzes a --raw path with the API server's own request parser, so
// that kubechat and the server agree on what the path names. method is
// the HTTP method kubectl will use (GET for get, DELETE for delete).
func (r *resolver) raw(rawPath, method string) (executor.Analysis, error) {
	var a executor.Analysis
	a.Raw = true
	u, err := url.Parse(rawPath)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		return a, fmt.Errorf("--raw %q: give an API path such as /api/v1/namespaces/web/pods, not a URL", rawPath)
	}
	if clean := path.Clean(u.Path); clean != u.Path && clean+"/" != u.Path {
		return a, fmt.Errorf("--raw %q: the path is not in clean form (%s)", rawPath, clean)
	}
	q := u.Query()
	for _, k := range []string{"watch", "follow"} {
		if v := q.Get(k); v == "true" || v == "1" {
			a.Streaming = true
		}
	}
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		return a, fmt.Errorf("--raw %q: %w", rawPath, err)
	}
	info, err := requestInfo.NewRequestInfo(req)
	if err != nil {
		return a, fmt.Errorf("--raw %q: %w", rawPath, err)
	}
	if info.Verb == "watch" {
		a.Streaming = true
	}
	if !info.IsResourceRequest {
		p := strings.TrimSuffix(u.Path, "/")
		for _, allowed := range nonResourcePaths {
			if p == allowed || strings.HasPrefix(p, allowed+"/") && allowed != "/version" {
				return a, nil
			}
		}
		return a, fmt.Errorf("--raw %q: kubechat reads raw paths of API resources and %s only", rawPath, strings.Join(nonResourcePaths, ", "))
	}
	if workloadSubresources.Has(info.Subresource) {
		return a, fmt.Errorf("--raw %q: the %s subresource opens a connection to a workload or node, which chat cannot use", rawPath, info.Subresource)
	}
	gvr := schema.GroupVersionResource{Group: info.APIGroup, Version: info.APIVersion, Resource: info.Resource}
	gvk, err := r.short.KindFor(gvr)
	if err != nil && meta.IsNoMatchError(err) && r.mayReset() {
		r.rm.Reset()
		gvk, err = r.short.KindFor(gvr)
	}
	if err != nil {
		return a, fmt.Errorf("--raw %q: the server doesn't have the resource %s: %w", rawPath, gvr.GroupResource(), err)
	}
	m, err := r.short.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return a, fmt.Errorf("--raw %q: %w", rawPath, err)
	}
	res := executor.Resource{Group: info.APIGroup, Resource: info.Resource, Subresource: info.Subresource,
		Namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace}
	a.Resources = []executor.Resource{res}
	switch {
	case info.Namespace != "":
		a.Namespaces = []string{info.Namespace}
	case res.Namespaced:
		a.AllNamespaces = true
	}
	return a, nil
}
