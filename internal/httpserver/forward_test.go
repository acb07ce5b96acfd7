package httpserver

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestToLeader: the leader serves; another replica hands the request on,
// body and headers intact; a request handed on once is not handed on
// again; without a known leader the answer is 503.
func TestToLeader(t *testing.T) {
	var served atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		body, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
	})
	leader := httptest.NewServer(ToLeader(h, func() (bool, string) { return true, "" }))
	defer leader.Close()
	standby := httptest.NewServer(ToLeader(h, func() (bool, string) { return false, leader.URL }))
	defer standby.Close()
	lost := httptest.NewServer(ToLeader(h, func() (bool, string) { return false, "" }))
	defer lost.Close()
	loop := httptest.NewServer(ToLeader(h, func() (bool, string) { return false, standby.URL }))
	defer loop.Close()

	post := func(url string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url+"/hooks/teams/api/messages", strings.NewReader("activity"))
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post(standby.URL)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "/hooks/teams/api/messages Bearer t activity", body)
	require.EqualValues(t, 1, served.Load(), "served once, by the leader")
	code, _ = post(lost.URL)
	require.Equal(t, http.StatusServiceUnavailable, code)
	code, _ = post(loop.URL)
	require.Equal(t, http.StatusServiceUnavailable, code, "no second hop")
	require.EqualValues(t, 1, served.Load())
}
