package fake

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Faults is the fault injection a fake platform server offers its tests:
// an outage (SetDown) and a budget of failing calls (FailNext), consulted
// once per API call with Next, which also counts the calls. The zero value
// is ready: no outage, no failures pending, no calls. A Faults is safe for
// concurrent use.
type Faults struct {
	mu    sync.Mutex
	calls int
	down  bool
	left  int   // how many more calls fail with fail
	fail  Fault // what FailNext injects
}

// Fault is the failure one API call must get.
type Fault struct {
	// Status is the HTTP status to answer with.
	Status int
	// RetryAfter is how long the client should wait before retrying; it is
	// never negative, and 0 when the failure names no wait.
	RetryAfter time.Duration
	// Outage reports that the failure comes from SetDown, not from FailNext.
	Outage bool
}

// FailNext makes the next n calls fail with the status, replacing any
// failures still pending; n <= 0 cancels them. A negative retryAfter counts
// as 0. The status is taken as given; see ErrorStatus for fakes that only
// inject error statuses.
func (f *Faults) FailNext(n, status int, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left = max(n, 0)
	f.fail = Fault{Status: status, RetryAfter: max(retryAfter, 0)}
}

// SetDown starts or ends an outage: while down, Next fails every call with
// HTTP 503 and leaves the failures of FailNext pending until it ends.
func (f *Faults) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// Down reports whether an outage is on.
func (f *Faults) Down() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// Next records one API call and returns the failure it must get, if any:
// during an outage a 503 with Outage set, else the next failure of FailNext's
// budget, which it uses up.
func (f *Faults) Next() (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	switch {
	case f.down:
		return Fault{Status: http.StatusServiceUnavailable, Outage: true}, true
	case f.left > 0:
		f.left--
		return f.fail, true
	}
	return Fault{}, false
}

// Calls returns how many calls Next has recorded, failed ones included.
func (f *Faults) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// RetryAfterSeconds returns RetryAfter in whole seconds, rounded up: 0 when
// RetryAfter is 0, at least 1 otherwise.
func (f Fault) RetryAfterSeconds() int {
	return int((max(f.RetryAfter, 0) + time.Second - 1) / time.Second)
}

// SetRetryAfter sets the Retry-After header to RetryAfterSeconds when the
// failure names a wait, and leaves the header alone when it does not.
func (f Fault) SetRetryAfter(h http.Header) {
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(f.RetryAfterSeconds()))
	}
}

// ErrorStatus returns status if it is an HTTP error status (400 to 599),
// and 500 Internal Server Error otherwise.
func ErrorStatus(status int) int {
	if status < 400 || status > 599 {
		return http.StatusInternalServerError
	}
	return status
}
