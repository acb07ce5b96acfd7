package kubectl

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/kubectl/pkg/cmd/util/podcmd"
	"k8s.io/kubectl/pkg/polymorphichelpers"
	"k8s.io/kubectl/pkg/util/podutils"
)

// kubectl logs prints two informational lines ("Found 2 pods, using
// pod/web-1", "Defaulted container "app" out of: app, sidecar") to the
// process's standard error rather than to the command's streams. The
// executor makes those choices before kubectl does, writes the lines to
// the command's own errors, and hands kubectl a pod and container already
// chosen, so nothing is written to the agent's stderr and each reply holds
// its own lines.

// informational maps each running command to its errors, by the warning
// handler of its client config: the one value of its own that every
// config kubectl derives for the command carries.
var informational = &logLines{writers: map[rest.WarningHandler]io.Writer{}}

type logLines struct {
	mu      sync.Mutex
	writers map[rest.WarningHandler]io.Writer
	next    polymorphichelpers.LogsForObjectFunc
}

// install points kubectl's logs helper at choose, once per process.
func (l *logLines) install() {
	l.next = polymorphichelpers.LogsForObjectFn
	polymorphichelpers.LogsForObjectFn = l.logsForObject
}

// register sends the informational lines of the command whose config is
// cfg to w.
func (l *logLines) register(cfg *rest.Config, w io.Writer) (unregister func()) {
	key := cfg.WarningHandler
	if key == nil {
		return func() {}
	}
	l.mu.Lock()
	l.writers[key] = w
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.writers, key)
		l.mu.Unlock()
	}
}

func (l *logLines) writer(getter genericclioptions.RESTClientGetter) io.Writer {
	cfg, err := getter.ToRESTConfig()
	if err != nil || cfg.WarningHandler == nil {
		return io.Discard
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.writers[cfg.WarningHandler]; ok {
		return w
	}
	return io.Discard
}

func (l *logLines) logsForObject(getter genericclioptions.RESTClientGetter, object, options runtime.Object, timeout time.Duration, allContainers bool) (map[corev1.ObjectReference]rest.ResponseWrapper, error) {
	opts, ok := options.(*corev1.PodLogOptions)
	if !ok {
		return l.next(getter, object, options, timeout, allContainers)
	}
	w := l.writer(getter)
	switch t := object.(type) {
	case *corev1.PodList:
		out := map[corev1.ObjectReference]rest.ResponseWrapper{}
		for i := range t.Items {
			got, err := l.logsForObject(getter, &t.Items[i], options, timeout, allContainers)
			if err != nil {
				return nil, err
			}
			for k, v := range got {
				out[k] = v
			}
		}
		return out, nil
	case *corev1.Pod:
		if allContainers || opts.Container != "" {
			return l.next(getter, t, opts, timeout, allContainers)
		}
		chosen := opts.DeepCopy()
		chosen.Container = defaultContainer(t, w)
		return l.next(getter, t, chosen, timeout, false)
	}
	// A workload: kubectl reads the logs of its first pod.
	namespace, selector, err := polymorphichelpers.SelectorsForObject(object)
	if err != nil {
		return l.next(getter, object, options, timeout, allContainers)
	}
	cfg, err := getter.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	byLogging := func(pods []*corev1.Pod) sort.Interface { return podutils.ByLogging(pods) }
	pod, n, err := polymorphichelpers.GetFirstPod(client.CoreV1(), namespace, selector.String(), timeout, byLogging)
	if err != nil {
		return nil, err
	}
	if n > 1 {
		fmt.Fprintf(w, "Found %v pods, using pod/%v\n", n, pod.Name)
	}
	return l.logsForObject(getter, pod, options, timeout, allContainers)
}

// defaultContainer picks the container kubectl logs reads when none is
// named, saying so as kubectl does: the one the
// kubectl.kubernetes.io/default-container annotation names, else the first.
func defaultContainer(pod *corev1.Pod, w io.Writer) string {
	if name := pod.Annotations[podcmd.DefaultContainerAnnotationName]; name != "" {
		if c, _ := podcmd.FindContainerByName(pod, name); c != nil {
			return name
		}
		fmt.Fprintf(w, "Default container name %q not found in pod %s\n", name, pod.Name)
	}
	if len(pod.Spec.Containers) == 0 {
		return ""
	}
	name := pod.Spec.Containers[0].Name
	if len(pod.Spec.Containers) > 1 || len(pod.Spec.InitContainers) > 0 || len(pod.Spec.EphemeralContainers) > 0 {
		fmt.Fprintf(w, "Defaulted container %q out of: %s\n", name, podcmd.AllContainerNames(pod))
	}
	return name
}
