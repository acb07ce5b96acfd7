package app

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
)

// TestSameRoutingSeesInhibitAndTemplates: a reload that changes the
// inhibit rules, the templates or which template a channel or source names
// builds a new pipeline (the old one would keep the old ones); changing
// nothing the pipeline reads keeps it.
func TestSameRoutingSeesInhibitAndTemplates(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{
			Channels: []config.Channel{{Name: "ops", Platform: "chat", ID: "ops", Bindings: config.Bindings{Sources: []string{"pods"}}}},
			Sources:  []config.Source{{Name: "pods", Type: "kubernetes"}},
		}
	}
	gen := func(c *config.Config) *generation { return &generation{cfg: c, byName: nil} }
	prev := gen(base())

	same := base()
	same.Aliases = map[string]string{"k": "kubectl"}
	require.True(t, sameRouting(prev, gen(same)))

	for name, change := range map[string]func(*config.Config){
		"inhibit rules": func(c *config.Config) {
			c.Inhibit.Rules = []config.InhibitRule{{SourceMatchers: []string{`severity="critical"`}, TargetMatchers: []string{`source="pods"`}}}
		},
		"forgetAfter":      func(c *config.Config) { c.Inhibit.ForgetAfter = config.Duration(1) },
		"templates":        func(c *config.Config) { c.Templates = []config.Template{{Name: "t", Title: "x"}} },
		"channel template": func(c *config.Config) { c.Channels[0].Template = "t" },
		"source template":  func(c *config.Config) { c.Sources[0].Template = "t" },
	} {
		c := base()
		change(c)
		require.False(t, sameRouting(prev, gen(c)), name)
	}
}
