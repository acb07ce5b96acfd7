package config

import (
	"fmt"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/kubechat/kubechat/internal/autorun"
)

// CheckMatcher parses one Alertmanager label matcher, such as
// severity="critical" or team=~"web|db".
func CheckMatcher(m string) error {
	if _, err := labels.ParseMatcher(m); err != nil {
		return fmt.Errorf("invalid label matcher %q: %v", m, err)
	}
	return nil
}

// CheckActionCommand parses an action's command line and its placeholders.
func CheckActionCommand(text string) error {
	_, err := autorun.Parse(text, nil)
	return err
}
