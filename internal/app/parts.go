package app

import (
	"context"
	"maps"
	"slices"
	"strings"
)

// A supervisor runs one kind of the agent's work as named parts (the
// leader's: delivery, sources and the listeners that dial out; every
// replica's: the listeners that take inbound HTTP) and applies each
// generation a reload swaps in: a part the new generation keeps runs on,
// untouched; the others stop, and the new generation's start.

// Names of parts.
const (
	partAlerting    = "alerting"
	partCommandPods = "command-pods"
)

func sourcePart(name string) string       { return "source/" + name }
func listenerPart(platform string) string { return "platform/" + platform }

// supervisor takes generations to apply while run runs.
type supervisor struct {
	// leader is set on the leader's: a reload applies to it first, so
	// that the old pipeline drains while the old listeners still run.
	leader  bool
	apply   chan applyRequest
	stopped chan struct{} // closed once run stops taking requests
}

type applyRequest struct {
	gen  *generation
	done chan struct{}
}

func newSupervisor(leader bool) *supervisor {
	return &supervisor{leader: leader, apply: make(chan applyRequest), stopped: make(chan struct{})}
}

// run serves until ctx ends or a part fails: it applies each generation
// it is sent (apply gets the one that ran and the new one), and at the end
// stops every part and waits for them. It returns the first part's error.
func (s *supervisor) run(ctx context.Context, ps *parts, cur *generation, apply func(old, new *generation)) error {
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-ps.errs:
			break loop
		case req := <-s.apply:
			apply(cur, req.gen)
			cur = req.gen
			close(req.done)
		}
	}
	close(s.stopped)
	ps.stopAll()
	return err
}

// send has g applied and waits until it was, or until the supervisor
// stopped (the agent is stopping, or this replica stopped leading).
func (s *supervisor) send(g *generation) {
	req := applyRequest{gen: g, done: make(chan struct{})}
	select {
	case s.apply <- req:
	case <-s.stopped:
		return
	}
	select {
	case <-req.done:
	case <-s.stopped:
	}
}

// attach has sup hear of every generation swapped in from now on, and
// returns the one that runs.
func (a *App) attach(sup *supervisor) *generation {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.supervisors[sup] = true
	return a.gen.Load()
}

// detach stops sending sup new generations.
func (a *App) detach(sup *supervisor) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.supervisors, sup)
}

// parts are the running parts of one supervisor, by name. Each can be
// stopped on its own; the first error of a part that was not stopped ends
// the supervisor (as in an errgroup, the first failure stops all).
type parts struct {
	ctx     context.Context
	running map[string]*part
	errs    chan error
}

type part struct {
	id     any // what runs: a platform, a source, a pipeline
	cancel context.CancelFunc
	done   chan struct{}
}

func newParts(ctx context.Context) *parts {
	return &parts{ctx: ctx, running: map[string]*part{}, errs: make(chan error, 1)}
}

// start runs f as part name; id is what runs there, for runs.
func (ps *parts) start(name string, id any, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(ps.ctx)
	p := &part{id: id, cancel: cancel, done: make(chan struct{})}
	ps.running[name] = p
	go func() {
		defer close(p.done)
		if err := f(ctx); err != nil && ctx.Err() == nil {
			select {
			case ps.errs <- err:
			default:
			}
		}
	}()
}

// runs reports whether part name runs id.
func (ps *parts) runs(name string, id any) bool {
	p, ok := ps.running[name]
	return ok && p.id == id
}

// named lists the running parts whose names start with prefix.
func (ps *parts) named(prefix string) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(ps.running)) {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

// stop stops part name and waits until it returned.
func (ps *parts) stop(name string) {
	p, ok := ps.running[name]
	if !ok {
		return
	}
	p.cancel()
	<-p.done
	delete(ps.running, name)
}

// stopAll stops every part at once and waits for all of them.
func (ps *parts) stopAll() {
	for _, p := range ps.running {
		p.cancel()
	}
	for name, p := range ps.running {
		<-p.done
		delete(ps.running, name)
	}
}
