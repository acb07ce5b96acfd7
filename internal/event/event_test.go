package event

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFingerprint(t *testing.T) {
	base := Event{Source: "k8s", Cluster: "c", Type: Warning, Reason: "BackOff", Message: "one",
		Object: Object{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "p"}}
	same := base
	same.Message, same.Count = "two", 5
	require.Equal(t, base.Fingerprint(), same.Fingerprint(), "message and count do not change identity")

	for name, mutate := range map[string]func(*Event){
		"reason":    func(e *Event) { e.Reason = "Failed" },
		"name":      func(e *Event) { e.Object.Name = "q" },
		"namespace": func(e *Event) { e.Object.Namespace = "other" },
		"cluster":   func(e *Event) { e.Cluster = "d" },
		"type":      func(e *Event) { e.Type = Update },
		// Field boundaries are separated, so "a"+"bc" differs from "ab"+"c".
		"boundary": func(e *Event) { e.Object.Namespace, e.Object.Name = "nsp", "" },
	} {
		t.Run(name, func(t *testing.T) {
			e := base
			mutate(&e)
			require.NotEqual(t, base.Fingerprint(), e.Fingerprint())
		})
	}
}

func TestTitle(t *testing.T) {
	e := Event{Type: Create, Object: Object{Kind: "Pod", Namespace: "default", Name: "web"}}
	require.Equal(t, "Pod default/web created", e.Title())
	e = Event{Type: Warning, Reason: "BackOff", Object: Object{Kind: "Node", Name: "n1"}}
	require.Equal(t, "Node n1 warning (BackOff)", e.Title())
}
