package podrun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubechat/kubechat/internal/config"
)

// Annotations of a command pod that say where its result goes, so that a
// later agent (after a deploy, or a new leader) posts it: the chat
// platform and channel, the message replied to, and the key that makes
// the post happen once. They hold no secret; the pod's argv (spec) is the
// command, as before.
const (
	AnnotationPlatform      = "kubechat.io/reply-platform"
	AnnotationChannel       = "kubechat.io/reply-channel"
	AnnotationChannelName   = "kubechat.io/reply-channel-name"
	AnnotationThreadChannel = "kubechat.io/reply-thread-channel"
	AnnotationThreadID      = "kubechat.io/reply-thread-id"
	AnnotationThreadRoot    = "kubechat.io/reply-thread-root"
	AnnotationKey           = "kubechat.io/reply-key"
	AnnotationMaxOutput     = "kubechat.io/max-output-bytes"
)

// Reply is where a command pod's result goes.
type Reply struct {
	Platform, Channel, ChannelName      string
	ThreadChannel, ThreadID, ThreadRoot string
}

func (rp *Reply) annotate(pod *corev1.Pod, maxOutput int) {
	pod.Annotations = map[string]string{
		AnnotationPlatform:      rp.Platform,
		AnnotationChannel:       rp.Channel,
		AnnotationChannelName:   rp.ChannelName,
		AnnotationThreadChannel: rp.ThreadChannel,
		AnnotationThreadID:      rp.ThreadID,
		AnnotationThreadRoot:    rp.ThreadRoot,
		// The pod's own name is unique and stable: the key of its one reply.
		AnnotationKey: "command-pod/" + pod.Namespace + "/" + pod.Name,
	}
	if maxOutput > 0 {
		pod.Annotations[AnnotationMaxOutput] = strconv.Itoa(maxOutput)
	}
}

func replyOf(p *corev1.Pod) (Reply, string, bool) {
	a := p.Annotations
	rp := Reply{Platform: a[AnnotationPlatform], Channel: a[AnnotationChannel], ChannelName: a[AnnotationChannelName],
		ThreadChannel: a[AnnotationThreadChannel], ThreadID: a[AnnotationThreadID], ThreadRoot: a[AnnotationThreadRoot]}
	key := a[AnnotationKey]
	return rp, key, rp.Platform != "" && rp.Channel != "" && key != ""
}

// Adopted is the result of a command pod an earlier agent started.
type Adopted struct {
	Reply Reply
	// Key identifies the one reply (for the outbox's record of deliveries).
	Key string
	// Executor is the configured executor name; Args are the command's
	// argv after its type ("get", "pods"); Type is the type ("kubectl").
	Executor, Type string
	Args           []string
	// ServiceAccount is who the command ran as (system:serviceaccount:NS:NAME).
	ServiceAccount string
	Outcome        Outcome
}

// AdoptMargin is how long past its deadline a command pod is still
// adopted (its result may just be in); after it the pod is only deleted.
const AdoptMargin = time.Minute

// Adopt takes over the command pods that other agents of this cluster
// started: a pod past its deadline (and AdoptMargin) is deleted; a pod that
// says where its result goes is waited for, its result handed to deliver
// (once per pod: deliver checks the key) and then deleted; any other pod
// (from an agent before adoption) is deleted unless keepLive keeps it for
// a replica that may still wait for it. Adopt returns once every adopted
// pod was delivered, or ctx ended (pods not delivered then are left for
// the next agent).
func (r *Runner) Adopt(ctx context.Context, namespaces []string, keepLive bool, deliver func(context.Context, Adopted) error) error {
	var errs []error
	var wg sync.WaitGroup
	for _, ns := range namespaces {
		pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.Selector()})
		if err != nil {
			errs = append(errs, fmt.Errorf("list command pods in %s: %w", ns, err))
			continue
		}
		for _, p := range pods.Items {
			if p.Labels[LabelAgent] == r.agent {
				continue
			}
			_, _, annotated := replyOf(&p)
			switch {
			case !withinDeadline(p, AdoptMargin):
			case annotated:
				r.log.Info("adopting a command pod of an earlier agent", "pod", ns+"/"+p.Name, "agent", p.Labels[LabelAgent])
				wg.Go(func() { r.adopt(ctx, p, deliver) })
				continue
			case keepLive && live(p):
				continue
			}
			if err := r.deleteNow(ctx, ns, p.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			r.log.Info("deleted a leftover command pod", "pod", ns+"/"+p.Name, "agent", p.Labels[LabelAgent])
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// adopt waits for p to end, collects its result, delivers it and deletes p.
func (r *Runner) adopt(ctx context.Context, p corev1.Pod, deliver func(context.Context, Adopted) error) {
	name := p.Namespace + "/" + p.Name
	done, err := r.wait(ctx, &p, &stamps{})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrPodGone) {
			r.log.Error("adopted command pod failed; deleted", "pod", name, "err", err)
			r.delete(p.Namespace, p.Name)
		}
		return
	}
	limit := config.DefaultMaxOutputBytes
	if n, err := strconv.Atoi(p.Annotations[AnnotationMaxOutput]); err == nil && n > 0 {
		limit = n
	}
	out := r.collect(ctx, done, limit)
	if ctx.Err() != nil {
		return // left for the next agent
	}
	rp, key, _ := replyOf(&p)
	ad := Adopted{Reply: rp, Key: key, Executor: p.Labels[LabelExecutor], ServiceAccount: "system:serviceaccount:" + p.Namespace + ":" + p.Spec.ServiceAccountName, Outcome: out}
	if len(p.Spec.Containers) > 0 {
		args := p.Spec.Containers[0].Args
		if i := slices.Index(args, "--"); i >= 0 && i+1 < len(args) {
			ad.Type, ad.Args = args[i+1], args[i+2:]
		}
	}
	if err := deliver(ctx, ad); err != nil {
		if ctx.Err() != nil {
			return
		}
		r.log.Error("the result of an adopted command pod was not delivered", "pod", name, "err", err)
	}
	r.delete(p.Namespace, p.Name)
}

// Sweep deletes, every interval until ctx ends, the command pods of this
// cluster past their deadline and AdoptMargin, whoever started them:
// leftovers of agents that are gone and pods no one adopted.
func (r *Runner) Sweep(ctx context.Context, namespaces []string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, ns := range namespaces {
			pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.Selector()})
			if err != nil {
				r.log.Warn("command pod sweep: cannot list", "namespace", ns, "err", err)
				continue
			}
			for _, p := range pods.Items {
				if withinDeadline(p, AdoptMargin) {
					continue
				}
				if err := r.deleteNow(ctx, ns, p.Name); err != nil {
					r.log.Warn("command pod sweep", "err", err)
					continue
				}
				r.log.Info("swept a command pod past its deadline", "pod", ns+"/"+p.Name, "agent", p.Labels[LabelAgent])
			}
		}
	}
}

// withinDeadline reports whether p's deadline, plus margin, is still ahead.
func withinDeadline(p corev1.Pod, margin time.Duration) bool {
	if p.Spec.ActiveDeadlineSeconds == nil {
		return false
	}
	end := p.CreationTimestamp.Add(time.Duration(*p.Spec.ActiveDeadlineSeconds)*time.Second + margin)
	return time.Now().Before(end)
}

func (r *Runner) deleteNow(ctx context.Context, ns, name string) error {
	err := r.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete command pod %s/%s: %w", ns, name, err)
	}
	return nil
}

// live reports whether a pod may still be running a command some agent waits for.
func live(p corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	if p.Spec.ActiveDeadlineSeconds == nil {
		return false
	}
	end := p.CreationTimestamp.Add(time.Duration(*p.Spec.ActiveDeadlineSeconds)*time.Second + time.Minute)
	return time.Now().Before(end)
}
