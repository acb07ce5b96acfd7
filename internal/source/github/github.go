// Package github is the GitHub source: a receiver of GitHub webhooks
// (https://docs.github.com/en/webhooks) that turns each pull request
// opened, pushed to, reopened or merged into one event per GitOps object
// the pull request touches: a Flux Kustomization whose GitRepository is
// the pull request's repository, or an Argo CD Application with a source
// in it, whose path holds a file the pull request changes (targets.go).
// Actions bound to the source then diff it, report to the pull
// request, or follow its rollout (docs/github.md).
//
// Every delivery must carry a valid X-Hub-Signature-256 for the configured
// secret (401 otherwise), checked in constant time by go-github's
// ValidateSignature; bodies are capped (413); a delivery id seen before is
// not processed again, and the ids are remembered, a bounded number, in
// the state ConfigMap, so a restart or a new leader refuses replays too.
// While the source is not running (a standby replica) requests get 503;
// the agent's HTTP server hands them to the leader first.
//
// Where GitHub cannot reach the agent, the source polls (poll.go): one
// conditional request per repository and interval, what changed since
// the previous poll fed to the same per-pull-request logic as a webhook,
// and what was seen kept in the state ConfigMap.
package github

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	gh "github.com/google/go-github/v60/github"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/source/webhook"
)

// MaxBodyBytes caps a delivery's body: GitHub caps payloads at 25 MB.
const MaxBodyBytes = 25 << 20

// Reasons of the events: a pull request's head changed (opened, pushed
// to, reopened), or it was merged.
const (
	ReasonUpdated = "PullRequestUpdated"
	ReasonMerged  = "PullRequestMerged"
)

// Source receives one configured GitHub webhook.
type Source struct {
	name    string
	cluster string
	secret  []byte
	gh      *github.Client
	kube    client.Client
	state   chat.StateStore
	keep    int
	log     *slog.Logger
	// poll is the polling mode, nil when the source only takes webhooks.
	poll *poller

	webhook.Receiver

	// claim serialises the read-modify-write of the delivery ids.
	claim sync.Mutex
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{kustomizev1.AddToScheme, sourcev1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // the schemes of linked-in API packages: a build defect
		}
	}
	return s
}()

// New builds the source from its validated config. It reads
// Kustomizations, GitRepositories and Argo CD Applications through cfg
// (the agent's own identity) and keeps delivery ids in st. It contacts
// nothing.
func New(sc config.Source, cluster string, cfg *rest.Config, st chat.StateStore, log *slog.Logger) (*Source, error) {
	g := sc.GitHub
	if g == nil || (g.Poll == nil && (g.WebhookSecret == nil || g.WebhookSecret.IsZero())) {
		return nil, fmt.Errorf("source %q: github.webhookSecret is required unless the source polls (github.poll)", sc.Name)
	}
	if cfg == nil {
		return nil, fmt.Errorf("source %q: a github source needs a cluster connection (in-cluster or --kubeconfig) to find the Kustomizations and Applications a pull request touches", sc.Name)
	}
	if st == nil {
		return nil, fmt.Errorf("source %q: a github source needs the state store", sc.Name)
	}
	api, _, err := github.Connect(g.API, nil)
	if err != nil {
		return nil, fmt.Errorf("source %q: github.api.%w", sc.Name, err)
	}
	kube, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", sc.Name, err)
	}
	keep := g.Deliveries
	if keep == 0 {
		keep = config.DefaultDeliveries
	}
	s := &Source{name: sc.Name, cluster: cluster, gh: api, kube: kube, state: st, keep: keep, log: log.With("source", sc.Name)}
	if g.WebhookSecret != nil && !g.WebhookSecret.IsZero() {
		s.secret = []byte(g.WebhookSecret.Reveal())
	}
	if g.Poll != nil {
		s.poll = newPoller(g.Poll)
	}
	return s, nil
}

// Start takes deliveries, and polls when configured, until ctx is done.
func (s *Source) Start(ctx context.Context, emit func(context.Context, event.Event)) error {
	if s.poll == nil {
		return s.Receiver.Start(ctx, emit)
	}
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		s.runPoll(ctx, emit)
	}()
	err := s.Receiver.Start(ctx, emit)
	<-polled
	return err
}

// Name is the configured source name.
func (s *Source) Name() string { return s.name }

// Path is where the agent's HTTP server mounts the receiver.
func (s *Source) Path() string { return "/github/" + s.name }

// ServeHTTP handles one delivery.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.secret == nil {
		http.Error(w, "this source polls GitHub and takes no webhooks (github.webhookSecret is not set)", http.StatusNotFound)
		return
	}
	if !webhook.Post(w, r) {
		return
	}
	body, ok := webhook.Body(w, r, MaxBodyBytes)
	if !ok {
		return
	}
	sig := r.Header.Get(gh.SHA256SignatureHeader)
	if !strings.HasPrefix(sig, "sha256=") {
		http.Error(w, "X-Hub-Signature-256 is missing: set the webhook's secret on GitHub", http.StatusUnauthorized)
		s.log.Warn("github webhook refused: no signature", "remote", r.RemoteAddr)
		return
	}
	if err := gh.ValidateSignature(sig, body, s.secret); err != nil {
		http.Error(w, "X-Hub-Signature-256 does not match the body and the configured secret", http.StatusUnauthorized)
		s.log.Warn("github webhook refused: bad signature", "remote", r.RemoteAddr)
		return
	}
	kind, id := gh.WebHookType(r), gh.DeliveryID(r)
	if kind == "" || id == "" {
		http.Error(w, "X-GitHub-Event and X-GitHub-Delivery are required", http.StatusBadRequest)
		return
	}
	payload, err := gh.ParseWebHook(kind, body)
	if err != nil {
		http.Error(w, fmt.Sprintf("the body is not a %s payload: %v", kind, err), http.StatusBadRequest)
		return
	}
	emit, ctx := s.Running()
	if emit == nil {
		// A standby replica, or shutting down: GitHub can redeliver.
		http.Error(w, "this agent is not taking deliveries right now", http.StatusServiceUnavailable)
		return
	}
	pr, ok := payload.(*gh.PullRequestEvent)
	if !ok {
		// ping, and events this source does not act on.
		fmt.Fprintf(w, "ignored: %s events are not acted on\n", kind)
		return
	}
	fresh, err := s.claimDelivery(ctx, id, true)
	if err != nil {
		http.Error(w, "cannot record the delivery: "+err.Error(), http.StatusServiceUnavailable)
		s.log.Error("github delivery not recorded", "delivery", id, "err", err)
		return
	}
	if !fresh {
		fmt.Fprintf(w, "delivery %s was already processed\n", id)
		s.log.Info("github delivery replayed; ignored", "delivery", id)
		return
	}
	n := 0
	err = s.delivered(ctx, pr, func() (err error) {
		n, err = s.pullRequest(ctx, id, pr, emit)
		return err
	})
	if err != nil {
		// Forget the id, so that GitHub's redelivery is processed.
		if _, ferr := s.claimDelivery(ctx, id, false); ferr != nil {
			s.log.Error("github delivery id not released", "delivery", id, "err", ferr)
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		s.log.Error("github delivery not processed", "delivery", id, "err", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "%d event(s)\n", n)
}

// stateKey holds the source's recent delivery ids, oldest first.
func (s *Source) stateKey() string { return "github." + s.name + ".deliveries" }

// claimDelivery records id as processed (add) or forgets it (!add). On
// add it reports whether id is new; the list keeps the newest s.keep ids.
func (s *Source) claimDelivery(ctx context.Context, id string, add bool) (bool, error) {
	s.claim.Lock()
	defer s.claim.Unlock()
	v, _ := s.state.Get(s.stateKey())
	ids := strings.Fields(v)
	i := slices.Index(ids, id)
	switch {
	case add && i >= 0:
		return false, nil
	case add:
		ids = append(ids, id)
		if len(ids) > s.keep {
			ids = ids[len(ids)-s.keep:]
		}
	case i < 0:
		return false, nil
	default:
		ids = slices.Delete(ids, i, i+1)
	}
	return true, s.state.Set(ctx, s.stateKey(), strings.Join(ids, " "))
}

// pullRequest emits the events of a pull_request delivery and returns how many.
func (s *Source) pullRequest(ctx context.Context, delivery string, p *gh.PullRequestEvent, emit func(context.Context, event.Event)) (int, error) {
	pr := p.GetPullRequest()
	reason, sha := ReasonUpdated, pr.GetHead().GetSHA()
	switch p.GetAction() {
	case "opened", "synchronize", "reopened":
	case "closed":
		if !pr.GetMerged() {
			return 0, nil
		}
		reason, sha = ReasonMerged, pr.GetMergeCommitSHA()
	default:
		return 0, nil
	}
	repo := github.Repo{Owner: p.GetRepo().GetOwner().GetLogin(), Name: p.GetRepo().GetName()}
	if repo.Owner == "" || repo.Name == "" || pr.GetNumber() <= 0 || sha == "" {
		return 0, fmt.Errorf("the pull_request payload lacks its repository, number or commit")
	}
	targets, err := s.targets(ctx, repo)
	if err != nil || len(targets) == 0 {
		return 0, err
	}
	files, err := s.gh.ChangedFiles(ctx, repo, pr.GetNumber())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range targets {
		dir, ok := t.touched(files)
		if !ok {
			continue
		}
		emit(ctx, s.event(repo, pr, reason, sha, dir, t))
		n++
	}
	s.log.Debug("github pull request", "delivery", delivery, "repository", repo.String(), "number", pr.GetNumber(), "events", n)
	return n, nil
}

// event is the event of pull request pr for target t, whose path dir
// it touches.
func (s *Source) event(repo github.Repo, pr *gh.PullRequest, reason, sha, dir string, t target) event.Event {
	number := strconv.Itoa(pr.GetNumber())
	obj := t.obj
	h := sha256.Sum256([]byte(strings.Join([]string{repo.String(), number, reason, sha, obj.String()}, "\x00")))
	where := fmt.Sprintf("%s#%s", repo, number)
	headline := fmt.Sprintf("Pull request %s touches %s at %s", where, obj, shortSHA(sha))
	msg := pr.GetTitle()
	if reason == ReasonMerged {
		headline = fmt.Sprintf("Pull request %s was merged: %s will apply %s", where, obj, shortSHA(sha))
	}
	ev := event.Event{
		Source:   s.name,
		Cluster:  s.cluster,
		Type:     event.Update,
		Level:    event.Info,
		Object:   obj,
		Reason:   reason,
		Message:  msg,
		Headline: headline,
		Time:     time.Now(),
		UID:      t.uid,
		ID:       hex.EncodeToString(h[:12]),
		// A pull request's events about one object share a thread:
		// its pushes' reports and its merge's rollout follow the first.
		Thread: fmt.Sprintf("github:%s#%s:%s", repo, number, obj),
		Labels: map[string]string{
			"repository": repo.String(), "pr": number, "sha": sha, "path": "./" + dir, "branch": pr.GetHead().GetRef(),
		},
		Fields: []event.Field{
			{Name: "Pull request", Value: pr.GetHTMLURL()},
			{Name: "Branch", Value: pr.GetHead().GetRef()},
			{Name: "Commit", Value: sha},
			{Name: "Path", Value: "./" + dir},
		},
	}
	if u := pr.GetHTMLURL(); u != "" {
		ev.Buttons = []event.Button{{Label: "View PR", URL: u}}
	}
	return ev
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
