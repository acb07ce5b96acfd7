// Package helmtest helps tests of the Helm executor: it installs the test
// charts through the Helm SDK, as an administrator would, and runs the real
// helm CLI (built into the test binaries) for comparison.
package helmtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/client-go/rest"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
)

// Chart is the directory of a test chart: "web" (Deployment, Service, a
// Secret from values.dbPassword, notes and a test hook) or "api" (a ConfigMap).
func Chart(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "charts", name)
}

// WebPassword is the web chart's default values.dbPassword, rendered into a
// Secret: it must never show in kubechat's output.
const WebPassword = "s3cr3t-db-password-value"

// Install installs chart as release name in namespace with the SDK, acting
// as cfg's user, and waits for nothing.
func Install(ctx context.Context, cfg *rest.Config, namespace, name, chart string, vals map[string]any) error {
	ch, err := loader.LoadDir(chart)
	if err != nil {
		return fmt.Errorf("load chart %s: %w", chart, err)
	}
	ac, err := configuration(cfg, namespace)
	if err != nil {
		return err
	}
	in := action.NewInstall(ac)
	in.ReleaseName, in.Namespace, in.Timeout = name, namespace, time.Minute
	if _, err := in.RunWithContext(ctx, ch, vals); err != nil {
		return fmt.Errorf("install %s: %w", name, err)
	}
	return nil
}

// Upgrade upgrades release name with its installed chart, reusing its
// values and setting vals; an invalid value makes a failed revision.
func Upgrade(ctx context.Context, cfg *rest.Config, namespace, name string, vals map[string]any) error {
	ac, err := configuration(cfg, namespace)
	if err != nil {
		return err
	}
	cur, err := action.NewGet(ac).Run(name)
	if err != nil {
		return err
	}
	up := action.NewUpgrade(ac)
	up.Namespace, up.ReuseValues, up.Timeout = namespace, true, time.Minute
	_, err = up.RunWithContext(ctx, name, cur.Chart, vals)
	return err
}

// Rollback rolls release name back to revision (0: the previous one).
func Rollback(cfg *rest.Config, namespace, name string, revision int) error {
	ac, err := configuration(cfg, namespace)
	if err != nil {
		return err
	}
	rb := action.NewRollback(ac)
	rb.Version, rb.Timeout = revision, time.Minute
	return rb.Run(name)
}

func configuration(cfg *rest.Config, namespace string) (*action.Configuration, error) {
	flags := executor.ConfigFlags(cfg, filepath.Join(os.TempDir(), "kubechat-helmtest-cache"))
	flags.Namespace = &namespace
	var ac action.Configuration
	if err := ac.Init(flags, namespace, "secret", func(string, ...any) {}); err != nil {
		return nil, err
	}
	return &ac, nil
}

// CLI runs the real helm binary against kubeconfig as id, with a throwaway
// home, and returns its standard output and error.
func CLI(ctx context.Context, kubeconfig string, id executor.Identity, args ...string) (string, string, error) {
	bin, err := testenv.BinDir()
	if err != nil {
		return "", "", err
	}
	home, err := os.MkdirTemp("", "helmtest-home")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(home)
	full := []string{"--kubeconfig", kubeconfig}
	if id.User != "" {
		full = append(full, "--kube-as-user", id.User)
		for _, g := range id.Groups {
			full = append(full, "--kube-as-group", g)
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "helm"), append(full, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config",
		"HELM_DATA_HOME="+home+"/data")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}
