package argocd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/kustomize"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/prdiff"
)

// An Application's source is rendered as Argo CD's repo-server renders
// it, inside the checkout only: a Helm chart with the Helm SDK (value
// files, values and parameters; no chart repositories), a kustomization
// with kustomize (Argo CD's images, name prefix and suffix, namespace and
// common labels and annotations; no remote bases, nothing outside the
// checkout), or a directory of manifests (recurse, include, exclude).
// Config management plugins and Jsonnet run programs or templates that
// kubechat does not run, and are refused.

// The kinds of source, as Argo CD names them.
const (
	sourceHelm      = "Helm"
	sourceKustomize = "Kustomize"
	sourceDirectory = "Directory"
)

var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// sourceType is the source's kind: from its helm, kustomize or directory
// block, else from the files at its path, as Argo CD decides.
func sourceType(src map[string]any, dir string) (string, error) {
	var set []string
	for key, typ := range map[string]string{"helm": sourceHelm, "kustomize": sourceKustomize, "directory": sourceDirectory} {
		if _, ok := src[key]; ok {
			set = append(set, typ)
		}
	}
	if _, ok := src["plugin"]; ok {
		return "", errors.New("source.plugin: config management plugins run programs, which kubechat does not")
	}
	slices.Sort(set)
	switch len(set) {
	case 1:
		return set[0], nil
	case 0:
	default:
		return "", fmt.Errorf("the source sets %s: give one", strings.Join(set, " and "))
	}
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err == nil {
		return sourceHelm, nil
	}
	for _, f := range kustomizationFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return sourceKustomize, nil
		}
	}
	return sourceDirectory, nil
}

// render renders app's single source from the checkout at root.
func (r *run) render(ctx context.Context, app *argocd.Application, root string) ([]byte, error) {
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	src := app.Spec.Source
	if chart := str(src, "chart"); chart != "" {
		return nil, fmt.Errorf("source.chart %q: the chart comes from a Helm repository, not from the pull request", chart)
	}
	path := firstNonEmpty(str(src, "path"), ".")
	if !prdiff.Inside(path) {
		return nil, fmt.Errorf("source.path %q: must be a path inside the repository", path)
	}
	dir, err := prdiff.SecurePath(root, path, "source.path")
	if err != nil {
		return nil, err
	}
	typ, err := sourceType(src, dir)
	if err != nil {
		return nil, err
	}
	switch typ {
	case sourceHelm:
		return r.renderHelm(ctx, app, root, dir)
	case sourceKustomize:
		return renderKustomize(src, root, dir)
	default:
		return renderDirectory(src, root, dir)
	}
}

// renderDirectory concatenates the YAML and JSON manifests at dir, as
// Argo CD's directory source reads them.
func renderDirectory(src map[string]any, root, dir string) ([]byte, error) {
	d, _ := src["directory"].(map[string]any)
	if _, ok := d["jsonnet"]; ok {
		return nil, errors.New("source.directory.jsonnet: Jsonnet runs code, which kubechat does not evaluate")
	}
	recurse, _ := d["recurse"].(bool)
	include, _ := d["include"].(string)
	exclude, _ := d["exclude"].(string)
	var out bytes.Buffer
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.IsDir() {
			if p != dir && (!recurse || strings.HasPrefix(e.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".yaml" && ext != ".yml" && ext != ".json" && ext != ".jsonnet" && ext != ".libsonnet" {
			return nil
		}
		if (include != "" && !globMatch(include, rel)) || (exclude != "" && globMatch(exclude, rel)) {
			return nil
		}
		if ext == ".jsonnet" || ext == ".libsonnet" {
			return fmt.Errorf("%s: Jsonnet runs code, which kubechat does not evaluate", prdiff.Rel(root, p))
		}
		real, err := prdiff.SecurePath(root, strings.TrimPrefix(p, root), "file")
		if err != nil {
			return err
		}
		b, err := os.ReadFile(real)
		if err != nil {
			return err
		}
		out.WriteString("\n---\n")
		out.Write(b)
		return nil
	})
	return out.Bytes(), err
}

// globMatch matches a directory include or exclude: a glob, or several in
// braces ("{a.yaml,b/*.yaml}"), against a path relative to the source's path.
func globMatch(pattern, rel string) bool {
	pats := []string{pattern}
	if strings.HasPrefix(pattern, "{") && strings.HasSuffix(pattern, "}") {
		pats = strings.Split(pattern[1:len(pattern)-1], ",")
	}
	for _, p := range pats {
		p = strings.TrimPrefix(strings.TrimSpace(p), "./")
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
		if ok, _ := filepath.Match(p, filepath.Base(rel)); ok && !strings.Contains(p, "/") {
			return true
		}
	}
	return false
}

// renderKustomize applies the source's kustomize overrides to the
// kustomization at dir, as "kustomize edit" does for Argo CD, and builds
// it confined to root with no remote bases (Flux's secure build).
func renderKustomize(src map[string]any, root, dir string) ([]byte, error) {
	k, _ := src["kustomize"].(map[string]any)
	for key := range k {
		// Fail closed: an override kubechat does not apply would make the
		// diff show what Argo CD would not apply.
		if !slices.Contains([]string{"images", "namePrefix", "nameSuffix", "namespace", "commonLabels", "commonAnnotations"}, key) {
			return nil, fmt.Errorf("source.kustomize.%s: not applied by kubechat's diff (it applies images, namePrefix, nameSuffix, namespace, commonLabels and commonAnnotations)", key)
		}
	}
	if len(k) > 0 {
		if err := editKustomization(dir, k); err != nil {
			return nil, err
		}
	}
	resMap, err := kustomize.SecureBuild(root, dir, false)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", prdiff.Rel(root, dir), prdiff.CleanBuildError(err, root))
	}
	return resMap.AsYaml()
}

// editKustomization writes Argo CD's kustomize overrides into the
// kustomization file at dir.
func editKustomization(dir string, k map[string]any) error {
	var file string
	for _, f := range kustomizationFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			file = filepath.Join(dir, f)
			break
		}
	}
	if file == "" {
		return fmt.Errorf("source.kustomize: no kustomization file in %s", filepath.Base(dir))
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	doc := map[string]any{}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(file), err)
	}
	for _, key := range []string{"namePrefix", "nameSuffix", "namespace"} {
		if v, _ := k[key].(string); v != "" {
			doc[key] = v
		}
	}
	for _, key := range []string{"commonLabels", "commonAnnotations"} {
		if v, _ := k[key].(map[string]any); len(v) > 0 {
			m, _ := doc[key].(map[string]any)
			if m == nil {
				m = map[string]any{}
			}
			for name, value := range v {
				m[name] = value
			}
			doc[key] = m
		}
	}
	if imgs, _ := k["images"].([]any); len(imgs) > 0 {
		list, _ := doc["images"].([]any)
		for _, raw := range imgs {
			s, _ := raw.(string)
			img := parseImage(s)
			i := slices.IndexFunc(list, func(e any) bool { m, _ := e.(map[string]any); return m["name"] == img["name"] })
			if i >= 0 {
				list[i] = img
			} else {
				list = append(list, img)
			}
		}
		doc["images"] = list
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o600)
}

// parseImage reads an Argo CD kustomize image override, as "kustomize
// edit set image" does: "name=newName:tag", "name=newName@digest",
// "name:tag" or "name@digest".
func parseImage(s string) map[string]any {
	name, ref, found := strings.Cut(s, "=")
	if !found {
		ref = s
	}
	img := map[string]any{}
	newName := ref
	if n, digest, ok := strings.Cut(ref, "@"); ok {
		newName, img["digest"] = n, digest
	} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		newName, img["newTag"] = ref[:i], ref[i+1:]
	}
	if !found {
		name = newName
	}
	img["name"] = name
	if newName != name {
		img["newName"] = newName
	}
	return img
}

// renderHelm renders the chart at dir as "helm template" does for Argo
// CD: the release named after the Application (or helm.releaseName) in
// the destination namespace, with the value files (inside the checkout),
// then values or valuesObject, then parameters.
func (r *run) renderHelm(ctx context.Context, app *argocd.Application, root, dir string) ([]byte, error) {
	h, _ := app.Spec.Source["helm"].(map[string]any)
	opts := values.Options{}
	files, _ := h["valueFiles"].([]any)
	ignoreMissing, _ := h["ignoreMissingValueFiles"].(bool)
	for _, raw := range files {
		f, _ := raw.(string)
		if strings.Contains(f, "://") {
			return nil, fmt.Errorf("source.helm.valueFiles %q: a remote file is not in the pull request", f)
		}
		if strings.HasPrefix(f, "$") {
			return nil, fmt.Errorf("source.helm.valueFiles %q: values from another source need several sources, which kubechat does not diff", f)
		}
		rel := f
		if !filepath.IsAbs(f) {
			rel = filepath.Join(strings.TrimPrefix(strings.TrimPrefix(dir, root), "/"), f)
		}
		if !prdiff.Inside(rel) {
			return nil, fmt.Errorf("source.helm.valueFiles %q: leads outside the repository", f)
		}
		p, err := prdiff.SecurePath(root, rel, "source.helm.valueFiles")
		if err != nil {
			if ignoreMissing && strings.Contains(err.Error(), "no such file") {
				continue
			}
			return nil, err
		}
		opts.ValueFiles = append(opts.ValueFiles, p)
	}
	inline := ""
	switch v := h["values"].(type) {
	case string:
		inline = v
	case map[string]any:
		b, _ := yaml.Marshal(v)
		inline = string(b)
	}
	if vo, ok := h["valuesObject"].(map[string]any); ok {
		b, _ := yaml.Marshal(vo)
		inline = string(b)
	}
	if strings.TrimSpace(inline) != "" {
		f, err := os.CreateTemp(filepath.Dir(root), "values-*.yaml")
		if err != nil {
			return nil, err
		}
		_, werr := f.WriteString(inline)
		if err := errors.Join(werr, f.Close()); err != nil {
			return nil, err
		}
		opts.ValueFiles = append(opts.ValueFiles, f.Name())
	}
	params, _ := h["parameters"].([]any)
	for _, raw := range params {
		p, _ := raw.(map[string]any)
		name, value := str(p, "name"), strings.ReplaceAll(str(p, "value"), ",", `\,`)
		if force, _ := p["forceString"].(bool); force {
			opts.StringValues = append(opts.StringValues, name+"="+value)
		} else {
			opts.Values = append(opts.Values, name+"="+value)
		}
	}
	if fp, _ := h["fileParameters"].([]any); len(fp) > 0 {
		return nil, errors.New("source.helm.fileParameters: not supported by kubechat's diff")
	}
	vals, err := opts.MergeValues(getter.Providers{})
	if err != nil {
		return nil, fmt.Errorf("source.helm values: %w", err)
	}
	chart, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load the chart at %s: %w", prdiff.Rel(root, dir), err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly, inst.Replace, inst.IncludeCRDs = true, true, true, true
	inst.ReleaseName = firstNonEmpty(str(h, "releaseName"), app.Name)
	inst.Namespace = firstNonEmpty(str(h, "namespace"), app.Spec.Destination.Namespace, "default")
	if v := str(h, "version"); v != "" && v != "v3" {
		return nil, fmt.Errorf("source.helm.version %q: kubechat renders with Helm v3", v)
	}
	rel, err := inst.RunWithContext(ctx, chart, vals)
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %w", prdiff.Rel(root, dir), err)
	}
	var out strings.Builder
	out.WriteString(rel.Manifest)
	skipHooks, _ := h["skipHooks"].(bool)
	for _, hook := range rel.Hooks {
		if skipHooks || slices.ContainsFunc(hook.Events, func(e release.HookEvent) bool { return e == release.HookTest }) {
			continue
		}
		out.WriteString("\n---\n" + hook.Manifest)
	}
	return []byte(out.String()), nil
}
