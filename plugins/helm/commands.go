package helm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/output"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/release"

	"github.com/kubechat/kubechat/internal/redact"
)

// runEnv is what a command needs to run; parse without one only checks.
type runEnv struct {
	ctx context.Context
	// cfg is readied by connect, with the namespace the flags chose.
	cfg     *action.Configuration
	connect func(namespace string, allNamespaces bool) error
	// namespace is the one connect chose.
	namespace  string
	out        io.Writer
	secrets    *redact.Set
	maxHistory int
}

// seen records the Secret values rendered into a release, so that they
// are masked wherever they show up (values, manifest, notes).
func (env *runEnv) seen(rel *release.Release) {
	if rel == nil {
		return
	}
	env.secrets.AddManifest(rel.Manifest)
	for _, h := range rel.Hooks {
		env.secrets.AddManifest(h.Manifest)
	}
}

// timeout is the default of a --timeout flag: the helm CLI's 5 minutes,
// or less when the command's own deadline comes sooner.
func (env *runEnv) timeout() time.Duration {
	d := 300 * time.Second
	if env == nil {
		return d
	}
	if dl, ok := env.ctx.Deadline(); ok && time.Until(dl) < d {
		d = time.Until(dl)
	}
	return d
}

// parsed is what policy needs to know about a command.
type parsed struct {
	verb          string
	namespace     string
	allNamespaces bool
}

// parse checks args against the command tree and, with env, runs them.
// Each call builds its own tree, so concurrent commands share no flags.
func parse(args []string, env *runEnv) (parsed, error) {
	var p parsed
	if f := refusedConnectionFlag(args); f != "" {
		return p, fmt.Errorf("the flag %s is not allowed: kubechat decides how helm connects and who it acts as", f)
	}
	cfg := &action.Configuration{}
	out := io.Discard
	if env != nil {
		cfg, out = env.cfg, env.out
	}
	root := &cobra.Command{
		Use:           "helm",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("helm needs a subcommand: list, status, history, get, rollback, uninstall, upgrade or test")
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().StringVarP(&p.namespace, "namespace", "n", "", "namespace scope for this request")
	if env != nil {
		root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
			all := c.Flags().Lookup("all-namespaces")
			return env.connect(p.namespace, all != nil && all.Value.String() == "true")
		}
	}
	get := &cobra.Command{Use: "get", Short: "download extended information of a named release", RunE: func(*cobra.Command, []string) error {
		return errors.New("helm get needs a subcommand: values, manifest, notes, hooks or all")
	}}
	get.AddCommand(getValuesCmd(cfg, env), getManifestCmd(cfg, env), getNotesCmd(cfg, env), getHooksCmd(cfg, env), getAllCmd(cfg, env))
	root.AddCommand(listCmd(cfg, env, &p), statusCmd(cfg, env), historyCmd(cfg, env), get,
		rollbackCmd(cfg, env), uninstallCmd(cfg, env), upgradeCmd(cfg, env), testCmd(cfg, env))
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(out)
	c, err := root.ExecuteC()
	if err != nil {
		return p, err
	}
	p.verb = verbOf(c)
	return p, nil
}

// verbOf names the command as policy sees it: "list", "get values".
func verbOf(c *cobra.Command) string {
	var parts []string
	for ; c.HasParent(); c = c.Parent() {
		parts = append([]string{c.Name()}, parts...)
	}
	return strings.Join(parts, " ")
}

// releaseArgs requires one release name (more with more).
func releaseArgs(min, max int, usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return fmt.Errorf("missing the release name: helm %s", usage)
		case max >= 0 && len(args) > max:
			return fmt.Errorf("too many arguments (%s): helm %s", strings.Join(args, " "), usage)
		}
		return nil
	}
}

// formatFlag is -o/--output: table, json or yaml.
type formatFlag struct{ f output.Format }

func (v *formatFlag) String() string { return v.f.String() }
func (v *formatFlag) Type() string   { return "format" }
func (v *formatFlag) Set(s string) error {
	f, err := output.ParseFormat(s)
	if err != nil {
		return fmt.Errorf("%q is not an output format: use table, json or yaml", s)
	}
	v.f = f
	return nil
}

func outputFlag(c *cobra.Command) *formatFlag {
	v := &formatFlag{f: output.Table}
	c.Flags().VarP(v, "output", "o", "prints the output in the specified format (table, json, yaml)")
	return v
}

func revisionFlag(c *cobra.Command, p *int) {
	c.Flags().IntVar(p, "revision", 0, "get the named release with revision")
}

func listCmd(cfg *action.Configuration, env *runEnv, p *parsed) *cobra.Command {
	client := action.NewList(cfg)
	c := &cobra.Command{Use: "list", Aliases: []string{"ls"}, Short: "list releases", Args: cobra.NoArgs}
	f := c.Flags()
	f.BoolVarP(&client.Short, "short", "q", false, "output short (quiet) listing format")
	f.BoolVar(&client.NoHeaders, "no-headers", false, "don't print headers when using the default output format")
	f.StringVar(&client.TimeFormat, "time-format", "", "format time using golang time formatter")
	f.BoolVarP(&client.ByDate, "date", "d", false, "sort by release date")
	f.BoolVarP(&client.SortReverse, "reverse", "r", false, "reverse the sort order")
	f.BoolVarP(&client.All, "all", "a", false, "show all releases without any filter applied")
	f.BoolVar(&client.Uninstalled, "uninstalled", false, "show uninstalled releases")
	f.BoolVar(&client.Superseded, "superseded", false, "show superseded releases")
	f.BoolVar(&client.Uninstalling, "uninstalling", false, "show releases that are currently being uninstalled")
	f.BoolVar(&client.Deployed, "deployed", false, "show deployed releases")
	f.BoolVar(&client.Failed, "failed", false, "show failed releases")
	f.BoolVar(&client.Pending, "pending", false, "show pending releases")
	f.BoolVarP(&client.AllNamespaces, "all-namespaces", "A", false, "list releases across all namespaces")
	f.IntVarP(&client.Limit, "max", "m", 256, "maximum number of releases to fetch")
	f.IntVar(&client.Offset, "offset", 0, "next release index in the list, used to offset from start value")
	f.StringVarP(&client.Filter, "filter", "f", "", "a regular expression; only releases that match it are listed")
	f.StringVarP(&client.Selector, "selector", "l", "", "selector (label query) to filter on")
	format := outputFlag(c)
	c.RunE = func(*cobra.Command, []string) error {
		p.allNamespaces = client.AllNamespaces
		if client.Filter != "" {
			if _, err := regexp.Compile(client.Filter); err != nil {
				return fmt.Errorf("--filter %q: %w", client.Filter, err)
			}
		}
		if env == nil {
			return nil
		}
		client.SetStateMask()
		results, err := client.Run()
		if err != nil {
			return err
		}
		if client.Short {
			return writeNames(env.out, format.f, results)
		}
		return format.f.Write(env.out, newReleaseList(results, client.TimeFormat, client.NoHeaders))
	}
	return c
}

func statusCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	client := action.NewStatus(cfg)
	c := &cobra.Command{Use: "status RELEASE_NAME", Short: "display the status of the named release", Args: releaseArgs(1, 1, "status RELEASE_NAME")}
	revisionFlag(c, &client.Version)
	c.Flags().BoolVar(&client.ShowDescription, "show-desc", false, "if set, display the description message of the named release")
	c.Flags().BoolVar(&client.ShowResources, "show-resources", false, "if set, display the resources of the named release")
	format := outputFlag(c)
	c.RunE = func(_ *cobra.Command, args []string) error {
		if env == nil {
			return nil
		}
		client.ShowResourcesTable = format.f == output.Table
		rel, err := client.Run(args[0])
		if err != nil {
			return err
		}
		env.seen(rel)
		rel.Chart = nil
		return format.f.Write(env.out, statusWriter{rel: rel, showDescription: client.ShowDescription, showResources: client.ShowResources})
	}
	return c
}

func historyCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	client := action.NewHistory(cfg)
	c := &cobra.Command{Use: "history RELEASE_NAME", Aliases: []string{"hist"}, Short: "fetch release history", Args: releaseArgs(1, 1, "history RELEASE_NAME")}
	c.Flags().IntVar(&client.Max, "max", 256, "maximum number of revision to include in history")
	format := outputFlag(c)
	c.RunE = func(_ *cobra.Command, args []string) error {
		if env == nil {
			return nil
		}
		hist, err := client.Run(args[0])
		if err != nil {
			return err
		}
		return format.f.Write(env.out, newHistory(hist, client.Max))
	}
	return c
}

func getValuesCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	client := action.NewGetValues(cfg)
	c := &cobra.Command{Use: "values RELEASE_NAME", Short: "download the values file for a named release", Args: releaseArgs(1, 1, "get values RELEASE_NAME")}
	revisionFlag(c, &client.Version)
	c.Flags().BoolVarP(&client.AllValues, "all", "a", false, "dump all (computed) values")
	format := outputFlag(c)
	c.RunE = func(_ *cobra.Command, args []string) error {
		if env == nil {
			return nil
		}
		// The release's rendered Secrets say which values are secret.
		get := action.NewGet(cfg)
		get.Version = client.Version
		rel, err := get.Run(args[0])
		if err != nil {
			return err
		}
		env.seen(rel)
		// What GetValues.Run computes, from the release already read
		// instead of a second read.
		vals := rel.Config
		if client.AllValues {
			if vals, err = chartutil.CoalesceValues(rel.Chart, rel.Config); err != nil {
				return err
			}
		}
		return format.f.Write(env.out, valuesWriter{vals: vals, all: client.AllValues})
	}
	return c
}

// getRelease builds a "get" subcommand that prints one part of a release.
func getRelease(cfg *action.Configuration, env *runEnv, name, short string, print func(io.Writer, *release.Release) error) *cobra.Command {
	client := action.NewGet(cfg)
	c := &cobra.Command{Use: name + " RELEASE_NAME", Short: short, Args: releaseArgs(1, 1, "get "+name+" RELEASE_NAME")}
	revisionFlag(c, &client.Version)
	c.RunE = func(_ *cobra.Command, args []string) error {
		if env == nil {
			return nil
		}
		rel, err := client.Run(args[0])
		if err != nil {
			return err
		}
		env.seen(rel)
		return print(env.out, rel)
	}
	return c
}

func getManifestCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	return getRelease(cfg, env, "manifest", "download the manifest for a named release", func(w io.Writer, rel *release.Release) error {
		_, err := fmt.Fprintln(w, rel.Manifest)
		return err
	})
}

func getNotesCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	return getRelease(cfg, env, "notes", "download the notes for a named release", func(w io.Writer, rel *release.Release) error {
		if rel.Info == nil || rel.Info.Notes == "" {
			return nil
		}
		_, err := fmt.Fprintf(w, "NOTES:\n%s\n", rel.Info.Notes)
		return err
	})
}

func getHooksCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	return getRelease(cfg, env, "hooks", "download all hooks for a named release", func(w io.Writer, rel *release.Release) error {
		return writeHooks(w, rel)
	})
}

func getAllCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	return getRelease(cfg, env, "all", "download all information for a named release", func(w io.Writer, rel *release.Release) error {
		return output.Table.Write(w, statusWriter{rel: rel, debug: true, showMetadata: true})
	})
}

// revisionOptions points at the options rollback and upgrade share.
type revisionOptions struct {
	force, noHooks, wait, waitForJobs, cleanupOnFail *bool
	timeout                                          *time.Duration
	maxHistory                                       *int
}

// releaseFlags are the flags of the commands that write a new revision.
func releaseFlags(f *pflag.FlagSet, env *runEnv, o revisionOptions) {
	f.BoolVar(o.force, "force", false, "force resource updates through a replacement strategy")
	f.BoolVar(o.noHooks, "no-hooks", false, "do not run the release's hooks")
	f.DurationVar(o.timeout, "timeout", env.timeout(), "time to wait for any individual Kubernetes operation")
	f.BoolVar(o.wait, "wait", false, "wait until the release's resources are ready, for as long as --timeout")
	f.BoolVar(o.waitForJobs, "wait-for-jobs", false, "with --wait, also wait until all Jobs have completed")
	f.BoolVar(o.cleanupOnFail, "cleanup-on-fail", false, "allow deletion of new resources created by this operation when it fails")
	maxHistory := 10
	if env != nil {
		maxHistory = env.maxHistory
	}
	f.IntVar(o.maxHistory, "history-max", maxHistory, "limit the maximum number of revisions saved per release; 0 for no limit")
}

func rollbackCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	client := action.NewRollback(cfg)
	c := &cobra.Command{Use: "rollback RELEASE [REVISION]", Short: "roll back a release to a previous revision", Args: releaseArgs(1, 2, "rollback RELEASE [REVISION]")}
	f := c.Flags()
	f.BoolVar(&client.DryRun, "dry-run", false, "simulate a rollback")
	f.BoolVar(&client.Recreate, "recreate-pods", false, "performs pods restart for the resource if applicable")
	releaseFlags(f, env, revisionOptions{force: &client.Force, noHooks: &client.DisableHooks, timeout: &client.Timeout, wait: &client.Wait,
		waitForJobs: &client.WaitForJobs, cleanupOnFail: &client.CleanupOnFail, maxHistory: &client.MaxHistory})
	c.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) > 1 {
			v, err := strconv.Atoi(args[1])
			if err != nil || v < 0 {
				return fmt.Errorf("revision %q is not a revision number (see helm history %s)", args[1], args[0])
			}
			client.Version = v
		}
		if env == nil {
			return nil
		}
		if err := client.Run(args[0]); err != nil {
			return err
		}
		_, err := fmt.Fprintln(env.out, "Rollback was a success! Happy Helming!")
		return err
	}
	return c
}

func uninstallCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	client := action.NewUninstall(cfg)
	c := &cobra.Command{Use: "uninstall RELEASE_NAME [...]", Aliases: []string{"del", "delete", "un"}, Short: "uninstall a release",
		Args: releaseArgs(1, -1, "uninstall RELEASE_NAME [...]")}
	f := c.Flags()
	f.BoolVar(&client.DryRun, "dry-run", false, "simulate an uninstall")
	f.BoolVar(&client.DisableHooks, "no-hooks", false, "prevent hooks from running during uninstallation")
	f.BoolVar(&client.IgnoreNotFound, "ignore-not-found", false, `treat "release not found" as a successful uninstall`)
	f.BoolVar(&client.KeepHistory, "keep-history", false, "remove all associated resources and mark the release as deleted, but retain the release history")
	f.BoolVar(&client.Wait, "wait", false, "wait until all the resources are deleted, for as long as --timeout")
	f.StringVar(&client.DeletionPropagation, "cascade", "background", `"background", "orphan" or "foreground"`)
	f.DurationVar(&client.Timeout, "timeout", env.timeout(), "time to wait for any individual Kubernetes operation")
	f.StringVar(&client.Description, "description", "", "add a custom description")
	c.RunE = func(_ *cobra.Command, args []string) error {
		switch client.DeletionPropagation {
		case "background", "foreground", "orphan":
		default:
			return fmt.Errorf("--cascade %q: must be background, foreground or orphan", client.DeletionPropagation)
		}
		if env == nil {
			return nil
		}
		for _, name := range args {
			res, err := client.Run(name)
			if err != nil {
				return err
			}
			if res != nil && res.Info != "" {
				fmt.Fprintln(env.out, res.Info)
			}
			fmt.Fprintf(env.out, "release %q uninstalled\n", name)
		}
		return nil
	}
	return c
}

func upgradeCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	client := action.NewUpgrade(cfg)
	vals := &values.Options{}
	c := &cobra.Command{Use: "upgrade RELEASE", Short: "upgrade a release with its installed chart and new values",
		Args: releaseArgs(1, -1, "upgrade RELEASE --reuse-values --set key=value")}
	f := c.Flags()
	f.StringArrayVar(&vals.Values, "set", nil, "set values (key1=val1,key2=val2)")
	f.StringArrayVar(&vals.StringValues, "set-string", nil, "set STRING values (key1=val1,key2=val2)")
	f.StringArrayVar(&vals.JSONValues, "set-json", nil, "set JSON values (key1=jsonval1,key2=jsonval2)")
	f.StringArrayVar(&vals.LiteralValues, "set-literal", nil, "set a literal STRING value")
	f.BoolVar(&client.ReuseValues, "reuse-values", false, "reuse the last release's values and merge in --set overrides")
	f.BoolVar(&client.ResetValues, "reset-values", false, "reset the values to the ones built into the chart")
	f.BoolVar(&client.ResetThenReuseValues, "reset-then-reuse-values", false, "reset to the chart's values, then apply the last release's values and --set overrides")
	f.BoolVar(&client.Atomic, "atomic", false, "roll back the changes made in case of a failed upgrade (implies --wait)")
	f.StringVar(&client.Description, "description", "", "add a custom description")
	releaseFlags(f, env, revisionOptions{force: &client.Force, noHooks: &client.DisableHooks, timeout: &client.Timeout, wait: &client.Wait,
		waitForJobs: &client.WaitForJobs, cleanupOnFail: &client.CleanupOnFail, maxHistory: &client.MaxHistory})
	c.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) > 1 {
			return fmt.Errorf("chart %q: kubechat upgrades a release with the chart it has installed and downloads nothing; drop the chart argument", args[1])
		}
		merged, err := vals.MergeValues(getter.Providers{})
		if err != nil {
			return fmt.Errorf("--set: %w", err)
		}
		if env == nil {
			return nil
		}
		cur, err := action.NewGet(cfg).Run(args[0])
		if err != nil {
			return err
		}
		if cur.Chart == nil || cur.Chart.Metadata == nil {
			return fmt.Errorf("release %q has no stored chart to upgrade with", args[0])
		}
		if len(cur.Chart.Metadata.Dependencies) > 0 {
			// Helm stores a release's chart without its subcharts: an upgrade
			// with it would delete everything the subcharts rendered.
			return fmt.Errorf("release %q: its chart %s has subcharts, which Helm does not keep in the release; upgrade it from the chart source, not from chat",
				args[0], cur.Chart.Metadata.Name)
		}
		client.Namespace = env.namespace
		rel, err := client.RunWithContext(env.ctx, args[0], cur.Chart, merged)
		if err != nil {
			return fmt.Errorf("UPGRADE FAILED: %w", err)
		}
		env.seen(rel)
		fmt.Fprintf(env.out, "Release %q has been upgraded. Happy Helming!\n", args[0])
		return output.Table.Write(env.out, statusWriter{rel: rel})
	}
	return c
}

func testCmd(cfg *action.Configuration, env *runEnv) *cobra.Command {
	client := action.NewReleaseTesting(cfg)
	var logs bool
	var filter []string
	c := &cobra.Command{Use: "test RELEASE", Short: "run tests for a release", Args: releaseArgs(1, 1, "test RELEASE")}
	f := c.Flags()
	f.DurationVar(&client.Timeout, "timeout", env.timeout(), "time to wait for any individual Kubernetes operation")
	f.BoolVar(&logs, "logs", false, "dump the logs from test pods")
	f.StringSliceVar(&filter, "filter", nil, "run only the tests name=NAME, or skip !name=NAME")
	f.BoolVar(&client.HideNotes, "hide-notes", false, "do not show notes in test output")
	c.RunE = func(_ *cobra.Command, args []string) error {
		for _, fl := range filter {
			switch {
			case strings.HasPrefix(fl, "name="):
				client.Filters[action.IncludeNameFilter] = append(client.Filters[action.IncludeNameFilter], strings.TrimPrefix(fl, "name="))
			case strings.HasPrefix(fl, "!name="):
				client.Filters[action.ExcludeNameFilter] = append(client.Filters[action.ExcludeNameFilter], strings.TrimPrefix(fl, "!name="))
			default:
				return fmt.Errorf("--filter %q: use name=TEST or !name=TEST", fl)
			}
		}
		if env == nil {
			return nil
		}
		client.Namespace = env.namespace
		rel, runErr := client.Run(args[0])
		if runErr != nil && rel == nil {
			return runErr
		}
		env.seen(rel)
		if err := output.Table.Write(env.out, statusWriter{rel: rel, hideNotes: client.HideNotes}); err != nil {
			return err
		}
		if logs {
			fmt.Fprintln(env.out)
			if err := client.GetPodLogs(env.out, rel); err != nil {
				return err
			}
		}
		return runErr
	}
	return c
}
