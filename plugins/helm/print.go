package helm

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gosuri/uitable"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/output"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	helmtime "helm.sh/helm/v3/pkg/time"
	"k8s.io/kubectl/pkg/cmd/get"
)

// The writers below print what the helm CLI prints for the same command,
// column for column, so that people can read kubechat's answers as they
// read helm's, and scripts written for one parse the other.

// listedRelease is one row of helm list (the JSON and YAML field names too).
type listedRelease struct {
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Revision   string `json:"revision"`
	Updated    string `json:"updated"`
	Status     string `json:"status"`
	Chart      string `json:"chart"`
	AppVersion string `json:"app_version"`
}

type releaseList struct {
	rows      []listedRelease
	noHeaders bool
}

func newReleaseList(rels []*release.Release, timeFormat string, noHeaders bool) releaseList {
	rows := make([]listedRelease, 0, len(rels)) // [] rather than null in JSON
	for _, r := range rels {
		updated := "-"
		if t := r.Info.LastDeployed; !t.IsZero() {
			if timeFormat != "" {
				updated = t.Format(timeFormat)
			} else {
				updated = t.String()
			}
		}
		rows = append(rows, listedRelease{
			Name: r.Name, Namespace: r.Namespace, Revision: strconv.Itoa(r.Version), Updated: updated,
			Status: r.Info.Status.String(), Chart: chartName(r.Chart), AppVersion: appVersion(r.Chart),
		})
	}
	return releaseList{rows: rows, noHeaders: noHeaders}
}

func (l releaseList) WriteTable(out io.Writer) error {
	t := uitable.New()
	if !l.noHeaders {
		t.AddRow("NAME", "NAMESPACE", "REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION")
	}
	for _, r := range l.rows {
		t.AddRow(r.Name, r.Namespace, r.Revision, r.Updated, r.Status, r.Chart, r.AppVersion)
	}
	return output.EncodeTable(out, t)
}

func (l releaseList) WriteJSON(out io.Writer) error { return output.EncodeJSON(out, l.rows) }
func (l releaseList) WriteYAML(out io.Writer) error { return output.EncodeYAML(out, l.rows) }

// writeNames is helm list -q.
func writeNames(out io.Writer, f output.Format, rels []*release.Release) error {
	names := make([]string, 0, len(rels))
	for _, r := range rels {
		names = append(names, r.Name)
	}
	switch f {
	case output.JSON:
		return output.EncodeJSON(out, names)
	case output.YAML:
		return output.EncodeYAML(out, names)
	}
	for _, n := range names {
		if _, err := fmt.Fprintln(out, n); err != nil {
			return err
		}
	}
	return nil
}

// revision is one row of helm history.
type revision struct {
	Revision    int           `json:"revision"`
	Updated     helmtime.Time `json:"updated"`
	Status      string        `json:"status"`
	Chart       string        `json:"chart"`
	AppVersion  string        `json:"app_version"`
	Description string        `json:"description"`
}

type history []revision

// newHistory keeps the newest n revisions, oldest first; none when n is 0
// or less, as the CLI.
func newHistory(rels []*release.Release, n int) history {
	releaseutil.Reverse(rels, releaseutil.SortByRevision)
	rels = rels[:max(0, min(len(rels), n))]
	h := history{}
	for _, r := range slices.Backward(rels) {
		h = append(h, revision{Revision: r.Version, Updated: r.Info.LastDeployed, Status: r.Info.Status.String(),
			Chart: chartName(r.Chart), AppVersion: appVersion(r.Chart), Description: r.Info.Description})
	}
	return h
}

func (h history) WriteTable(out io.Writer) error {
	t := uitable.New()
	t.AddRow("REVISION", "UPDATED", "STATUS", "CHART", "APP VERSION", "DESCRIPTION")
	for _, r := range h {
		t.AddRow(r.Revision, r.Updated.Format(time.ANSIC), r.Status, r.Chart, r.AppVersion, r.Description)
	}
	return output.EncodeTable(out, t)
}

func (h history) WriteJSON(out io.Writer) error { return output.EncodeJSON(out, h) }
func (h history) WriteYAML(out io.Writer) error { return output.EncodeYAML(out, h) }

func chartName(c *chart.Chart) string {
	if c == nil || c.Metadata == nil {
		return "MISSING"
	}
	return c.Name() + "-" + c.Metadata.Version
}

func appVersion(c *chart.Chart) string {
	if c == nil || c.Metadata == nil {
		return "MISSING"
	}
	return c.AppVersion()
}

// valuesWriter is helm get values.
type valuesWriter struct {
	vals map[string]any
	all  bool
}

func (v valuesWriter) WriteTable(out io.Writer) error {
	header := "USER-SUPPLIED VALUES:"
	if v.all {
		header = "COMPUTED VALUES:"
	}
	if _, err := fmt.Fprintln(out, header); err != nil {
		return err
	}
	return output.EncodeYAML(out, v.vals)
}

func (v valuesWriter) WriteJSON(out io.Writer) error { return output.EncodeJSON(out, v.vals) }
func (v valuesWriter) WriteYAML(out io.Writer) error { return output.EncodeYAML(out, v.vals) }

// statusWriter is helm status; with debug and showMetadata, helm get all.
type statusWriter struct {
	rel                         *release.Release
	debug, showDescription      bool
	showResources, showMetadata bool
	hideNotes                   bool
}

func (s statusWriter) WriteJSON(out io.Writer) error { return output.EncodeJSON(out, s.rel) }
func (s statusWriter) WriteYAML(out io.Writer) error { return output.EncodeYAML(out, s.rel) }

func (s statusWriter) WriteTable(out io.Writer) error {
	rel := s.rel
	if rel == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "NAME: %s\n", rel.Name)
	if !rel.Info.LastDeployed.IsZero() {
		fmt.Fprintf(&b, "LAST DEPLOYED: %s\n", rel.Info.LastDeployed.Format(time.ANSIC))
	}
	fmt.Fprintf(&b, "NAMESPACE: %s\nSTATUS: %s\nREVISION: %d\n", rel.Namespace, rel.Info.Status.String(), rel.Version)
	if s.showMetadata && rel.Chart != nil && rel.Chart.Metadata != nil {
		m := rel.Chart.Metadata
		fmt.Fprintf(&b, "CHART: %s\nVERSION: %s\nAPP_VERSION: %s\n", m.Name, m.Version, m.AppVersion)
	}
	if s.showDescription {
		fmt.Fprintf(&b, "DESCRIPTION: %s\n", rel.Info.Description)
	}
	if s.showResources && len(rel.Info.Resources) > 0 {
		b.WriteString("RESOURCES:\n")
		b.WriteString(resourceTables(rel))
		b.WriteString("\n")
	}
	writeTestSuite(&b, rel)
	if s.debug {
		b.WriteString("USER-SUPPLIED VALUES:\n")
		if err := output.EncodeYAML(&b, rel.Config); err != nil {
			return err
		}
		b.WriteString("\n")
		computed, err := chartutil.CoalesceValues(rel.Chart, rel.Config)
		if err != nil {
			return err
		}
		b.WriteString("COMPUTED VALUES:\n")
		if err := output.EncodeYAML(&b, computed.AsMap()); err != nil {
			return err
		}
		b.WriteString("\n")
	}
	if s.debug || strings.EqualFold(rel.Info.Description, "Dry run complete") {
		b.WriteString("HOOKS:\n")
		_ = writeHooks(&b, rel)
		fmt.Fprintf(&b, "MANIFEST:\n%s\n", rel.Manifest)
	}
	if !s.hideNotes && rel.Info.Notes != "" {
		fmt.Fprintf(&b, "NOTES:\n%s\n", strings.TrimSpace(rel.Info.Notes))
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// writeTestSuite reports the last run of the release's test hooks.
func writeTestSuite(b *strings.Builder, rel *release.Release) {
	var tests []*release.Hook
	for _, h := range rel.Hooks {
		if slices.Contains(h.Events, release.HookTest) {
			tests = append(tests, h)
		}
	}
	if len(tests) == 0 {
		b.WriteString("TEST SUITE: None\n")
		return
	}
	for _, h := range tests {
		if h.LastRun.StartedAt.IsZero() {
			continue
		}
		fmt.Fprintf(b, "TEST SUITE:     %s\nLast Started:   %s\nLast Completed: %s\nPhase:          %s\n",
			h.Name, h.LastRun.StartedAt.Format(time.ANSIC), h.LastRun.CompletedAt.Format(time.ANSIC), h.LastRun.Phase)
	}
}

// resourceTables prints the release's live objects as kubectl get does,
// one table per type, in a stable order.
func resourceTables(rel *release.Release) string {
	var buf bytes.Buffer
	typed, _ := get.NewHumanPrintFlags().ToPrinter("")
	printer := &get.TablePrinter{Delegate: typed}
	for _, t := range slices.Sorted(maps.Keys(rel.Info.Resources)) {
		fmt.Fprintf(&buf, "==> %s\n", t)
		for _, obj := range rel.Info.Resources[t] {
			if err := printer.PrintObj(obj, &buf); err != nil {
				fmt.Fprintf(&buf, "failed to print object type %s: %v\n", t, err)
			}
		}
		buf.WriteString("\n")
	}
	return buf.String()
}

func writeHooks(w io.Writer, rel *release.Release) error {
	for _, h := range rel.Hooks {
		if _, err := fmt.Fprintf(w, "---\n# Source: %s\n%s\n", h.Path, h.Manifest); err != nil {
			return err
		}
	}
	return nil
}
