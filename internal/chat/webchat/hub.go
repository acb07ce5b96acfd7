package webchat

import (
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxChannelBytes bounds what one channel's history holds (messages and
// file contents), whatever its message count: the oldest go first.
const maxChannelBytes = 32 << 20

// streamBuffer is how many events a live stream may fall behind before it
// is cut; its page then reconnects and catches up from the history.
const streamBuffer = 256

// hub is the web chat's state: a bounded history per channel, and the live
// streams it feeds. Every change is one event with a sequence number;
// a stream that reconnects names the last one it got (Last-Event-ID) and
// receives every change after it, as long as the history still holds it.
type hub struct {
	// epoch tells this process's event and message ids from those of an
	// earlier one, which a page may still hold after a restart.
	epoch string
	limit int // messages per channel

	mu       sync.Mutex
	seq      uint64
	channels map[string]*channelLog
	// evicted is the newest event of any message dropped from a history: a
	// stream that has not seen it must start over.
	evicted uint64
	streams map[*stream]struct{}
	stopped bool
}

// channelLog is one channel's history, in posting order.
type channelLog struct {
	order []*record
	byID  map[string]*record
	bytes int
}

// record is one message of a history, as last changed.
type record struct {
	msg  wireMessage
	seq  uint64 // the event that last changed it
	data []byte // msg as JSON: the event's data
	// content is a file's content, served on its own.
	content string
	// actions are the message's action ids and the values each allows.
	actions map[string][]string
}

func (r *record) size() int { return len(r.data) + len(r.content) }

// event is one change as a stream sends it.
type event struct {
	id   string
	data []byte
}

// stream is one live event stream of one page.
type stream struct {
	events chan event
	// cut is closed when the stream must end: it fell behind, or the
	// platform stopped listening.
	cut  chan struct{}
	once sync.Once
}

func (s *stream) close() { s.once.Do(func() { close(s.cut) }) }

func newHub(channels []string, limit int) *hub {
	h := &hub{
		epoch:    strconv.FormatInt(time.Now().UnixMilli(), 36),
		limit:    limit,
		channels: map[string]*channelLog{},
		streams:  map[*stream]struct{}{},
	}
	for _, c := range channels {
		h.channels[c] = &channelLog{byID: map[string]*record{}}
	}
	return h
}

// known reports whether channel is one of the hub's.
func (h *hub) known(channel string) bool {
	_, ok := h.channels[channel] // never written after newHub
	return ok
}

// eventID is the stream id of event seq.
func (h *hub) eventID(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// add appends msg to its channel, with a new id unless it has one (the
// edit of a message the history no longer holds), and tells the streams.
// It returns the message as stored.
func (h *hub) add(msg wireMessage, content string) wireMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	log := h.channels[msg.Channel]
	if old, ok := log.byID[msg.ID]; ok && msg.ID != "" {
		h.editLocked(log, old, func(m *wireMessage) { m.fromEdit(msg) })
		return old.msg
	}
	h.seq++
	if msg.ID == "" {
		msg.ID = h.eventID(h.seq)
	}
	msg.Pos = h.seq
	if msg.File != nil {
		f := *msg.File
		f.URL = "api/files/" + url.PathEscape(msg.ID)
		msg.File = &f
	}
	r := &record{msg: msg, content: content, actions: msg.actions()}
	log.order = append(log.order, r)
	log.byID[msg.ID] = r
	h.store(log, r)
	h.evict(log)
	return r.msg
}

// edit changes message id of channel in place with change, and tells the
// streams. It reports false when the history does not hold the message.
func (h *hub) edit(channel, id string, change func(*wireMessage)) (wireMessage, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	log := h.channels[channel]
	r, ok := log.byID[id]
	if !ok {
		return wireMessage{}, false
	}
	h.editLocked(log, r, change)
	return r.msg, true
}

// editLocked applies change to r as a new event.
func (h *hub) editLocked(log *channelLog, r *record, change func(*wireMessage)) {
	h.seq++
	log.bytes -= r.size()
	change(&r.msg)
	r.msg.Edits++
	r.actions = r.msg.actions()
	h.store(log, r)
	h.evict(log)
}

// fromEdit takes an edit's content, keeping the message's place.
func (w *wireMessage) fromEdit(e wireMessage) {
	w.Title, w.Level, w.Text, w.Sections, w.Context = e.Title, e.Level, e.Text, e.Sections, e.Context
}

// store makes r event h.seq, counts its size and sends it to every stream.
// A stream that has fallen too far behind is cut.
func (h *hub) store(log *channelLog, r *record) {
	r.seq = h.seq
	data, err := json.Marshal(r.msg)
	if err != nil { // a wireMessage has only strings, numbers and times
		data = []byte(`{}`)
	}
	r.data = data
	log.bytes += r.size()
	ev := event{id: h.eventID(r.seq), data: data}
	for s := range h.streams {
		select {
		case s.events <- ev:
		default:
			s.close()
			delete(h.streams, s)
		}
	}
}

// evict drops the oldest messages beyond the channel's bounds; the newest
// one always stays.
func (h *hub) evict(log *channelLog) {
	n := 0
	for len(log.order)-n > 1 && (len(log.order)-n > h.limit || log.bytes > maxChannelBytes) {
		r := log.order[n]
		log.bytes -= r.size()
		delete(log.byID, r.msg.ID)
		h.evicted = max(h.evicted, r.seq)
		n++
	}
	if n > 0 {
		log.order = slices.Delete(log.order, 0, n)
	}
}

// get returns message id of channel.
func (h *hub) get(channel, id string) (record, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.channels[channel].byID[id]
	if !ok {
		return record{}, false
	}
	return *r, true
}

// find returns message id of any channel.
func (h *hub) find(id string) (record, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, log := range h.channels {
		if r, ok := log.byID[id]; ok {
			return *r, true
		}
	}
	return record{}, false
}

// last is the id of the latest event, or "" before the first.
func (h *hub) last() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seq == 0 {
		return ""
	}
	return h.eventID(h.seq)
}

// subscribe opens a stream for a page that last got event after ("" for
// none). It returns what the page missed, oldest first (everything, for a
// new page), and whether the page must first drop what it holds (after a
// restart of the agent, or a gap in the history). It returns nil once the hub is stopped.
func (h *hub) subscribe(after string) (s *stream, backlog []event, reset bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, nil, false
	}
	since, ok := h.parseEventID(after)
	reset = after != "" && (!ok || since < h.evicted)
	if reset || !ok {
		since = 0
	}
	var missed []*record
	for _, log := range h.channels {
		for _, r := range log.order {
			if r.seq > since {
				missed = append(missed, r)
			}
		}
	}
	slices.SortFunc(missed, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	for _, r := range missed {
		backlog = append(backlog, event{id: h.eventID(r.seq), data: r.data})
	}
	s = &stream{events: make(chan event, streamBuffer), cut: make(chan struct{})}
	h.streams[s] = struct{}{}
	return s, backlog, reset
}

// parseEventID reads an event id of this process.
func (h *hub) parseEventID(id string) (uint64, bool) {
	epoch, n, ok := strings.Cut(id, "-")
	if !ok || epoch != h.epoch {
		return 0, false
	}
	seq, err := strconv.ParseUint(n, 10, 64)
	if err != nil || seq > h.seq {
		return 0, false
	}
	return seq, true
}

// unsubscribe forgets s.
func (h *hub) unsubscribe(s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.streams, s)
	s.close()
}

// setStopped ends every stream and refuses new ones while stopped, so
// that the agent's HTTP server can shut down; the history stays.
func (h *hub) setStopped(stopped bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = stopped
	if stopped {
		for s := range h.streams {
			s.close()
			delete(h.streams, s)
		}
	}
}

// streamCount is how many streams are open.
func (h *hub) streamCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}
