package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// auditPolicy records every request at the Metadata level, once, when its
// response is complete.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`

// AuditLog is the API server's audit log (JSON lines, one audit.k8s.io/v1 Event each).
func (e *Env) AuditLog() string { return filepath.Join(e.Dir, "audit.log") }

// AuditEvents returns the audit events logged so far.
func (e *Env) AuditEvents() ([]auditv1.Event, error) {
	f, err := os.Open(e.AuditLog())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []auditv1.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev auditv1.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("testenv: audit log line: %w", err)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// ActingUser is who a request acted as: the impersonated user if any, else
// the authenticated one.
func ActingUser(ev auditv1.Event) string {
	if ev.ImpersonatedUser != nil {
		return ev.ImpersonatedUser.Username
	}
	return ev.User.Username
}

// WaitForAudit polls the audit log until an event matches, and returns
// every event logged up to then: a barrier for "nothing else reached the
// server" checks (send a sentinel request, wait for it, look at the rest).
func (e *Env) WaitForAudit(ctx context.Context, match func(auditv1.Event) bool) ([]auditv1.Event, error) {
	var events []auditv1.Event
	err := e.poll(ctx, "audit event", 30*time.Second, func() error {
		var err error
		if events, err = e.AuditEvents(); err != nil {
			return err
		}
		for _, ev := range events {
			if match(ev) {
				return nil
			}
		}
		return fmt.Errorf("no matching audit event among %d", len(events))
	})
	return events, err
}
