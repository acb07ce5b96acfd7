package alerting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// Silences mute the alerts of one channel that match Alertmanager label
// matchers, for a while or until the alert resolves. They are kept in the
// state ConfigMap (one entry for all), so a restart or a new leader keeps
// them. A silenced alert is not posted but counted, and the last few are
// listed with the silence; a resolution is never silenced, so an alert
// posted before the silence is still edited when it recovers.

// AlertMuter is implemented by an Actions that offers a Mute control under
// failure alerts: a select of how long (1h, 8h, 24h, until resolved) whose
// choice adds a silence of that alert in its channel. Like a button it
// carries only a signed id, and the command side authorises the choice
// (the channel's silence executor must allow "add").
type AlertMuter interface {
	MuteSelect(ctx context.Context, ev event.Event, platform string, ch chat.Channel) *chat.Select
}

// silencesKey is the state entry that holds every silence.
const silencesKey = "silences"

// silenceRetention is how long an expired silence stays listed.
const silenceRetention = 24 * time.Hour

// maxSilences bounds the silences kept (active and recently expired).
const maxSilences = 200

// silencedShown is how many silenced alerts a silence lists.
const silencedShown = 5

// Silence mutes the alerts of one channel that match all its matchers.
type Silence struct {
	ID string `json:"id"`
	// Matchers are Alertmanager matchers over the event's labels:
	// cluster, source, namespace, kind, name, reason, the object's labels
	// and an Alertmanager alert's labels.
	Matchers []string `json:"matchers"`
	// Platform and Channel (its configured name) are where it applies.
	Platform string `json:"platform"`
	Channel  string `json:"channel"`
	// CreatedBy is who added it.
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment,omitempty"`
	Start     time.Time `json:"start"`
	// End is when it expires; zero for one that lasts until an alert it
	// matches resolves (UntilResolved).
	End           time.Time `json:"end,omitzero"`
	UntilResolved bool      `json:"untilResolved,omitempty"`
	// Expired is when it was expired early (silence expire, or the
	// resolution it waited for).
	Expired time.Time `json:"expired,omitzero"`
	// Count is how many alerts it muted; Silenced lists the last few.
	Count    int      `json:"count"`
	Silenced []string `json:"silenced,omitempty"`

	parsed amlabels.Matchers
}

// Active reports whether s mutes alerts at now.
func (s Silence) Active(now time.Time) bool {
	if !s.Expired.IsZero() {
		return false
	}
	return s.UntilResolved || now.Before(s.End)
}

// ended is when s stopped muting (zero while it is active).
func (s Silence) ended(now time.Time) time.Time {
	switch {
	case !s.Expired.IsZero():
		return s.Expired
	case s.UntilResolved || now.Before(s.End):
		return time.Time{}
	}
	return s.End
}

// ParseSilenceMatchers parses matchers as Alertmanager writes them, each
// argument one matcher or a {...} list. A silence must match something:
// at least one matcher must refuse the empty value, as Alertmanager
// requires, so that no silence mutes every alert.
func ParseSilenceMatchers(args []string) (amlabels.Matchers, error) {
	var out amlabels.Matchers
	for _, a := range args {
		ms, err := amlabels.ParseMatchers(a)
		if err != nil {
			return nil, fmt.Errorf("matcher %q: %w", a, err)
		}
		out = append(out, ms...)
	}
	if len(out) == 0 {
		return nil, errors.New("a silence needs at least one matcher, such as namespace=\"prod\" reason=\"BackOff\"")
	}
	if !slices.ContainsFunc(out, func(m *amlabels.Matcher) bool { return !m.Matches("") }) {
		return nil, errors.New("these matchers match every alert; at least one must require a value")
	}
	return out, nil
}

// SilenceLabels are the labels silences and inhibit rules match ev by:
// the object's labels and an Alertmanager alert's labels, then cluster,
// source, namespace, kind, name and reason, which win over labels of the
// same name; then, where no label set them, the workload labels alert
// rules use (pod, deployment, statefulset, daemonset, job_name): the
// object's own kind's, and for a pod the controllers its name suggests.
func SilenceLabels(ev event.Event) map[string]string {
	l := map[string]string{}
	for k, v := range ev.ObjectLabels {
		l[k] = v
	}
	for k, v := range ev.Labels {
		l[k] = v
	}
	for k, v := range map[string]string{
		"cluster": ev.Cluster, "source": ev.Source, "namespace": ev.Object.Namespace,
		"kind": ev.Object.Kind, "name": ev.Object.Name, "reason": ev.Reason,
	} {
		if v != "" || l[k] == "" {
			l[k] = v
		}
	}
	if ev.Group == "" {
		addWorkloadLabels(l, ev)
	}
	return l
}

func (s *Silence) matches(labels map[string]string) bool { return matchAll(s.parsed, labels) }

// silences is the state-backed set of silences. Counts are kept in memory
// and written with the next flush; adding and expiring write at once.
type silences struct {
	state chat.StateStore
	log   *slog.Logger

	mu    sync.Mutex
	raw   string // the state value list was read from
	list  []*Silence
	dirty bool // counts not written yet
	// saveMu orders writes; it is taken before mu is released.
	saveMu sync.Mutex
}

// current refreshes the list from the state when another writer (a
// restart, the other replica) changed it; counts not yet written are kept.
// The caller holds mu.
func (ss *silences) current() []*Silence {
	v, _ := ss.state.Get(silencesKey)
	if v == ss.raw {
		return ss.list
	}
	var read []*Silence
	if v != "" {
		if err := json.Unmarshal([]byte(v), &read); err != nil {
			ss.log.Warn("ignoring unreadable silences in the state", "err", err)
			read = nil
		}
	}
	var kept []*Silence
	for _, s := range read {
		ms, err := ParseSilenceMatchers(s.Matchers)
		if err != nil {
			ss.log.Warn("ignoring a silence whose matchers no longer parse", "id", s.ID, "err", err)
			continue
		}
		s.parsed = ms
		if old := ss.find(s.ID); old != nil && old.Count > s.Count {
			s.Count, s.Silenced = old.Count, old.Silenced
		}
		kept = append(kept, s)
	}
	ss.raw, ss.list = v, kept
	return kept
}

func (ss *silences) find(id string) *Silence {
	for _, s := range ss.list {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// saveAndUnlock writes the list and releases mu, which the caller holds.
func (ss *silences) saveAndUnlock(ctx context.Context) error {
	now := time.Now()
	ss.list = slices.DeleteFunc(ss.list, func(s *Silence) bool {
		e := s.ended(now)
		return !e.IsZero() && now.Sub(e) > silenceRetention
	})
	value := ""
	if len(ss.list) > 0 {
		b, err := json.Marshal(ss.list)
		if err != nil {
			ss.mu.Unlock()
			return fmt.Errorf("save silences: %w", err)
		}
		value = string(b)
	}
	ss.dirty = false
	ss.raw = value
	ss.saveMu.Lock()
	defer ss.saveMu.Unlock()
	ss.mu.Unlock()
	if err := ss.state.Set(ctx, silencesKey, value); err != nil {
		return fmt.Errorf("save silences: %w", err)
	}
	return nil
}

// silencedBy returns the silence of s's channel that mutes ev, counting
// it, or nil. Resolutions are never silenced.
func (ss *silences) silencedBy(ev event.Event, platform, channel string, now time.Time) *Silence {
	if ev.Transition == event.Resolved {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var labels map[string]string
	for _, s := range ss.current() {
		if s.Platform != platform || s.Channel != channel || !s.Active(now) {
			continue
		}
		if labels == nil {
			labels = SilenceLabels(ev)
		}
		if s.matches(labels) {
			s.Count++
			s.Silenced = append(s.Silenced, now.UTC().Format(time.RFC3339)+" "+ev.Title())
			if len(s.Silenced) > silencedShown {
				s.Silenced = s.Silenced[len(s.Silenced)-silencedShown:]
			}
			ss.dirty = true
			c := *s
			return &c
		}
	}
	return nil
}

// resolve expires the until-resolved silences of a channel that match a
// resolution.
func (ss *silences) resolve(ctx context.Context, ev event.Event, platform, channel string) {
	if ev.Transition != event.Resolved {
		return
	}
	ss.mu.Lock()
	now := time.Now()
	changed := false
	var labels map[string]string
	for _, s := range ss.current() {
		if !s.UntilResolved || !s.Active(now) || s.Platform != platform || s.Channel != channel {
			continue
		}
		if labels == nil {
			labels = SilenceLabels(ev)
		}
		if s.matches(labels) {
			s.Expired = now
			changed = true
		}
	}
	if !changed {
		ss.mu.Unlock()
		return
	}
	if err := ss.saveAndUnlock(ctx); err != nil {
		ss.log.Warn("silence that ended with its alert's resolution not saved", "err", err)
	}
}

// flush writes counts not yet written.
func (ss *silences) flush(ctx context.Context) {
	ss.mu.Lock()
	if !ss.dirty {
		ss.mu.Unlock()
		return
	}
	if err := ss.saveAndUnlock(ctx); err != nil {
		ss.log.Warn("silenced alert counts not saved; they are written with the next change", "err", err)
	}
}

// silenceFlushInterval is how often counts of silenced alerts are written.
const silenceFlushInterval = 5 * time.Second

// flushSilences writes silenced alert counts until ctx is done, and once
// more then.
func (p *Pipeline) flushSilences(ctx context.Context) {
	t := time.NewTicker(silenceFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			p.silences.flush(fctx)
			return
		case <-t.C:
			p.silences.flush(ctx)
		}
	}
}

// AddSilence validates s (its matchers, its end), gives it an id and keeps
// it in the state. Platform and Channel name where it applies.
func (p *Pipeline) AddSilence(ctx context.Context, s Silence) (Silence, error) {
	ms, err := ParseSilenceMatchers(s.Matchers)
	if err != nil {
		return Silence{}, err
	}
	now := time.Now()
	if !s.UntilResolved && !s.End.After(now) {
		return Silence{}, errors.New("a silence must end in the future, or last until its alert resolves")
	}
	if s.UntilResolved {
		s.End = time.Time{}
	}
	s.parsed, s.Start, s.Count, s.Silenced, s.Expired = ms, now, 0, nil, time.Time{}
	s.Matchers = make([]string, len(ms))
	for i, m := range ms {
		s.Matchers[i] = m.String()
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Silence{}, fmt.Errorf("silence id: %w", err)
	}
	s.ID = hex.EncodeToString(id[:])
	ss := p.silences
	ss.mu.Lock()
	active := 0
	for _, o := range ss.current() {
		if o.Active(now) {
			active++
		}
	}
	if active >= maxSilences {
		ss.mu.Unlock()
		return Silence{}, fmt.Errorf("there are already %d active silences; expire some first", active)
	}
	ss.list = append(ss.list, &s)
	if err := ss.saveAndUnlock(ctx); err != nil {
		return Silence{}, err
	}
	return s, nil
}

// ExpireSilence ends the silence id of a channel now.
func (p *Pipeline) ExpireSilence(ctx context.Context, platform, channel, id string) (Silence, error) {
	ss := p.silences
	ss.mu.Lock()
	ss.current()
	s := ss.find(strings.TrimSpace(id))
	if s == nil || s.Platform != platform || s.Channel != channel {
		ss.mu.Unlock()
		return Silence{}, fmt.Errorf("no silence %q in this channel (silence list shows them)", id)
	}
	if !s.Active(time.Now()) {
		ss.mu.Unlock()
		return Silence{}, fmt.Errorf("silence %s has already ended", id)
	}
	s.Expired = time.Now()
	c := *s
	if err := ss.saveAndUnlock(ctx); err != nil {
		return Silence{}, err
	}
	return c, nil
}

// Silences are a channel's silences, active ones first, then those that
// ended within the last day.
func (p *Pipeline) Silences(platform, channel string) []Silence {
	ss := p.silences
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	var out []Silence
	for _, s := range ss.current() {
		if s.Platform == platform && s.Channel == channel {
			out = append(out, *s)
		}
	}
	slices.SortStableFunc(out, func(a, b Silence) int {
		if a.Active(now) != b.Active(now) {
			if a.Active(now) {
				return -1
			}
			return 1
		}
		return b.Start.Compare(a.Start)
	})
	return out
}
