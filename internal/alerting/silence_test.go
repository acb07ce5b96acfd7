package alerting

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/event"
)

func TestParseSilenceMatchers(t *testing.T) {
	ms, err := ParseSilenceMatchers([]string{`namespace="web"`, `{reason=~"BackOff|Failed", kind!=Job}`})
	require.NoError(t, err)
	require.Len(t, ms, 3)
	for _, bad := range [][]string{nil, {`name=~".*"`}, {`name!="x"`}, {`=x`}, {`name=~"("`}} {
		_, err := ParseSilenceMatchers(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestSilenceLabels(t *testing.T) {
	ev := event.Event{Source: "pods", Cluster: "prod", Reason: "BackOff",
		Object:       event.Object{Kind: "Pod", Namespace: "web", Name: "web-1"},
		ObjectLabels: map[string]string{"app": "web", "name": "shadowed"},
		Labels:       map[string]string{"severity": "warning"}}
	require.Equal(t, map[string]string{"app": "web", "name": "web-1", "severity": "warning", "cluster": "prod",
		"source": "pods", "namespace": "web", "kind": "Pod", "reason": "BackOff",
		"pod": "web-1", "statefulset": "web"}, SilenceLabels(ev))
	ev.Object = event.Object{Kind: "Pod", Namespace: "web", Name: "api-7d4b9c6f8-x2x9z"}
	l := SilenceLabels(ev)
	require.Equal(t, "api", l["deployment"], "a pod of a ReplicaSet names its Deployment")
	require.Equal(t, "api-7d4b9c6f8-x2x9z", l["pod"])
	ev.Object = event.Object{Kind: "Job", Namespace: "web", Name: "backup"}
	require.Equal(t, "backup", SilenceLabels(ev)["job_name"])
}

// TestDecisionsAreBounded: the record keeps the last max events, and
// forgets the deliveries it waited for with them.
func TestDecisionsAreBounded(t *testing.T) {
	d := NewDecisions(3)
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		tr := d.begin(event.Event{Object: event.Object{Kind: "Pod", Name: name}})
		d.queued(tr, "chat/ops", name, "bound", "")
		if i == 4 {
			d.delivered(name, true, nil)
		}
	}
	require.Empty(t, d.Explain("pod", "", "a"))
	require.Empty(t, d.Explain("pod", "", "b"))
	require.Len(t, d.byKey, 2, "c and d still wait; a and b left with their traces")
	require.Len(t, d.keysOf, 3, "only the traces in the ring keep their keys")
	got := d.Explain("POD", "", "e")
	require.Len(t, got, 1)
	require.Equal(t, []Decision{{Channel: "chat/ops", Outcome: OutcomePosted, Rule: "bound"}}, got[0].Decisions)
}
