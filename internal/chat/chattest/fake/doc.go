// Package fake holds what every loopback fake of a chat platform
// (slacktest, teamstest, discordtest, mattermosttest) is made of, whatever
// the platform's wire format: a Store of channels, messages with their
// edits and threads, files and the waits on them, with the faults injected
// into the platform's API (Faults) and a Signal that wakes the waits; a Hub
// that keeps the platform's websockets (Conn, Socket, Drop); a Caller that
// calls the bot over HTTP; and Server, which holds them with the HTTP
// server and gives every fake the same test-side controls (FailNext,
// SetDown, Calls, ChannelID, Connections, Connected, WaitConnected, Drop,
// Close). A few helpers read and answer HTTP requests.
//
// It knows no platform: each fake embeds a Server and keeps only its
// platform's JSON shapes, endpoints, websocket or gateway protocol, ids and
// error bodies, including what its injected faults look like.
package fake
