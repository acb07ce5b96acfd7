package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestInhibitValidatedAtLoad: a matcher that does not parse is refused at
// load naming the config's file and line; a rule must select both sides;
// names are unique; forgetAfter has a floor and a default.
func TestInhibitValidatedAtLoad(t *testing.T) {
	const text = `cluster:
  name: dev
inhibit:
  forgetAfter: 10s
  rules:
    - name: workload
      sourceMatchers:
        - severity="critical"
        - alertname=~"(Kube"
      targetMatchers: ['source="pods"']
      equal: [namespace, "dep loyment", namespace]
    - name: workload
      sourceMatchers: ['severity="critical"']
`
	_, err := Parse(Known{}, File{Name: "t.yaml", Data: []byte(text)})
	require.Error(t, err)
	for _, want := range []string{
		`t.yaml:4: inhibit.forgetAfter: must be at least 1m`,
		`t.yaml:9: inhibit.rules[0].sourceMatchers[1]: invalid label matcher "alertname=~\"(Kube\""`,
		`t.yaml:11: inhibit.rules[0].equal[1]: "dep loyment" is not a label name`,
		`t.yaml:11: inhibit.rules[0].equal[2]: label "namespace" is listed twice (also equal[0])`,
		`t.yaml:12: inhibit.rules[1].name: duplicate name "workload" (also inhibit.rules[0])`,
		`inhibit.rules[1].targetMatchers: is required: at least one matcher selecting the alerts inhibited`,
	} {
		require.ErrorContains(t, err, want)
	}

	ok := `cluster:
  name: dev
inhibit:
  rules:
    - sourceMatchers: ['severity=~"warning|critical"']
      targetMatchers: ['source="pods"', 'reason!="Killing"']
      equal: [namespace, deployment]
`
	cfg, err := Parse(Known{}, File{Name: "ok.yaml", Data: []byte(ok)})
	require.NoError(t, err)
	require.Equal(t, Duration(5*time.Hour), cfg.Inhibit.ForgetAfter)
	require.Equal(t, []string{"namespace", "deployment"}, cfg.Inhibit.Rules[0].Equal)
}
