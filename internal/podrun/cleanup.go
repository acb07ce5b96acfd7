package podrun

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Cleanup deletes, in each namespace, the command pods of this cluster's
// agents that other agent processes left behind (an agent that died
// mid-command). With keepLive (several replicas answer commands), pods
// another live replica may still be waiting for are kept: only finished
// ones and ones past their deadline go. It returns how many it deleted.
func (r *Runner) Cleanup(ctx context.Context, namespaces []string, keepLive bool) (int, error) {
	n := 0
	var errs []error
	for _, ns := range namespaces {
		pods, err := r.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: r.Selector()})
		if err != nil {
			errs = append(errs, fmt.Errorf("list command pods in %s: %w", ns, err))
			continue
		}
		for _, p := range pods.Items {
			if p.Labels[LabelAgent] == r.agent || (keepLive && live(p)) {
				continue
			}
			err := r.client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete leftover command pod %s/%s: %w", ns, p.Name, err))
				continue
			}
			n++
			r.log.Info("deleted a leftover command pod", "pod", ns+"/"+p.Name, "agent", p.Labels[LabelAgent])
		}
	}
	return n, errors.Join(errs...)
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
