// Command teams-app writes the Teams app package for kubechat's bot: the
// manifest from configs/teams/manifest.json with the bot's Microsoft App ID
// and names filled in, and its two icons, zipped for upload to Teams
// (docs/teams.md).
//
//	go run ./hack/teams-app -app-id <Microsoft App ID> [-name kubechat] [-full-name ...] [-version 1.0.0] -o bin/kubechat-teams-app.zip
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kubechat/kubechat/internal/chat/teams/teamsapp"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "teams-app: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("teams-app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o teamsapp.Options
	fs.StringVar(&o.AppID, "app-id", "", "the Azure Bot's Microsoft App ID (required; the agent's settings.appID)")
	fs.StringVar(&o.ShortName, "name", "", "the app's name in Teams, at most 30 characters (default kubechat)")
	fs.StringVar(&o.FullName, "full-name", "", "the app's full name, at most 100 characters")
	fs.StringVar(&o.Version, "version", "", "the app package's version, MAJOR.MINOR.PATCH; raise it to update an uploaded app (default 1.0.0)")
	out := fs.String("o", "bin/kubechat-teams-app.zip", "where to write the zip")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.AppID == "" {
		return errors.New("-app-id is required: the Azure Bot's Microsoft App ID (make teams-app APP_ID=...)")
	}
	var b bytes.Buffer
	if err := teamsapp.Write(&b, o); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: upload it in Teams (Apps → Manage your apps → Upload an app)\n", *out)
	return nil
}
