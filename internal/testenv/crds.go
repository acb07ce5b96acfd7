package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// FluxCRDDir is where "make testbin" puts the Flux CRDs (Kustomization,
// GitRepository), taken from the controllers' modules.
func FluxCRDDir() (string, error) {
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(bin, "crds", "flux"), nil
}

// ArgoCDCRDDir is where "make testbin" puts the Argo CD CRDs (Application,
// ApplicationSet, AppProject), taken from Argo CD's module (manifests/crds).
func ArgoCDCRDDir() (string, error) {
	bin, err := BinDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(bin, "crds", "argocd"), nil
}

// InstallCRDs creates (or keeps) every CRD in the YAML files of dir and
// waits until each is established.
func (e *Env) InstallCRDs(ctx context.Context, dir string) error {
	crds, cs, err := e.crdsIn(dir)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		if err := e.installCRD(ctx, cs, crd); err != nil {
			return err
		}
	}
	return nil
}

// UninstallCRDs deletes every CRD in the YAML files of dir, with all
// their objects, and waits until each is gone: a test can then see a
// cluster without them (Flux or Argo CD not installed).
func (e *Env) UninstallCRDs(ctx context.Context, dir string) error {
	crds, cs, err := e.crdsIn(dir)
	if err != nil {
		return err
	}
	api := cs.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		if err := api.Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("testenv: delete CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		err := e.poll(ctx, "CRD "+crd.Name+" deleted", time.Minute, func() error {
			_, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err == nil {
				return fmt.Errorf("still there")
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// crdsIn reads the CRDs of the YAML files of dir.
func (e *Env) crdsIn(dir string) ([]*apiextensionsv1.CustomResourceDefinition, apiextensions.Interface, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, nil, fmt.Errorf("testenv: no CRDs in %s; run make testbin", dir)
	}
	cs, err := apiextensions.NewForConfig(e.Config)
	if err != nil {
		return nil, nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.Unmarshal([]byte(doc), &crd); err != nil {
				return nil, nil, fmt.Errorf("testenv: %s: %w", f, err)
			}
			if crd.Kind == "CustomResourceDefinition" {
				crds = append(crds, &crd)
			}
		}
	}
	return crds, cs, nil
}

// installCRD creates (or keeps) crd and waits until it is established.
func (e *Env) installCRD(ctx context.Context, cs apiextensions.Interface, crd *apiextensionsv1.CustomResourceDefinition) error {
	if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: create CRD %s: %w", crd.Name, err)
	}
	return e.poll(ctx, "CRD "+crd.Name+" established", time.Minute, func() error {
		got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("not established yet")
	})
}
