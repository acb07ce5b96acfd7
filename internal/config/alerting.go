package config

import (
	"fmt"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/kubechat/kubechat/internal/action"
)

// ParseMatcher parses one Alertmanager label matcher, such as
// severity="critical" or team=~"web|db", with an error that quotes it.
func ParseMatcher(m string) (*labels.Matcher, error) {
	pm, err := labels.ParseMatcher(m)
	if err != nil {
		return nil, fmt.Errorf("invalid label matcher %q: %v", m, err)
	}
	return pm, nil
}

// CheckActionCommand parses an action's command line and its placeholders.
func CheckActionCommand(text string) error {
	_, err := action.Parse(text, nil)
	return err
}
