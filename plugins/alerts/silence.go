package alerts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

// Silence is the silence executor: "silence add MATCHERS --for 2h
// [--comment TEXT]" (or --until-resolved), "silence list", "silence expire
// ID", each for the caller's channel. Its verbs are add, list and expire;
// a policy that lists none allows only list.
type Silence struct{ base }

// NewSilence builds the silence executor.
func NewSilence(name string, raw config.Raw, _ executor.Deps) (executor.Executor, error) {
	if err := decode("silence", name, raw); err != nil {
		return nil, err
	}
	s := &Silence{}
	s.name = name
	return s, nil
}

// ReadOnlyVerbs: listing changes nothing.
func (*Silence) ReadOnlyVerbs() []string { return []string{"list"} }

// addRequest is a parsed "silence add".
type addRequest struct {
	matchers      []string
	duration      time.Duration
	untilResolved bool
	comment       string
}

// MaxSilence bounds a silence's duration.
const MaxSilence = 90 * 24 * time.Hour

const silenceUsage = "usage: silence add MATCHERS (--for DURATION | --until-resolved) [--comment TEXT] | silence list | silence expire ID"

func parseAdd(args []string) (addRequest, error) {
	var r addRequest
	forSet := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() (string, error) {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				return v, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		flag, _, _ := strings.Cut(a, "=")
		switch {
		case flag == "--for":
			v, err := value()
			if err != nil {
				return r, err
			}
			d, err := model.ParseDuration(v)
			if err != nil || d <= 0 {
				return r, fmt.Errorf("--for %q: give a duration such as 30m, 2h or 1d", v)
			}
			if time.Duration(d) > MaxSilence {
				return r, fmt.Errorf("--for %s: a silence lasts at most %s", v, model.Duration(MaxSilence))
			}
			r.duration, forSet = time.Duration(d), true
		case a == "--until-resolved":
			r.untilResolved = true
		case flag == "--comment":
			v, err := value()
			if err != nil {
				return r, err
			}
			r.comment = v
		case strings.HasPrefix(a, "-"):
			return r, fmt.Errorf("unknown flag %q; %s", a, silenceUsage)
		default:
			r.matchers = append(r.matchers, a)
		}
	}
	if forSet == r.untilResolved {
		return r, fmt.Errorf("give either --for DURATION or --until-resolved; %s", silenceUsage)
	}
	if _, err := alerting.ParseSilenceMatchers(r.matchers); err != nil {
		return r, err
	}
	return r, nil
}

// Analyze names the verb and checks the command's syntax: a silence
// touches no Kubernetes object.
func (*Silence) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	if len(args) == 0 {
		return executor.Analysis{}, fmt.Errorf("%s", silenceUsage)
	}
	switch args[0] {
	case "add":
		if _, err := parseAdd(args[1:]); err != nil {
			return executor.Analysis{}, err
		}
	case "list":
		if len(args) != 1 {
			return executor.Analysis{}, fmt.Errorf("silence list takes no arguments")
		}
	case "expire":
		if len(args) != 2 {
			return executor.Analysis{}, fmt.Errorf("usage: silence expire ID")
		}
	default:
		return executor.Analysis{}, fmt.Errorf("unknown silence command %q; %s", args[0], silenceUsage)
	}
	return executor.Analysis{Verb: args[0]}, nil
}

// Execute adds, lists or expires the silences of the caller's channel.
func (s *Silence) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	a := s.alerting()
	if a == nil {
		return executor.Result{}, errDetached
	}
	if _, err := s.Analyze(ctx, req.Args); err != nil {
		return executor.Result{}, err
	}
	platform, channel := req.Caller.Platform, req.Caller.Channel
	switch req.Args[0] {
	case "add":
		r, _ := parseAdd(req.Args[1:])
		who := req.Caller.UserName
		if who == "" {
			who = req.Caller.UserID
		}
		sil := alerting.Silence{Matchers: r.matchers, Platform: platform, Channel: channel, CreatedBy: who,
			Comment: r.comment, UntilResolved: r.untilResolved}
		if !r.untilResolved {
			sil.End = time.Now().Add(r.duration)
		}
		added, err := a.AddSilence(ctx, sil)
		if err != nil {
			return executor.Result{}, err
		}
		return executor.Result{
			Output:  "Added: " + describe(added, time.Now()),
			Buttons: []executor.Button{{Label: "Expire " + added.ID, Args: []string{"expire", added.ID}}},
		}, nil
	case "expire":
		sil, err := a.ExpireSilence(ctx, platform, channel, req.Args[1])
		if err != nil {
			return executor.Result{ExitCode: 1, Errors: err.Error()}, nil
		}
		return executor.Result{Output: "Expired: " + describe(sil, time.Now())}, nil
	}
	list := a.Silences(platform, channel)
	if len(list) == 0 {
		return executor.Result{Output: "No silences in this channel."}, nil
	}
	var b strings.Builder
	var buttons []executor.Button
	now := time.Now()
	for _, sil := range list {
		b.WriteString(describe(sil, now))
		b.WriteString("\n")
		for _, line := range sil.Silenced {
			b.WriteString("    muted " + line + "\n")
		}
		if sil.Active(now) {
			buttons = append(buttons, executor.Button{Label: "Expire " + sil.ID, Args: []string{"expire", sil.ID}})
		}
	}
	return executor.Result{Output: b.String(), Buttons: buttons}, nil
}

// describe is one silence on one line.
func describe(s alerting.Silence, now time.Time) string {
	var until string
	switch {
	case !s.Active(now) && !s.Expired.IsZero():
		until = "expired " + s.Expired.UTC().Format("2006-01-02 15:04 MST")
	case !s.Active(now):
		until = "ended " + s.End.UTC().Format("2006-01-02 15:04 MST")
	case s.UntilResolved:
		until = "until the alert resolves"
	default:
		until = "until " + s.End.UTC().Format("2006-01-02 15:04 MST") + " (" + s.End.Sub(now).Round(time.Minute).String() + " left)"
	}
	line := fmt.Sprintf("%s  {%s}  %s, by %s, %d alert(s) muted", s.ID, strings.Join(s.Matchers, ", "), until, s.CreatedBy, s.Count)
	if s.Comment != "" {
		line += ": " + s.Comment
	}
	return line
}
