package chart_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// The chart declares a kubeVersion, which Helm checks before it renders.
// Helm's SDK assumes Kubernetes v1.20 when it renders without a cluster
// (the helm binary gets its own client-go's version through ldflags), so
// every render in this package's tests would be refused. Render as the
// Kubernetes whose client libraries the agent is built with, as a helm
// built with them does.
func init() {
	v, err := clientGoKubeVersion("../go.mod")
	if err != nil {
		panic(err)
	}
	chartutil.DefaultCapabilities.KubeVersion = v
}

// clientGoKubeVersion is the Kubernetes version of the k8s.io/client-go
// that the module in gomod requires: client-go v0.X.Y is Kubernetes v1.X.Y.
func clientGoKubeVersion(gomod string) (chartutil.KubeVersion, error) {
	data, err := os.ReadFile(gomod)
	if err != nil {
		return chartutil.KubeVersion{}, err
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/client-go v0\.(\d+)\.(\d+)\s*$`).FindSubmatch(data)
	if m == nil {
		return chartutil.KubeVersion{}, fmt.Errorf("%s: no k8s.io/client-go v0.X.Y requirement", gomod)
	}
	return chartutil.KubeVersion{Version: fmt.Sprintf("v1.%s.%s", m[1], m[2]), Major: "1", Minor: string(m[1])}, nil
}

// release is a version X.Y.Z.
type release [3]int

var releaseRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

func parseRelease(s string) (release, error) {
	m := releaseRE.FindStringSubmatch(s)
	if m == nil {
		return release{}, fmt.Errorf("%q is not X.Y.Z", s)
	}
	var r release
	for i := range r {
		r[i], _ = strconv.Atoi(m[i+1])
	}
	return r, nil
}

func (r release) less(o release) bool { return slices.Compare(r[:], o[:]) < 0 }

// TestChartVersionFollowsTheChangelog: the chart's appVersion is the newest
// release in CHANGELOG.md, whose releases are semantic versions, newest
// first, each with its link; and the chart's kubeVersion admits the
// Kubernetes the tests run and refuses one older than its floor.
func TestChartVersionFollowsTheChangelog(t *testing.T) {
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)

	log, err := os.ReadFile("../CHANGELOG.md")
	require.NoError(t, err)
	heading := regexp.MustCompile(`(?m)^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$`)
	var releases []release
	var newest string
	for i, m := range heading.FindAllStringSubmatch(string(log), -1) {
		if i == 0 {
			require.Equal(t, "Unreleased", m[1], "the changelog starts with an Unreleased section")
			continue
		}
		v, err := parseRelease(m[1])
		require.NoError(t, err, "changelog release")
		require.NotEmpty(t, m[2], "release %s has no date", m[1])
		require.Contains(t, string(log), "\n["+m[1]+"]: https://github.com/kubechat/kubechat/releases/tag/v"+m[1],
			"release %s has no link to its tag", m[1])
		if len(releases) == 0 {
			newest = m[1]
		} else {
			require.True(t, v.less(releases[len(releases)-1]), "releases are newest first, but %s follows an older or equal one", m[1])
		}
		releases = append(releases, v)
	}
	require.NotEmpty(t, releases, "the changelog has no release")
	require.Equal(t, newest, ch.Metadata.AppVersion, "Chart.yaml's appVersion must be the newest release in CHANGELOG.md")
	_, err = parseRelease(ch.Metadata.Version)
	require.NoError(t, err, "the chart's own version")

	tested, err := os.ReadFile("../hack/testbin.sh")
	require.NoError(t, err)
	m := regexp.MustCompile(`K8S_VERSION=\$\{K8S_VERSION:-(v[0-9.]+)\}`).FindSubmatch(tested)
	require.NotNil(t, m, "hack/testbin.sh names no Kubernetes version")
	require.NotEmpty(t, ch.Metadata.KubeVersion)
	require.True(t, chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, string(m[1])),
		"kubeVersion %q refuses %s, which the tests run", ch.Metadata.KubeVersion, m[1])
	require.True(t, chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, chartutil.DefaultCapabilities.KubeVersion.Version),
		"kubeVersion %q refuses the client libraries' %s", ch.Metadata.KubeVersion, chartutil.DefaultCapabilities.KubeVersion.Version)
	require.True(t, chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, "v1.29.3-eks-1"), "providers' version suffixes are admitted")
	require.False(t, chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, "v1.28.15"))
	require.True(t, strings.HasPrefix(ch.Metadata.KubeVersion, ">="), "kubeVersion is a floor")
}
