// Package podrun runs commands in short-lived pods, in the manner of
// Airflow's KubernetesExecutor: one pod per command, with its own
// ServiceAccount, resources, deadline and image, so a command that fails or
// eats memory cannot hurt the agent or other commands.
//
// A Runner creates the pod, waits for it to terminate, reads its output
// through the pods/log API, maps the container's exit to an Outcome (exit
// code, OOMKilled, DeadlineExceeded) and always deletes the pod. Cleanup
// deletes pods left behind by an agent that died mid-command. Wrap turns
// any executor into one that runs its commands this way, through
// "kubechat exec" in the pod.
package podrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/config"
)

// Labels on every command pod. Cleanup finds leftovers by them.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "kubechat"
	// LabelCommand marks a command pod.
	LabelCommand = "kubechat.io/command-pod"
	// LabelCluster is the agent's cluster name.
	LabelCluster = "kubechat.io/cluster"
	// LabelAgent identifies the agent process that created the pod.
	LabelAgent = "kubechat.io/agent"
	// LabelExecutor is the configured executor name.
	LabelExecutor = "kubechat.io/executor"
)

// ContainerName is the container that runs the command.
const ContainerName = "command"

// Reasons an Outcome reports besides the container's own.
const (
	ReasonOOMKilled        = "OOMKilled"
	ReasonDeadlineExceeded = "DeadlineExceeded"
)

// Spec is one command pod.
type Spec struct {
	Namespace      string
	ServiceAccount string
	// Executor names the pod ("kubechat-<executor>-...") and labels it.
	Executor        string
	Image           string
	ImagePullPolicy string
	// Command replaces the image's entrypoint when set; Args follow it.
	Command   []string
	Args      []string
	Env       map[string]string
	Resources config.PodResources
	// Deadline is the pod's activeDeadlineSeconds (rounded up to seconds).
	Deadline time.Duration
	// MaxOutputBytes caps the output read back (default config.DefaultMaxOutputBytes).
	MaxOutputBytes int
	// Reply, when set, is written on the pod (annotations), so that if the
	// agent stops while the command runs, the pod is left running and the
	// next agent posts its result there (Adopt).
	Reply *Reply
}

// Outcome is how a command pod ended.
type Outcome struct {
	Pod string
	// Output is the container's log (standard output and error, interleaved).
	Output    string
	Truncated bool
	ExitCode  int
	// Reason is the container's termination reason (Completed, Error,
	// OOMKilled) or the pod's (DeadlineExceeded).
	Reason string
	// Message is the termination message, or why the output could not be read.
	Message string
	// Deadline and MemoryLimit are what the pod ran with, for messages.
	Deadline    time.Duration
	MemoryLimit string
	// Phases is where the time went.
	Phases Phases
}

// Phases splits a command pod's life as the Runner saw it: the API's
// create call, until the pod was bound to a node, until its container
// started, until it ended, and reading its output back. The watch sees
// states, not each change: a command that ends before the watch reports
// it running counts its run in Start.
type Phases struct {
	Create, Schedule, Start, Run, Collect time.Duration
}

// each lists p's phases by name, in order.
func (p Phases) each() []struct {
	name string
	d    time.Duration
} {
	return []struct {
		name string
		d    time.Duration
	}{{"create", p.Create}, {"schedule", p.Schedule}, {"start", p.Start}, {"run", p.Run}, {"collect", p.Collect}}
}

// phaseSeconds is kubechat_command_pod_phase_seconds.
var phaseSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "kubechat_command_pod_phase_seconds",
	Help:    "Time a command pod spent in each phase of its life: create, schedule, start, run, collect.",
	Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
}, []string{"phase"})

func init() {
	for _, ph := range (Phases{}).each() {
		phaseSeconds.WithLabelValues(ph.name) // served from the start, at 0
	}
}

// RegisterMetrics registers the command pods' metrics with reg (once per
// registry; every Runner of the process observes them).
func RegisterMetrics(reg prometheus.Registerer) error {
	return reg.Register(phaseSeconds)
}

// Runner creates command pods with the agent's own connection: it needs
// create, get, list, watch and delete on pods, and get on pods/log, in the
// namespaces command pods run in. What the command itself may do is the
// pod's ServiceAccount's business.
type Runner struct {
	client  kubernetes.Interface
	cluster string
	agent   string
	log     *slog.Logger
}

// New returns a Runner for the agent of cluster. It does not contact the cluster.
func New(client kubernetes.Interface, cluster string, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	agent := labelValue(fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b)))
	return &Runner{client: client, cluster: cluster, agent: agent, log: log.With("component", "podrun")}
}

// Agent is the value of LabelAgent on the pods this Runner creates.
func (r *Runner) Agent() string { return r.agent }

// Selector selects the command pods of this cluster's agents.
func (r *Runner) Selector() string {
	return LabelCommand + "=true," + LabelCluster + "=" + labelValue(r.cluster)
}

// ErrPodGone means the command pod was deleted before it finished.
var ErrPodGone = errors.New("the command pod was deleted before it finished")

// StartError says why a command pod cannot start (an image that cannot be
// pulled, a missing ConfigMap or Secret, an invalid image name).
type StartError struct {
	Pod, Reason, Message string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("the command pod %s cannot start: %s: %s", e.Pod, e.Reason, e.Message)
}

// Run creates the pod for s, waits until it terminates, reads its output
// and deletes it, whatever happened. It returns an error when the pod could
// not be created, could not start, vanished, or ctx ended first; a command
// that ran and failed is an Outcome with a non-zero ExitCode.
func (r *Runner) Run(ctx context.Context, s Spec) (Outcome, error) {
	pod, err := r.Pod(s)
	if err != nil {
		return Outcome{}, err
	}
	name := pod.Name
	start := time.Now()
	created, err := r.client.CoreV1().Pods(s.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		// The server may have stored the pod before the call failed (a
		// timeout, a cancelled context); a name taken by another pod is not ours.
		if !apierrors.IsAlreadyExists(err) {
			r.delete(s.Namespace, name)
		}
		return Outcome{}, fmt.Errorf("create the command pod in %s: %w", s.Namespace, err)
	}
	defer func() {
		// A stop of the agent (its context cancelled, not the command's
		// deadline) leaves a pod that says where its result goes to the
		// next agent.
		if s.Reply != nil && errors.Is(ctx.Err(), context.Canceled) {
			r.log.Info("command pod left running for the next agent", "pod", s.Namespace+"/"+name)
			return
		}
		r.delete(s.Namespace, name)
	}()
	r.log.Debug("command pod created", "pod", s.Namespace+"/"+name, "executor", s.Executor)

	seen := stamps{created: time.Now()}
	done, err := r.wait(ctx, created, &seen)
	if err != nil {
		return Outcome{Pod: name}, err
	}
	limit := s.MaxOutputBytes
	if limit <= 0 {
		limit = config.DefaultMaxOutputBytes
	}
	out := r.collect(ctx, done, limit)
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	out.Phases = seen.phases(start, time.Now())
	for _, ph := range out.Phases.each() {
		phaseSeconds.WithLabelValues(ph.name).Observe(ph.d.Seconds())
	}
	return out, nil
}

// stamps are when the Runner saw a command pod created, bound to a node,
// with its container started, and ended.
type stamps struct {
	created, scheduled, started, ended time.Time
}

// see stamps what p shows for the first time.
func (s *stamps) see(p *corev1.Pod) {
	now := time.Now()
	if s.scheduled.IsZero() && p.Spec.NodeName != "" {
		s.scheduled = now
	}
	if s.started.IsZero() {
		for _, c := range p.Status.ContainerStatuses {
			if c.State.Running != nil || c.State.Terminated != nil {
				s.started = now
			}
		}
	}
	if s.ended.IsZero() && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
		s.ended = now
	}
}

// phases are the durations between the stamps, from start (before the
// create call) to collected; a stamp never seen takes the next one's time.
func (s *stamps) phases(start, collected time.Time) Phases {
	ended := or(s.ended, collected)
	started := or(s.started, ended)
	scheduled := or(s.scheduled, started)
	return Phases{
		Create:   s.created.Sub(start),
		Schedule: scheduled.Sub(s.created),
		Start:    started.Sub(scheduled),
		Run:      ended.Sub(started),
		Collect:  collected.Sub(ended),
	}
}

func or(t, otherwise time.Time) time.Time {
	if t.IsZero() {
		return otherwise
	}
	return t
}

// collect reads how the finished pod p ended and up to limit bytes of its output.
func (r *Runner) collect(ctx context.Context, p *corev1.Pod, limit int) Outcome {
	out := Outcome{Pod: p.Name}
	if d := p.Spec.ActiveDeadlineSeconds; d != nil {
		out.Deadline = time.Duration(*d) * time.Second
	}
	for _, c := range p.Spec.Containers {
		if m, ok := c.Resources.Limits[corev1.ResourceMemory]; c.Name == ContainerName && ok {
			out.MemoryLimit = m.String()
		}
	}
	out.ExitCode, out.Reason, out.Message = termination(p)
	logs, truncated, lerr := r.logs(ctx, p.Namespace, p.Name, limit)
	out.Output, out.Truncated = logs, truncated
	if lerr != nil && ctx.Err() == nil {
		msg := "its output could not be read: " + lerr.Error()
		if out.Message != "" {
			msg = out.Message + "; " + msg
		}
		out.Message = msg
	}
	return out
}

// wait watches the pod until it has Succeeded or Failed, stamping in
// seen what it saw when.
func (r *Runner) wait(ctx context.Context, pod *corev1.Pod, seen *stamps) (*corev1.Pod, error) {
	pods := r.client.CoreV1().Pods(pod.Namespace)
	sel := fields.OneTermEqualSelector("metadata.name", pod.Name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return pods.Watch(ctx, o)
		},
	}
	var last *corev1.Pod
	ev, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, func(store cache.Store) (bool, error) {
		if _, exists, err := store.Get(pod); err == nil && !exists {
			return true, ErrPodGone
		}
		return false, nil
	}, func(ev watch.Event) (bool, error) {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted || p.UID != pod.UID {
			return false, ErrPodGone
		}
		last = p
		seen.see(p)
		switch p.Status.Phase {
		case corev1.PodSucceeded, corev1.PodFailed:
			return true, nil
		}
		if reason, msg := cannotStart(p); reason != "" {
			return false, &StartError{Pod: p.Name, Reason: reason, Message: msg}
		}
		return false, nil
	})
	switch {
	case err == nil:
		return ev.Object.(*corev1.Pod), nil
	case ctx.Err() != nil:
		if last != nil {
			return nil, fmt.Errorf("%w (the command pod was %s)", ctx.Err(), describe(last))
		}
		return nil, ctx.Err()
	case errors.Is(err, watchtools.ErrWatchClosed):
		return nil, fmt.Errorf("watch the command pod: %w", err)
	}
	return nil, err
}

// cannotStart reports a container that will not start without a change
// (kubelet keeps retrying these, so waiting would only burn the deadline).
func cannotStart(p *corev1.Pod) (reason, message string) {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError":
				return w.Reason, w.Message
			}
		}
	}
	return "", ""
}

// describe sums up a pod that has not finished, for a timeout message.
func describe(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "not scheduled: " + c.Message
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			return "waiting: " + w.Reason
		}
	}
	return strings.ToLower(string(p.Status.Phase))
}

// termination reads the exit of the command container of a finished pod.
func termination(p *corev1.Pod) (code int, reason, message string) {
	code = 1
	if p.Status.Phase == corev1.PodSucceeded {
		code = 0
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != ContainerName || cs.State.Terminated == nil {
			continue
		}
		t := cs.State.Terminated
		code, reason, message = int(t.ExitCode), t.Reason, strings.TrimSpace(t.Message)
	}
	if p.Status.Reason == ReasonDeadlineExceeded {
		reason = ReasonDeadlineExceeded
		if code == 0 {
			code = 1
		}
	}
	if reason == "" {
		reason = p.Status.Reason
	}
	if message == "" && p.Status.Reason != "" {
		message = p.Status.Message // evicted, preempted, past its deadline
	}
	return code, reason, message
}

// logs reads up to limit bytes of the command container's log.
func (r *Runner) logs(ctx context.Context, ns, name string, limit int) (string, bool, error) {
	lb := int64(limit) + 1
	stream, err := r.client.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: ContainerName, LimitBytes: &lb}).Stream(ctx)
	if err != nil {
		return "", false, err
	}
	defer stream.Close()
	b, err := io.ReadAll(io.LimitReader(stream, lb))
	if len(b) > limit {
		return string(b[:limit]), true, err
	}
	return string(b), false, err
}

// delete removes a command pod at once. It runs after the command's own
// context may have ended, so it has its own short one.
func (r *Runner) delete(ns, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := r.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		r.log.Error("command pod not deleted; the next agent start removes it", "pod", ns+"/"+name, "err", err)
		return
	}
	r.log.Debug("command pod deleted", "pod", ns+"/"+name)
}
