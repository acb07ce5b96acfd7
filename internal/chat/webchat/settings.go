package webchat

import (
	"errors"
	"fmt"
	"golang.org/x/crypto/bcrypt"
	"regexp"
	"time"

	"github.com/kubechat/kubechat/internal/config"
)

// Settings configure one web chat.
type Settings struct {
	// Auth is how people sign in, and is required: "token" (one shared
	// access token), "basic" (HTTP basic auth with users) or "none" (no
	// sign-in at all: anyone who reaches the port can run the channels'
	// commands; it must be chosen explicitly).
	Auth string `yaml:"auth"`
	// Token is the access token, for auth: token.
	Token *config.Secret `yaml:"token"`
	// Users are the accounts, for auth: basic.
	Users []User `yaml:"users"`
	// Channels are the ids of the channels the page offers: the id (or
	// name) of each channel in the config's channels list that is on this
	// platform. Required. A message to any other channel is refused.
	Channels []string `yaml:"channels"`
	// Title heads the page (default "kubechat").
	Title string `yaml:"title"`
	// BotName is the mention a typed command may start with (default
	// "kubechat", for "@kubechat kubectl get pods"); it is optional.
	BotName string `yaml:"botName"`
	// History is how many messages each channel keeps for pages opened or
	// reconnecting later (default 500).
	History int `yaml:"history"`
	// SessionTTL is how long a sign-in with the token lasts (default 12h).
	SessionTTL config.Duration `yaml:"sessionTTL"`
	// MaxConcurrentCommands bounds the commands handled at once (default 16).
	MaxConcurrentCommands int `yaml:"maxConcurrentCommands"`
	// URL is the address people open this page at, through the Ingress or
	// proxy in front of the agent (https://kubechat.example.com/chat/web/).
	// Links to its messages (a PagerDuty trigger's, a commit status's)
	// point into it; without it, its messages have no links.
	URL string `yaml:"url"`
}

// User is one account for auth: basic.
type User struct {
	// Name is what the user signs in with; it is also the user id that
	// commands, audit logs and the config's users list see.
	Name     string         `yaml:"name"`
	Password *config.Secret `yaml:"password"`
	// PasswordHash is a bcrypt hash of the password ($2a$, $2b$ or $2y$,
	// as htpasswd -B or Prometheus' web config make them), instead of
	// Password: the config then holds no password at all.
	PasswordHash string `yaml:"passwordHash"`
}

// Auth modes.
const (
	authToken = "token"
	authBasic = "basic"
	authNone  = "none"
)

// Defaults and bounds of the settings.
const (
	defaultTitle      = "kubechat"
	defaultBotName    = "kubechat"
	defaultHistory    = 500
	maxHistory        = 10000
	defaultSessionTTL = 12 * time.Hour
	// minTokenLength keeps guessable tokens out.
	minTokenLength = 16
)

// channelID is what a channel id may look like: it appears in the page's
// addresses and in its channel list.
var channelID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

// userName is what a basic-auth user name may look like (no ':', which
// basic auth cannot carry).
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// botName is what the mention may look like.
var botName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// validate checks s and fills in its defaults; every error names its field.
func (s *Settings) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	hasToken := s.Token != nil && !s.Token.IsZero()
	switch s.Auth {
	case authToken:
		if !hasToken {
			add("settings.token: is required with auth: token")
		} else if len(s.Token.Reveal()) < minTokenLength {
			add("settings.token: is too short: use at least %d characters (from %s)", minTokenLength, s.Token.Source())
		}
		if len(s.Users) > 0 {
			add("settings.users: is for auth: basic, but auth is token")
		}
	case authBasic:
		if len(s.Users) == 0 {
			add("settings.users: at least one user is required with auth: basic")
		}
		if s.Token != nil {
			add("settings.token: is for auth: token, but auth is basic")
		}
	case authNone:
		if s.Token != nil {
			add("settings.token: is for auth: token, but auth is none")
		}
		if len(s.Users) > 0 {
			add("settings.users: is for auth: basic, but auth is none")
		}
	case "":
		add("settings.auth: is required: token, basic, or none (none lets anyone who reaches the agent's port run commands)")
	default:
		add("settings.auth: unknown mode %q (known: token, basic, none)", s.Auth)
	}
	seenUser := map[string]bool{}
	for i, u := range s.Users {
		switch {
		case !userName.MatchString(u.Name):
			add("settings.users[%d].name: %q must be letters, digits and . _ @ - (at most 64)", i, u.Name)
		case seenUser[u.Name]:
			add("settings.users[%d].name: %q is listed twice", i, u.Name)
		}
		seenUser[u.Name] = true
		hasPassword := u.Password != nil && !u.Password.IsZero()
		switch {
		case hasPassword && u.PasswordHash != "":
			add("settings.users[%d]: set password or passwordHash, not both", i)
		case !hasPassword && u.PasswordHash == "":
			add("settings.users[%d].password: is required (or passwordHash, a bcrypt hash)", i)
		case u.PasswordHash != "":
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				add("settings.users[%d].passwordHash: is not a bcrypt hash ($2a$, $2b$ or $2y$): %v", i, err)
			}
		}
	}
	if s.URL != "" {
		if err := config.CheckHTTPURL("settings.url", s.URL); err != nil {
			errs = append(errs, err)
		}
	}
	if len(s.Channels) == 0 {
		add("settings.channels: list at least one channel id (the channels of this platform in the config's channels list)")
	}
	seenChannel := map[string]bool{}
	for i, c := range s.Channels {
		switch {
		case !channelID.MatchString(c):
			add("settings.channels[%d]: %q must be letters, digits and . _ - (at most 80)", i, c)
		case seenChannel[c]:
			add("settings.channels[%d]: %q is listed twice", i, c)
		}
		seenChannel[c] = true
	}
	if s.BotName != "" && !botName.MatchString(s.BotName) {
		add("settings.botName: %q must be letters, digits and . _ - (no @)", s.BotName)
	}
	if s.History < 0 || s.History > maxHistory {
		add("settings.history: must be between 1 and %d, got %d", maxHistory, s.History)
	}
	if s.SessionTTL < 0 {
		add("settings.sessionTTL: must be positive, got %s", s.SessionTTL)
	}
	if s.MaxConcurrentCommands < 0 {
		add("settings.maxConcurrentCommands: must be positive, got %d", s.MaxConcurrentCommands)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if s.Title == "" {
		s.Title = defaultTitle
	}
	if s.BotName == "" {
		s.BotName = defaultBotName
	}
	if s.History == 0 {
		s.History = defaultHistory
	}
	if s.SessionTTL == 0 {
		s.SessionTTL = config.Duration(defaultSessionTTL)
	}
	return nil
}
