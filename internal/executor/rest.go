package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/redact"
)

// Impersonating returns a copy of base that acts as id (or as itself, when
// id.Own is set), speaks JSON (so that Secret values can be seen), records
// the value of every Secret that passes through it in secrets, for masking
// the output, and connects to base's API server and nowhere else.
func Impersonating(base *rest.Config, id Identity, secrets *redact.Set) *rest.Config {
	return impersonating(base, id, func(rt http.RoundTripper) http.RoundTripper { return redact.Transport(secrets, rt) })
}

// ImpersonatingMasked is Impersonating, except that the client never sees
// a Secret's values: the transport replaces them with placeholders of the
// same length before the client decodes a response (redact.MaskingTransport).
// Use it for tools whose output a chat user shapes (kubectl templates,
// jsonpath, raw requests), which text masking alone cannot cover.
func ImpersonatingMasked(base *rest.Config, id Identity, secrets *redact.Set) *rest.Config {
	return impersonating(base, id, func(rt http.RoundTripper) http.RoundTripper { return redact.MaskingTransport(secrets, rt) })
}

func impersonating(base *rest.Config, id Identity, wrap func(http.RoundTripper) http.RoundTripper) *rest.Config {
	cfg := rest.CopyConfig(base)
	if !id.Own {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: id.User, Groups: slices.Clone(id.Groups)}
	}
	cfg.AcceptContentTypes = "application/json"
	cfg.ContentType = "application/json"
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return wrap(rt)
	}
	cfg.Dial = apiServerOnly(base)
	return cfg
}

// ErrConnectionRefused is returned by a command's dialer for any address
// but its API server's.
var ErrConnectionRefused = errors.New("kubechat connects commands to the API server only")

// apiServerOnly returns a dialer that connects to base's API server (or to
// the proxy the environment names for it) and refuses every other
// address, so nothing a command does can reach another host or port.
func apiServerOnly(base *rest.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	allowed := map[string]bool{}
	if u, err := serverURL(base.Host); err == nil {
		allowed[hostPort(u)] = true
		if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err == nil && p != nil {
			allowed[hostPort(p)] = true
		}
	}
	next := base.Dial
	if next == nil {
		next = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if !strings.HasPrefix(network, "tcp") || !allowed[strings.ToLower(addr)] {
			return nil, fmt.Errorf("dial %s %s: %w", network, addr, ErrConnectionRefused)
		}
		return next(ctx, network, addr)
	}
}

func serverURL(host string) (*url.URL, error) {
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	return url.Parse(host)
}

// hostPort is u's host:port as a dialer is asked for it, with the
// scheme's default port.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port))
}

// ConfigFlags returns command-line client options (a RESTClientGetter) whose
// every client uses cfg, whatever a kubeconfig, server or identity flag
// says: no kubeconfig file is read. A nil cfg gives flags for parsing only.
func ConfigFlags(cfg *rest.Config, cacheDir string) *genericclioptions.ConfigFlags {
	flags := genericclioptions.NewConfigFlags(true).WithDiscoveryBurst(300).WithDiscoveryQPS(50)
	noKubeconfig := os.DevNull
	flags.KubeConfig = &noKubeconfig
	flags.CacheDir = &cacheDir
	if cfg != nil {
		host := cfg.Host
		flags.APIServer = &host
		flags.WrapConfigFn = func(*rest.Config) *rest.Config { return rest.CopyConfig(cfg) }
	}
	return flags
}

// CheckIdentity refuses to run the in-process tool name without a cluster
// connection, or without an identity to act as: a user to impersonate, or
// the connection's own (kubechat exec in a command pod). Every executor
// that reaches the cluster checks this before anything else.
func CheckIdentity(name string, base *rest.Config, id Identity) error {
	if base == nil {
		return fmt.Errorf("%s: the agent has no cluster connection", name)
	}
	if id.User == "" && !id.Own {
		return fmt.Errorf("%s: %w: no identity to act as (configure the channel's identity)", name, ErrDenied)
	}
	return nil
}

// RunFunc runs one command in-process with cfg, writing as the command-line
// tool would, and returns its exit code.
type RunFunc func(cfg *rest.Config, secrets *redact.Set, stdout, stderr io.Writer) int

// RunInProcess runs an in-process command-line tool (name: "kubectl",
// "helm") for req: it refuses to run without an identity, impersonates
// req.Identity over base, gives each request the context's remaining time,
// caps the output at req.MaxOutputBytes and masks the values of every
// Secret the tool saw. It returns when run ends or ctx is done; a run
// abandoned on cancellation ends soon after, as its requests time out.
func RunInProcess(ctx context.Context, name string, base *rest.Config, req Request, run RunFunc) (Result, error) {
	return runInProcess(ctx, name, base, req, Impersonating, run)
}

// RunInProcessMasked is RunInProcess over ImpersonatingMasked: the tool
// never sees a Secret's values.
func RunInProcessMasked(ctx context.Context, name string, base *rest.Config, req Request, run RunFunc) (Result, error) {
	return runInProcess(ctx, name, base, req, ImpersonatingMasked, run)
}

// WarningCount is how many distinct warnings the API server sent to a
// client of cfg, a config that RunInProcess gave a RunFunc.
func WarningCount(cfg *rest.Config) int {
	if c, ok := cfg.WarningHandler.(interface{ WarningCount() int }); ok {
		return c.WarningCount()
	}
	return 0
}

func runInProcess(ctx context.Context, name string, base *rest.Config, req Request,
	impersonate func(*rest.Config, Identity, *redact.Set) *rest.Config, run RunFunc,
) (Result, error) {
	if err := CheckIdentity(name, base, req.Identity); err != nil {
		return Result{}, err
	}
	secrets := redact.NewSet()
	cfg := impersonate(base, req.Identity, secrets)
	if dl, ok := ctx.Deadline(); ok {
		cfg.Timeout = time.Until(dl)
	}
	limit := req.MaxOutputBytes
	if limit <= 0 {
		limit = config.DefaultMaxOutputBytes
	}
	stdout, stderr := &cappedBuffer{max: limit}, &cappedBuffer{max: limit}
	// Warnings from the API server go to this command's own errors, not
	// to a process-wide handler that concurrent commands would share.
	cfg.WarningHandler = rest.NewWarningWriter(stderr, rest.WarningWriterOptions{Deduplicate: true})
	done := make(chan int, 1)
	go func() {
		defer func() {
			// A panic in a large library must cost one command, not the agent.
			if r := recover(); r != nil {
				fmt.Fprintf(stderr, "error: %s failed: %v\n", name, r)
				done <- 1
			}
		}()
		done <- run(cfg, secrets, stdout, stderr)
	}()
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	mask := func(b *cappedBuffer) string {
		if b.truncated {
			return secrets.RedactCut(b.String())
		}
		return secrets.Redact(b.String())
	}
	out, errs := mask(stdout), mask(stderr)
	return Result{
		Output:    out,
		Errors:    errs,
		ExitCode:  code,
		Truncated: stdout.truncated || stderr.truncated,
		Forbidden: LooksForbidden(errs),
	}, nil
}

// LooksForbidden reports whether a command's error output says Kubernetes
// RBAC refused one of its requests: kubectl prints "(Forbidden)", client
// errors print "is forbidden: User ...".
func LooksForbidden(errs string) bool {
	return strings.Contains(errs, "(Forbidden)") || strings.Contains(errs, "is forbidden: User ")
}

// cappedBuffer keeps at most max bytes and remembers that it dropped some.
type cappedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); len(p) > room {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RecordSecrets records in set the value of every Secret of namespace,
// listed with cs. Callers pass the agent's own client: the values are read
// only to mask them in what leaves the agent (a model's prompt, a GitHub
// issue), which may hold them though the caller could not read them (a
// pod's logs print its environment). An error means they are unknown, and
// nothing from that namespace may leave.
func RecordSecrets(ctx context.Context, cs kubernetes.Interface, namespace string, set *redact.Set) error {
	if cs == nil {
		return errors.New("the agent runs without a cluster connection")
	}
	list, err := cs.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("cannot read the Secrets of namespace %q to mask their values: %v", namespace, err)
	}
	for _, s := range list.Items {
		for _, v := range s.Data {
			set.Add(string(v))
		}
	}
	return nil
}
