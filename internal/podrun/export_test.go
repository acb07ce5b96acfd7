package podrun

import "time"

// PhasesOf is stamps.phases, for the external tests.
func PhasesOf(start, created, scheduled, started, ended, collected time.Time) Phases {
	s := stamps{created: created, scheduled: scheduled, started: started, ended: ended}
	return s.phases(start, collected)
}
