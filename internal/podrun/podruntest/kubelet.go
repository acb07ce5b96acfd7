// Package podruntest stands in for the kubelet of command pods in tests.
// kwok schedules pods and marks them Running but runs no containers, so
// Kubelet does what a node would do for kubechat's command pods: it runs
// the container's argv as a local process, as the pod's own identity (a
// TokenRequest for the pod's ServiceAccount, bound to the pod, in a
// kubeconfig the process reads through $KUBECONFIG), publishes the
// process's output as the container's log through the real pods/log API
// (served by kwok, see testenv.SetPodLogs), and writes the container's
// exit code into the pod's status.
//
// It also enforces, by itself, what a kubelet and the kernel would:
// activeDeadlineSeconds (the pod fails with reason DeadlineExceeded) and
// the memory limit (the process is killed once its resident anonymous
// memory goes over it, and the container terminates with reason
// OOMKilled, exit 137).
// An image with no program mapped to it never starts (ImagePullBackOff).
//
// What it does not do as a node would: no image is pulled, no cgroup
// limits CPU or memory (memory is sampled, so a short spike may pass), no
// filesystem, user or seccomp isolation is applied, the network is the
// host's, and the API server is reached on loopback rather than through
// the kubernetes Service.
package podruntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/podrun"
	"github.com/kubechat/kubechat/internal/testenv"
)

// Options configure the stand-in kubelet.
type Options struct {
	// Images maps an image to the local program that is its entrypoint.
	Images map[string]string
	// Env is added to every container's environment (for a test binary
	// that re-executes itself as the image's program).
	Env map[string]string
}

// Kubelet runs the containers of command pods as local processes.
type Kubelet struct {
	env    *testenv.Env
	opts   Options
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[types.UID]context.CancelFunc
	started atomic.Int64
}

// Start watches command pods (podrun.LabelCommand) in every namespace and
// runs each one once kwok has made it Running. Stop it with Stop.
func Start(ctx context.Context, env *testenv.Env, opts Options) (*Kubelet, error) {
	ctx, cancel := context.WithCancel(ctx)
	k := &Kubelet{env: env, opts: opts, cancel: cancel, running: map[types.UID]context.CancelFunc{}}
	f := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = podrun.LabelCommand + "=true"
	}))
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.observe(ctx, obj) },
		UpdateFunc: func(_, obj any) { k.observe(ctx, obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				k.kill(p.UID)
			}
		},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		cancel()
		f.Shutdown()
		return nil, errors.New("podruntest: pod informer did not sync")
	}
	k.wg.Go(func() { <-ctx.Done(); f.Shutdown() })
	return k, nil
}

// Stop kills every running container and waits for the kubelet to stop.
func (k *Kubelet) Stop() {
	k.cancel()
	k.wg.Wait()
}

// Started is how many containers the kubelet has started.
func (k *Kubelet) Started() int { return int(k.started.Load()) }

func (k *Kubelet) observe(ctx context.Context, obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.DeletionTimestamp != nil {
		k.kill(p.UID)
		return
	}
	if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, seen := k.running[p.UID]; seen {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	k.running[p.UID] = cancel
	pod := p.DeepCopy()
	k.wg.Go(func() {
		defer cancel()
		if err := k.run(rctx, pod); err != nil && rctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "podruntest: pod %s/%s: %v\n", pod.Namespace, pod.Name, err)
		}
	})
}

// kill stops the container of a deleted pod, as a kubelet does.
func (k *Kubelet) kill(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cancel, ok := k.running[uid]; ok {
		cancel()
	}
}

// exit is how a container ended.
type exit struct {
	code             int
	reason           string
	deadlineExceeded bool
	started, ended   time.Time
}

func (k *Kubelet) run(ctx context.Context, pod *corev1.Pod) error {
	c := pod.Spec.Containers[0]
	argv, ok := k.argv(c)
	if !ok {
		return k.waiting(ctx, pod, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: no program for this image in the test kubelet", c.Image))
	}
	dir, err := os.MkdirTemp("", "podruntest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig, err := k.identity(ctx, pod, dir)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "tmp") // the pod's emptyDir at /tmp
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"KUBECONFIG=" + kubeconfig, "HOME=" + dir, "TMPDIR=" + tmp, "PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	for k, v := range k.opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	ex := exit{started: time.Now()}
	if err := cmd.Start(); err != nil {
		return k.waiting(ctx, pod, "CreateContainerError", err.Error())
	}
	k.started.Add(1)
	done := make(chan struct{})
	var oom, deadline atomic.Bool
	go func() { // the kill paths: pod deleted, deadline, memory limit
		killAll := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		var timeout <-chan time.Time
		if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
			start := ex.started
			if pod.Status.StartTime != nil {
				start = pod.Status.StartTime.Time
			}
			t := time.NewTimer(time.Until(start.Add(time.Duration(*d) * time.Second)))
			defer t.Stop()
			timeout = t.C
		}
		limit := c.Resources.Limits.Memory().Value()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				killAll()
				return
			case <-timeout:
				deadline.Store(true)
				killAll()
				return
			case <-tick.C:
				if limit > 0 && charged(cmd.Process.Pid) > limit {
					oom.Store(true)
					killAll()
					return
				}
			}
		}
	}()
	werr := cmd.Wait()
	close(done)
	ex.ended = time.Now()
	if ctx.Err() != nil {
		return nil // the pod is gone: nothing to report
	}
	ex.code = cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if errors.As(werr, &ee) && ee.ExitCode() < 0 {
		ex.code = 137 // killed by SIGKILL, as a runtime reports it
	}
	switch {
	case oom.Load():
		ex.code, ex.reason = 137, podrun.ReasonOOMKilled
	case deadline.Load():
		ex.code, ex.reason, ex.deadlineExceeded = 137, "Error", true
	case ex.code == 0:
		ex.reason = "Completed"
	default:
		ex.reason = "Error"
	}
	// The log is there before the container's exit is, as on a node.
	if err := k.env.SetPodLogs(ctx, pod.Namespace, pod.Name, c.Name, out.String(), ""); err != nil {
		return err
	}
	return k.terminated(ctx, pod, ex)
}

// argv is the process a container runs: its command, else the program
// mapped to its image, followed by its args.
func (k *Kubelet) argv(c corev1.Container) ([]string, bool) {
	if len(c.Command) > 0 {
		prog := c.Command[0]
		if p, ok := k.opts.Images[prog]; ok {
			prog = p
		}
		return append(append([]string{prog}, c.Command[1:]...), c.Args...), true
	}
	prog, ok := k.opts.Images[c.Image]
	if !ok {
		return nil, false
	}
	return append([]string{prog}, c.Args...), true
}

// identity writes a kubeconfig with a token for the pod's ServiceAccount,
// bound to the pod (it dies with the pod), as the kubelet projects one.
func (k *Kubelet) identity(ctx context.Context, pod *corev1.Pod, dir string) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := k.env.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", pod.Namespace, sa, err)
	}
	cfg := &rest.Config{Host: k.env.Config.Host, BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAData: k.env.Config.CAData}}
	path := filepath.Join(dir, "kubeconfig")
	return path, testenv.WriteKubeconfig(cfg, path)
}

// waiting reports a container that cannot start.
func (k *Kubelet) waiting(ctx context.Context, pod *corev1.Pod, reason, message string) error {
	return k.updateStatus(ctx, pod, func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		}}
	})
}

// terminated writes the container's exit into the pod's status.
func (k *Kubelet) terminated(ctx context.Context, pod *corev1.Pod, ex exit) error {
	return k.updateStatus(ctx, pod, func(p *corev1.Pod) {
		c := pod.Spec.Containers[0]
		p.Status.Phase = corev1.PodFailed
		if ex.code == 0 {
			p.Status.Phase = corev1.PodSucceeded
		}
		if ex.deadlineExceeded {
			p.Status.Reason = podrun.ReasonDeadlineExceeded
			p.Status.Message = "Pod was active on the node longer than the specified deadline"
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: c.Name, Image: c.Image, ImageID: c.Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: int32(ex.code), Reason: ex.reason,
				StartedAt: metav1.NewTime(ex.started), FinishedAt: metav1.NewTime(ex.ended),
			}},
		}}
		for i, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady || cond.Type == corev1.ContainersReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
				p.Status.Conditions[i].Reason = "PodCompleted"
			}
		}
	})
}

func (k *Kubelet) updateStatus(ctx context.Context, pod *corev1.Pod, mutate func(*corev1.Pod)) error {
	pods := k.env.Client.CoreV1().Pods(pod.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && p.UID != pod.UID) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		mutate(p)
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// charged is the memory of a process a container's memory limit holds it
// to, in bytes, or 0 when it is gone: its resident anonymous and shared
// memory. Resident pages of the executable itself are left out, as the
// kernel reclaims those page-cache pages before it kills for the limit.
func charged(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	var total int64
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok || (name != "RssAnon" && name != "RssShmem") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		total += kb * 1024
	}
	return total
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// BuildKubechat builds the kubechat binary into dir and returns its path:
// the program that stands for the kubechat image.
func BuildKubechat(dir string) (string, error) {
	bin := filepath.Join(dir, "kubechat")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/kubechat/kubechat/cmd/kubechat")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build kubechat: %w\n%s", err, out)
	}
	return bin, nil
}
