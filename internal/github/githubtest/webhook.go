package githubtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
)

// Signature is the X-Hub-Signature-256 GitHub sends with body for secret.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Delivery is one webhook request as GitHub sends it.
type Delivery struct {
	// Event is X-GitHub-Event ("pull_request", "ping").
	Event string
	// ID is X-GitHub-Delivery.
	ID string
	// Body is the JSON payload.
	Body []byte
	// Signature overrides X-Hub-Signature-256; "" signs Body with the
	// secret, "-" sends none.
	Signature string
}

// Deliver posts d to url signed with secret and returns the response's
// status code and body.
func Deliver(url, secret string, d Delivery) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/fake")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.ID)
	switch d.Signature {
	case "":
		req.Header.Set("X-Hub-Signature-256", Signature(secret, d.Body))
	case "-":
	default:
		req.Header.Set("X-Hub-Signature-256", d.Signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// PullRequestEvent is the payload of a pull_request webhook with action
// ("opened", "synchronize", "reopened", "closed") for pr as the fake
// serves it now; mergeSHA, when set, makes it merged at that commit. It
// is nil when the fake has no such pull request.
func (s *Server) PullRequestEvent(action, owner, repo string, number int, mergeSHA string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	pr := s.prs[fmt.Sprintf("%s/%s#%d", owner, repo, number)]
	if pr == nil {
		return nil
	}
	j := s.prJSON(pr)
	if mergeSHA != "" {
		j["merged"] = true
		j["merge_commit_sha"] = mergeSHA
		j["state"] = "closed"
	}
	body, _ := json.Marshal(map[string]any{
		"action":       action,
		"number":       number,
		"pull_request": j,
		"repository": map[string]any{"name": repo, "full_name": owner + "/" + repo, "owner": map[string]any{"login": owner},
			"clone_url": fmt.Sprintf("%s/%s/%s.git", s.Server.URL, owner, repo)},
	})
	return body
}
