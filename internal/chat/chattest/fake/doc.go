// Package fake holds the pieces every loopback fake of a chat platform
// (slacktest, teamstest, discordtest, mattermosttest) needs and would
// otherwise write again: fault injection (Faults), waiting for the fake's
// state to change (Signal), strictly increasing timestamps (Monotonic),
// server-side websocket bookkeeping (Socket, Drop) and a few HTTP helpers.
//
// It knows no platform: each fake still decides which of its endpoints
// faults apply to and writes its own platform's error bodies and headers.
package fake
