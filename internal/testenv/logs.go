package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

// kwok reads a pod's container logs from files named by a namespaced Logs
// object (kwok.x-k8s.io/v1alpha1) with the pod's name; its server plays the
// kubelet, so the API server's pods/log subresource, and kubectl logs, read
// them as they would read a real node's.
var logsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}

// createLogsCRD registers the Logs kind that kwok watches (--enable-crds
// Logs). The schema keeps every field: kwok validates what it reads.
func (e *Env) createLogsCRD(ctx context.Context) error {
	cs, err := apiextensions.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	return e.installCRD(ctx, cs, &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "logs.kwok.x-k8s.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: logsGVR.Group,
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Logs", ListKind: "LogsList", Plural: "logs", Singular: "logs"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: logsGVR.Version, Served: true, Storage: true,
				Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}},
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	})
}

// SetPodLogs makes the pods/log API (and so kubectl logs) return current
// for the container, and previous for its previous instance (--previous).
// Each line is written in the CRI log format a kubelet reads; every line
// comes back with a trailing newline. The pod must exist and be scheduled;
// SetPodLogs returns once the API server serves the new logs. Calling it
// again replaces what the container shows.
func (e *Env) SetPodLogs(ctx context.Context, namespace, pod, container, current, previous string) error {
	dir := filepath.Join(e.Dir, "pod-logs", namespace, pod)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// A fresh file name each time: kwok caches nothing, but a reader that
	// is still open keeps the old content.
	stamp := fmt.Sprint(time.Now().UnixNano())
	currentFile := filepath.Join(dir, container+"-"+stamp+".log")
	previousFile := filepath.Join(dir, container+"-"+stamp+".previous.log")
	for file, text := range map[string]string{currentFile: current, previousFile: previous} {
		if err := os.WriteFile(file, criLog(text, time.Now()), 0o600); err != nil {
			return err
		}
	}
	dyn, err := dynamic.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	entry := map[string]any{"containers": []any{container}, "logsFile": currentFile, "previousLogsFile": previousFile}
	want := string(criText(current))
	// kwok (v0.8.0) can go on serving a stale set of Logs objects when it
	// is asked for logs while its informer is behind (its cache is keyed
	// by the reflector's resource version, which moves before the store
	// does). Writing the object again moves the version and refreshes it,
	// so a publication that stalls is retried with a fresh write.
	var last error
	for attempt := range 6 {
		if err := writeLogsObject(ctx, dyn, namespace, pod, container, entry, attempt); err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = e.poll(actx, fmt.Sprintf("logs of pod %s/%s served", namespace, pod), 5*time.Second, func() error {
			got, err := e.Client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(actx)
			if err != nil {
				return err
			}
			if string(got) != want {
				return fmt.Errorf("the API server serves %q, not yet %q", got, want)
			}
			return nil
		})
		cancel()
		if last == nil || ctx.Err() != nil {
			return last
		}
	}
	return last
}

// writeLogsObject creates or updates the pod's Logs object so that entry
// is what it says about container. attempt is recorded in an annotation,
// so that every write changes the object.
func writeLogsObject(ctx context.Context, dyn dynamic.Interface, namespace, pod, container string, entry map[string]any, attempt int) error {
	logs := dyn.Resource(logsGVR).Namespace(namespace)
	obj, err := logs.Get(ctx, pod, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		obj = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
			"metadata": map[string]any{"name": pod, "namespace": namespace},
			"spec":     map[string]any{"logs": []any{entry}},
		}}
		if _, err := logs.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("testenv: logs for pod %s/%s: %w", namespace, pod, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("testenv: logs for pod %s/%s: %w", namespace, pod, err)
	}
	entries, _, _ := unstructured.NestedSlice(obj.Object, "spec", "logs")
	kept := []any{entry}
	for _, en := range entries {
		if m, ok := en.(map[string]any); ok {
			if cs, _, _ := unstructured.NestedStringSlice(m, "containers"); len(cs) == 1 && cs[0] == container {
				continue
			}
		}
		kept = append(kept, en)
	}
	if err := unstructured.SetNestedSlice(obj.Object, kept, "spec", "logs"); err != nil {
		return err
	}
	ann := obj.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann["kubechat.test/write"] = fmt.Sprint(attempt)
	obj.SetAnnotations(ann)
	if _, err := logs.Update(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("testenv: logs for pod %s/%s: %w", namespace, pod, err)
	}
	return nil
}

// criLog renders text as kubelet CRI log lines: "TIME stdout F LINE".
func criLog(text string, at time.Time) []byte {
	var b strings.Builder
	ts := at.UTC().Format(time.RFC3339Nano)
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if text == "" {
			break
		}
		b.WriteString(ts + " stdout F " + line + "\n")
	}
	return []byte(b.String())
}

// criText is what reading criLog(text) gives back.
func criText(text string) []byte {
	if text == "" {
		return nil
	}
	return []byte(strings.TrimSuffix(text, "\n") + "\n")
}
