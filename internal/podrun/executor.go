package podrun

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

// DefaultDeadline is a command pod's deadline when neither the executor's
// pod.deadline nor the command's context sets one.
const DefaultDeadline = 5 * time.Minute

// deadlineMargin is kept between a pod's deadline and the command's
// timeout, so that the pod's DeadlineExceeded is seen and reported (and
// its output read) before the command handler gives up on the command.
const deadlineMargin = 5 * time.Second

// Options shape the pods of a wrapped executor.
type Options struct {
	// Type is the executor type the pod runs ("kubectl"), as "kubechat exec -- <type> ...".
	Type string
	// Settings is the executor's settings block, handed to the pod.
	Settings config.Raw
	// Pod is the executor's pod settings, with defaults applied; Image must be set.
	Pod config.PodSettings
}

// Executor runs the commands of another executor in pods: the pod runs the
// same executor code, as "kubechat exec -- <type> <args>", with the pod's
// own ServiceAccount as its identity. Policy is checked by the command handler
// before Execute, with the wrapped executor's Analyze, as in-process.
type Executor struct {
	inner  executor.Executor
	runner *Runner
	opts   Options
}

// Analyze is the wrapped executor's.
func (e *Executor) Analyze(ctx context.Context, args []string) (executor.Analysis, error) {
	return e.inner.Analyze(ctx, args)
}

// OpaqueResources is the wrapped executor's, if it has one.
func (e *Executor) OpaqueResources() string {
	if o, ok := e.inner.(executor.OpaqueResources); ok {
		return o.OpaqueResources()
	}
	return ""
}

// Wrap returns an executor that runs inner's commands in pods. It keeps
// inner's name, read-only verbs and Analyze; it offers no command builder,
// since that would list the cluster with the agent's impersonation.
func Wrap(inner executor.Executor, runner *Runner, opts Options) (executor.Executor, error) {
	if opts.Pod.Image == "" {
		return nil, fmt.Errorf("executor %q: pod.image: no image to run commands in (set it, or run the agent with $KUBECHAT_IMAGE, as the Helm chart does)", inner.Name())
	}
	return &Executor{inner: inner, runner: runner, opts: opts}, nil
}

// Name is the wrapped executor's name.
func (e *Executor) Name() string { return e.inner.Name() }

// ReadOnlyVerbs are the wrapped executor's.
func (e *Executor) ReadOnlyVerbs() []string {
	if ro, ok := e.inner.(executor.ReadOnly); ok {
		return ro.ReadOnlyVerbs()
	}
	return executor.ReadOnlyVerbs
}

// ExecArgs is the argv after the image's entrypoint that runs one command
// of executor type typ in a pod: "exec [flags] -- <type> <args...>".
func ExecArgs(typ string, settings config.Raw, req executor.Request) ([]string, error) {
	argv := []string{"exec"}
	if req.Namespace != "" {
		argv = append(argv, "--namespace", req.Namespace)
	}
	if req.MaxOutputBytes > 0 {
		argv = append(argv, "--max-output-bytes", strconv.Itoa(req.MaxOutputBytes))
	}
	if !settings.IsZero() {
		b, err := yaml.Marshal(settings)
		if err != nil {
			return nil, fmt.Errorf("encode the executor's settings: %w", err)
		}
		argv = append(argv, "--settings", string(b))
	}
	argv = append(argv, "--", typ)
	return append(argv, req.Args...), nil
}

// PodIdentity returns the namespace and ServiceAccount a command of id runs
// as in a pod: a pod runs as a ServiceAccount of its own namespace, so id
// must be one, in namespace when that is set.
func PodIdentity(id executor.Identity, namespace string) (ns, sa string, err error) {
	ns, sa, ok := id.ServiceAccount()
	if !ok {
		return "", "", fmt.Errorf("%w: commands in pods run as a ServiceAccount, and %s is not one (set the channel's identity.serviceAccount)", executor.ErrDenied, id.User)
	}
	if namespace != "" && namespace != ns {
		return "", "", fmt.Errorf("%w: command pods run in namespace %s, and a pod can only run as a ServiceAccount of its own namespace; %s is in %s", executor.ErrDenied, namespace, sa, ns)
	}
	return ns, sa, nil
}

// Deadline is the pod deadline for a command: configured, else the
// context's remaining time less a margin, else DefaultDeadline.
func Deadline(ctx context.Context, configured time.Duration) time.Duration {
	if configured > 0 {
		return configured
	}
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl)-deadlineMargin, time.Second)
	}
	return DefaultDeadline
}

// Execute runs one command in a pod as req.Identity's ServiceAccount and
// returns its output. The agent's own token never reaches the pod.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	ns, sa, err := PodIdentity(req.Identity, e.opts.Pod.Namespace)
	if err != nil {
		return executor.Result{}, err
	}
	args, err := ExecArgs(e.opts.Type, e.opts.Settings, req)
	if err != nil {
		return executor.Result{}, err
	}
	out, err := e.runner.Run(ctx, Spec{
		Namespace:       ns,
		ServiceAccount:  sa,
		Executor:        e.inner.Name(),
		Image:           e.opts.Pod.Image,
		ImagePullPolicy: e.opts.Pod.ImagePullPolicy,
		Args:            args,
		// The root filesystem is read-only: caches and config go to /tmp.
		Env:            map[string]string{"HOME": "/tmp"},
		Resources:      e.opts.Pod.Resources,
		Deadline:       Deadline(ctx, e.opts.Pod.Deadline.D()),
		MaxOutputBytes: req.MaxOutputBytes,
		Reply:          replyTo(req.Caller),
	})
	if err != nil {
		return executor.Result{}, fmt.Errorf("%s in a pod: %w", e.inner.Name(), err)
	}
	return Result(out), nil
}

// Result maps a pod's Outcome to what the command handler renders. "kubechat exec"
// writes the command's standard output, then its standard error, and the
// log holds both; so a failed command's log is shown as its errors. A
// command stopped for memory or time says so first.
func Result(o Outcome) executor.Result {
	res := executor.Result{Output: o.Output, ExitCode: o.ExitCode, Truncated: o.Truncated}
	if o.ExitCode != 0 {
		res.Output, res.Errors = "", o.Output
		res.Forbidden = executor.LooksForbidden(o.Output)
	}
	var why string
	switch o.Reason {
	case ReasonOOMKilled:
		why = fmt.Sprintf("Stopped: the command's pod %s went over its memory limit", o.Pod)
		if o.MemoryLimit != "" {
			why += " of " + o.MemoryLimit
		}
		why += " and was killed (OOMKilled)."
	case ReasonDeadlineExceeded:
		why = fmt.Sprintf("Stopped: the command's pod %s ran past its deadline of %s and was killed (DeadlineExceeded).", o.Pod, o.Deadline)
	}
	if why != "" {
		res.Forbidden = false
		if res.ExitCode == 0 {
			res.ExitCode = 1
		}
		if o.Output != "" {
			why += " Its output until then:\n" + o.Output
		}
		res.Output, res.Errors = "", why
	}
	if res.ExitCode != 0 && res.Errors == "" && o.Message == "" {
		res.Errors = fmt.Sprintf("The command's pod %s ended with exit code %d (%s) and printed nothing.", o.Pod, o.ExitCode, o.Reason)
	}
	if o.Message != "" && (o.ExitCode != 0 || o.Output == "") && !strings.Contains(res.Errors, o.Message) {
		res.Errors = strings.TrimRight(res.Errors, "\n") + "\n" + o.Message
		res.Errors = strings.TrimLeft(res.Errors, "\n")
	}
	return res
}

// Isolated is implemented by executors that run every command in a pod
// themselves (the run executor): they are never wrapped, and the agent
// cleans up leftovers in the namespaces they name.
type Isolated interface {
	PodNamespaces() []string
}

// replyTo is where the reply to c goes, if c says (a chat command or an
// action; not "kubechat exec").
func replyTo(c executor.Caller) *Reply {
	if c.Platform == "" || c.ChannelID == "" {
		return nil
	}
	return &Reply{Platform: c.Platform, Channel: c.ChannelID, ChannelName: c.Channel,
		ThreadChannel: c.ThreadChannel, ThreadID: c.ThreadID, ThreadRoot: c.ThreadRoot}
}
