package slacktest

import (
	"fmt"
	"strings"
)

// Several Slack apps can be installed in one workspace, each with its own
// bot user, bot token and app-level token. Slack delivers an app's Socket
// Mode envelopes to one of that app's open connections, never to another
// app's (https://api.slack.com/apis/socket-mode#connections: with several
// connections, each payload goes to one of them), so agents that must all
// hear a command need an app each. An app_mention goes only to the app
// whose bot is mentioned; a channel message goes to every app subscribed to
// message.channels; a click goes to the app that posted the message.

// App is one Slack app installed in the fake workspace.
type App struct {
	// Name is the bot's user name.
	Name string
	// BotToken and AppToken are the app's tokens; BotUserID its bot user.
	BotToken, AppToken, BotUserID string
}

type app struct {
	App
	botID, appID  string
	messageEvents bool // subscribed to message.channels (channel messages)
}

// defaultApp is the app New installs, with the package's constants.
func defaultApp() *app {
	return &app{App: App{Name: botName, BotToken: BotToken, AppToken: AppToken, BotUserID: BotUserID}, botID: botID, appID: appID}
}

// AddApp installs another app whose bot user is called name. With
// messageEvents, the app subscribes to message.channels and receives every
// channel message, as well as its app_mention events.
func (s *Server) AddApp(name string, messageEvents bool) App {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strings.ToUpper(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, name))
	lower := strings.ToLower(id)
	a := &app{App: App{
		Name: name, BotToken: "xoxb-kubechat-test-" + lower, AppToken: "xapp-kubechat-test-" + lower,
		BotUserID: fmt.Sprintf("U%s%d", id, s.nextSeqLocked()),
	}, botID: "B" + id, appID: "A" + id, messageEvents: messageEvents}
	s.apps = append(s.apps, a)
	return a.App
}

// SubscribeMessageEvents subscribes the app whose bot user is botUserID to
// message.channels, as AddApp's messageEvents does; it reports whether
// there is such an app.
func (s *Server) SubscribeMessageEvents(botUserID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.appByBotLocked(botUserID)
	if a != nil {
		a.messageEvents = true
	}
	return a != nil
}

// appByToken returns the app that owns token (bot or app-level, as kind
// says), or nil.
func (s *Server) appByToken(token, kind string) *app {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.apps {
		if (kind == BotToken && a.BotToken == token) || (kind == AppToken && a.AppToken == token) {
			return a
		}
	}
	return nil
}

// appByBotLocked returns the app whose bot user is id, or nil. s.mu must be held.
func (s *Server) appByBotLocked(id string) *app {
	for _, a := range s.apps {
		if a.BotUserID == id {
			return a
		}
	}
	return nil
}

func (s *Server) newestConnOf(a *app) *socketConn {
	conns := s.Hub.Conns()
	for i := len(conns) - 1; i >= 0; i-- {
		if conns[i].app == a {
			return conns[i]
		}
	}
	return nil
}

// Say posts a user's message into a channel, as typed, and delivers its
// events as Slack does: app_mention to each app whose bot the text mentions
// (<@U...>), and a message event to every app subscribed to
// message.channels. Apps without an open connection miss it, as with
// Slack. It returns the message's ts and the number of envelopes pushed.
func (s *Server) Say(channelID, userID, text string) (ts string, pushed int, err error) {
	if _, ok := s.Store.Channel(channelID); !ok {
		return "", 0, fmt.Errorf("say in %s: %w", channelID, errChannelNotFound)
	}
	s.mu.Lock()
	msg := s.postLocked(channelID, "", userID, text, nil)
	var conns []*socketConn
	var envs []envelope
	for _, a := range s.apps {
		conn := s.newestConnOf(a)
		if conn == nil {
			continue
		}
		if strings.Contains(text, "<@"+a.BotUserID+">") {
			conns = append(conns, conn)
			envs = append(envs, s.newEnvelopeLocked("events_api", s.eventCallbackLocked(a, messageEvent("app_mention", msg))))
		}
		if a.messageEvents {
			event := messageEvent("message", msg)
			event["channel_type"] = "channel"
			conns = append(conns, conn)
			envs = append(envs, s.newEnvelopeLocked("events_api", s.eventCallbackLocked(a, event)))
		}
	}
	s.mu.Unlock()
	for i, env := range envs {
		if !conns[i].SendJSON(env) {
			return msg.ID, pushed, fmt.Errorf("say in %s: %w", channelID, errNotConnected)
		}
		pushed++
	}
	return msg.ID, pushed, nil
}
