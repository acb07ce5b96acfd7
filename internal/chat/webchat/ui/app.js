// kubechat web chat. Every text is put into the page with textContent or
// as a DOM node, never parsed as HTML: message content is data.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  const MAX_PER_CHANNEL = 2000; // what one channel keeps in the page
  const COLLAPSE_LINES = 16;    // longer code starts folded

  const state = {
    session: null,
    channel: '',
    messages: new Map(), // channel -> Map(id -> message)
    cards: new Map(),    // message id -> {key, node}
    threads: new Map(),  // root id -> {wrap, replies}
    unread: new Map(),   // channel -> count
    ready: false,        // the stream has caught up
    replyTo: '',         // thread root the composer types into
    retry: 1000,
    queued: false,
    stick: true,         // keep the view scrolled to the newest message
    sent: [],            // commands typed, for the arrow keys
    recall: -1,
    focus: '',           // the message the address names (#channel/id), until shown
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null && text !== '') node.textContent = text;
    return node;
  }

  // ---- talking to the agent

  async function post(path, body) {
    const res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status === 401) {
      location.reload(); // the session ended: sign in again
      throw new Error('Signed out');
    }
    let data = {};
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
    return data;
  }

  let source = null;
  let lastId = '';

  function connect() {
    const url = lastId ? `api/events?after=${encodeURIComponent(lastId)}` : 'api/events';
    source = new EventSource(url);
    setStatus('connecting');
    source.onopen = () => { state.retry = 1000; setStatus('live'); };
    source.onmessage = (e) => {
      if (e.lastEventId) lastId = e.lastEventId;
      try { receive(JSON.parse(e.data)); } catch (err) { console.error('bad event', err); }
    };
    source.addEventListener('reset', () => {
      for (const box of state.messages.values()) box.clear();
      state.cards.clear();
      state.threads.clear();
      state.ready = false;
      cancelReply(); // its thread may be gone
    });
    source.addEventListener('ready', () => { state.ready = true; schedule(); });
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        setStatus('reconnecting'); // the browser reconnects by itself, with Last-Event-ID
        return;
      }
      // Refused (the agent restarts, or the session ended): try again later.
      source.close();
      setStatus('offline');
      setTimeout(recover, state.retry);
      state.retry = Math.min(state.retry * 2, 30000);
    };
  }

  async function recover() {
    try {
      const res = await fetch('api/session', { credentials: 'same-origin' });
      if (res.status === 401) { location.reload(); return; }
    } catch (_) { /* still unreachable: connect reports it */ }
    connect();
  }

  function setStatus(s) {
    $('status').dataset.state = s;
    $('status-text').textContent = {
      live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline',
    }[s] || s;
  }

  // ---- the model

  function receive(m) {
    const box = state.messages.get(m.channel);
    if (!box) return;
    const fresh = !box.has(m.id);
    box.set(m.id, m);
    if (fresh && state.ready && m.channel !== state.channel) {
      state.unread.set(m.channel, (state.unread.get(m.channel) || 0) + 1);
    }
    if (box.size > MAX_PER_CHANNEL + 100) trim(box);
    schedule();
  }

  function trim(box) {
    const old = [...box.values()].sort((a, b) => a.pos - b.pos).slice(0, box.size - MAX_PER_CHANNEL);
    for (const m of old) {
      box.delete(m.id);
      state.cards.delete(m.id);
      state.threads.delete(m.id);
    }
  }

  function schedule() {
    if (state.queued) return;
    state.queued = true;
    requestAnimationFrame(render);
  }

  // ---- drawing

  function render() {
    state.queued = false;
    renderChannels();
    const list = $('messages');
    const box = state.messages.get(state.channel) || new Map();
    const all = [...box.values()].sort((a, b) => a.pos - b.pos);
    const roots = [];
    const replies = new Map();
    for (const m of all) {
      if (m.thread && box.has(m.thread)) {
        if (!replies.has(m.thread)) replies.set(m.thread, []);
        replies.get(m.thread).push(m);
      } else {
        roots.push(m);
      }
    }
    const nodes = roots.map((m) => thread(m, replies.get(m.id) || []));
    list.replaceChildren(...(nodes.length ? nodes : [empty()]));
    const focused = state.focus && box.has(state.focus) && state.cards.get(state.focus);
    if (focused) {
      // A link to a message (a pager's, a commit status's): show it.
      state.focus = '';
      state.stick = false;
      list.querySelectorAll('.msg.focused').forEach((n) => n.classList.remove('focused'));
      focused.node.classList.add('focused');
      focused.node.scrollIntoView({ block: 'center' });
    } else if (state.stick) list.scrollTop = list.scrollHeight;
    const unread = [...state.unread.values()].reduce((a, b) => a + b, 0);
    const title = state.session ? state.session.title : 'kubechat';
    document.title = `${unread ? `(${unread}) ` : ''}#${state.channel} · ${title}`;
  }

  function renderChannels() {
    const items = (state.session ? state.session.channels : []).map((c) => {
      const li = el('li');
      const b = el('button', 'channel');
      b.type = 'button';
      b.dataset.channel = c;
      b.append(el('span', 'hash', '#'), el('span', 'channel-label', c));
      const n = state.unread.get(c) || 0;
      if (n) b.append(el('span', 'unread', n > 99 ? '99+' : String(n)));
      if (c === state.channel) b.setAttribute('aria-current', 'true');
      b.addEventListener('click', () => select(c));
      li.append(b);
      return li;
    });
    $('channels').replaceChildren(...items);
    $('channel-name').replaceChildren(el('span', 'hash', '#'), document.createTextNode(state.channel));
  }

  function empty() {
    const box = el('div', 'empty');
    box.append(el('p', 'empty-title', `No messages in #${state.channel} yet`));
    const p = el('p', null, 'Alerts appear here as they happen. Type a command below, for example ');
    p.append(el('code', null, `@${botName()} kubectl get pods`), document.createTextNode('.'));
    box.append(p);
    return box;
  }

  function thread(root, replies) {
    let t = state.threads.get(root.id);
    if (!t) {
      t = { wrap: el('div', 'thread'), replies: el('div', 'replies') };
      state.threads.set(root.id, t);
    }
    const parts = [card(root)];
    if (replies.length) {
      t.replies.replaceChildren(...replies.map(card));
      parts.push(t.replies);
    }
    t.wrap.classList.toggle('has-replies', replies.length > 0);
    t.wrap.classList.toggle('replying-here', state.replyTo === root.id);
    t.wrap.replaceChildren(...parts);
    return t.wrap;
  }

  // card returns the node of m, drawn again only when m changed.
  function card(m) {
    const key = `${m.edits || 0}`;
    const cached = state.cards.get(m.id);
    if (cached && cached.key === key) return cached.node;
    let node;
    if (m.kind === 'user') node = userCard(m);
    else if (m.kind === 'file') node = fileCard(m);
    else node = botCard(m);
    node.dataset.id = m.id;
    if (m.thread) node.classList.add('reply');
    if (m.thread && !(state.messages.get(m.channel) || new Map()).has(m.thread)) node.classList.add('orphan');
    state.cards.set(m.id, { key, node });
    return node;
  }

  const LEVELS = { error: 'Error', warning: 'Warning', success: 'OK', info: 'Info' };

  function botCard(m) {
    const level = LEVELS[m.level] ? m.level : 'none';
    const node = el('article', `msg bot level-${level}`);
    const head = el('div', 'msg-head');
    if (LEVELS[m.level]) head.append(el('span', 'level', LEVELS[m.level]));
    head.append(el('h3', 'msg-title', m.title || ''));
    head.append(meta(m));
    node.append(head);
    for (const s of m.sections || []) node.append(section(m, s));
    const foot = el('div', 'msg-foot');
    if (m.context) foot.append(el('span', 'msg-context', m.context));
    if (!m.thread) foot.append(replyLink(m));
    node.append(foot);
    return node;
  }

  function meta(m) {
    const box = el('span', 'msg-meta');
    const t = new Date(m.time);
    const time = el('time', 'msg-time', clock(t));
    time.dateTime = m.time;
    time.title = t.toLocaleString();
    box.append(time);
    if (m.edits) box.append(el('span', 'edited', 'edited'));
    return box;
  }

  function clock(t) {
    const same = t.toDateString() === new Date().toDateString();
    const opts = { hour: '2-digit', minute: '2-digit' };
    return same ? t.toLocaleTimeString([], opts) : `${t.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${t.toLocaleTimeString([], opts)}`;
  }

  function replyLink(m) {
    const b = el('button', 'link reply-link', 'Reply');
    b.type = 'button';
    b.addEventListener('click', () => replyTo(m));
    return b;
  }

  function section(m, s) {
    const node = el('section', 'sec');
    if (s.header) node.append(el('h4', 'sec-header', s.header));
    if (s.text) node.append(richText(s.text));
    if (s.fields && s.fields.length) {
      const dl = el('dl', 'fields');
      for (const f of s.fields) {
        const item = el('div', 'field');
        item.append(el('dt', null, f.name), el('dd', null, f.value));
        dl.append(item);
      }
      node.append(dl);
    }
    if (s.code) node.append(codeBlock(s.code));
    const controls = [];
    for (const b of s.buttons || []) controls.push(button(m, b));
    for (const sel of s.selects || []) controls.push(select_(m, sel));
    if (controls.length) {
      const row = el('div', 'controls');
      row.append(...controls);
      node.append(row);
    }
    return node;
  }

  // richText shows `inline code` as code; everything else is plain text.
  function richText(text) {
    const p = el('p', 'sec-text');
    const parts = text.split('`');
    if (parts.length % 2 === 0) { // an unpaired backtick: all plain
      p.textContent = text;
      return p;
    }
    parts.forEach((part, i) => {
      if (!part) return;
      p.append(i % 2 ? el('code', 'inline', part) : document.createTextNode(part));
    });
    return p;
  }

  function codeBlock(code) {
    const text = code.replace(/\n$/, '');
    const lines = text.split('\n').length;
    const box = el('div', 'code');
    const pre = el('pre');
    pre.append(el('code', null, text));
    box.append(pre);
    const tools = el('div', 'code-tools');
    if (lines > COLLAPSE_LINES) {
      box.classList.add('collapsed');
      const toggle = el('button', 'link', `Show all ${lines} lines`);
      toggle.type = 'button';
      toggle.addEventListener('click', () => {
        const folded = box.classList.toggle('collapsed');
        toggle.textContent = folded ? `Show all ${lines} lines` : 'Show less';
      });
      tools.append(toggle);
    }
    if (navigator.clipboard && window.isSecureContext) {
      const copy = el('button', 'copy', 'Copy');
      copy.type = 'button';
      copy.addEventListener('click', async () => {
        try { await navigator.clipboard.writeText(code); copy.textContent = 'Copied'; } catch (_) { copy.textContent = 'Copy failed'; }
        setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
      });
      box.append(copy);
    }
    if (tools.childNodes.length) box.append(tools);
    return box;
  }

  const STYLES = { primary: 'btn-primary', danger: 'btn-danger' };

  function button(m, b) {
    const cls = `btn ${STYLES[b.style] || ''}`;
    if (b.url) {
      if (!/^https?:\/\//i.test(b.url)) return el('span', 'btn btn-disabled', b.label);
      const a = el('a', `${cls} btn-link`, b.label);
      a.href = b.url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      return a;
    }
    const node = el('button', cls, b.label);
    node.type = 'button';
    node.dataset.action = b.action;
    node.addEventListener('click', () => act(m, b.action, '', node));
    return node;
  }

  function select_(m, sel) {
    const node = el('select', 'select');
    node.dataset.action = sel.action;
    const first = el('option', null, sel.placeholder || 'Choose…');
    first.value = '';
    first.disabled = true;
    first.selected = true;
    node.append(first);
    for (const o of sel.options || []) {
      const opt = el('option', null, o.label);
      opt.value = o.value;
      node.append(opt);
    }
    node.addEventListener('change', () => act(m, sel.action, node.value, node));
    return node;
  }

  async function act(m, action, value, control) {
    control.disabled = true;
    control.classList.add('busy');
    try {
      await post('api/actions', { channel: m.channel, message: m.id, action, value });
    } catch (err) {
      toast(err.message);
    } finally {
      setTimeout(() => { control.disabled = false; control.classList.remove('busy'); }, 700);
    }
  }

  function userCard(m) {
    const node = el('article', 'msg user');
    node.append(el('span', 'avatar', initials(m.author)));
    const body = el('div', 'user-body');
    const head = el('div', 'msg-head');
    const info = meta(m);
    if (!m.thread) info.prepend(replyLink(m));
    head.append(el('span', 'author', m.author), info);
    body.append(head);
    const cmd = el('div', 'command');
    const mention = `@${botName()}`;
    if (m.text.toLowerCase().startsWith(mention.toLowerCase())) {
      cmd.append(el('span', 'mention', m.text.slice(0, mention.length)), document.createTextNode(m.text.slice(mention.length)));
    } else {
      cmd.textContent = m.text;
    }
    body.append(cmd);
    node.append(body);
    return node;
  }

  function initials(name) {
    const parts = String(name || '?').split(/[\s._@-]+/).filter(Boolean);
    return (parts.length > 1 ? parts[0][0] + parts[1][0] : String(name || '?').slice(0, 2)).toUpperCase();
  }

  function fileCard(m) {
    const f = m.file || {};
    const node = el('article', 'msg file');
    const row = el('div', 'file-row');
    row.append(el('span', 'file-icon', 'TXT'));
    const info = el('div', 'file-info');
    info.append(el('div', 'file-name', f.name), el('div', 'file-meta', [f.title, size(f.size)].filter(Boolean).join(' · ')));
    row.append(info);
    const actions = el('div', 'file-actions');
    const url = typeof f.url === 'string' && f.url.startsWith('api/files/') ? f.url : '';
    const view = el('button', 'btn btn-small', 'View');
    view.type = 'button';
    const pre = el('pre', 'file-view');
    pre.hidden = true;
    view.addEventListener('click', async () => {
      if (!pre.hidden) { pre.hidden = true; view.textContent = 'View'; return; }
      if (!pre.textContent) {
        try {
          const res = await fetch(url, { credentials: 'same-origin' });
          if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
          pre.textContent = await res.text();
        } catch (err) { toast(`Cannot load ${f.name}: ${err.message}`); return; }
      }
      pre.hidden = false;
      view.textContent = 'Hide';
    });
    const dl = el('a', 'btn btn-small', 'Download');
    dl.href = url;
    dl.download = f.name || 'output.txt';
    actions.append(view, dl);
    row.append(actions);
    node.append(row, pre);
    return node;
  }

  function size(n) {
    if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
    if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
    return `${n} bytes`;
  }

  // ---- acting

  function botName() { return state.session ? state.session.botName : 'kubechat'; }

  function select(c) {
    if (!state.messages.has(c)) return;
    state.channel = c;
    state.unread.delete(c);
    state.stick = true;
    cancelReply();
    if (location.hash !== `#${c}`) history.replaceState(null, '', `#${c}`);
    $('input').placeholder = `Message #${c}: @${botName()} kubectl get pods`;
    render();
    $('input').focus();
  }

  function replyTo(m) {
    state.replyTo = m.thread || m.id;
    $('replying').hidden = false;
    const what = m.kind === 'user' ? m.text : m.title;
    $('replying-text').textContent = `Replying in thread: ${what || 'message'}`;
    $('input').focus();
    schedule();
  }

  function cancelReply() {
    state.replyTo = '';
    $('replying').hidden = true;
    schedule();
  }

  async function send(e) {
    e.preventDefault();
    const input = $('input');
    const text = input.value.trim();
    if (!text) return;
    input.disabled = true;
    $('send').disabled = true;
    try {
      const body = { channel: state.channel, text };
      if (state.replyTo) body.thread = state.replyTo;
      await post('api/messages', body);
      state.sent.push(text);
      state.recall = -1;
      input.value = '';
      state.stick = true;
    } catch (err) {
      toast(err.message);
    } finally {
      input.disabled = false;
      $('send').disabled = false;
      input.focus();
    }
  }

  function recall(e) {
    if (e.key === 'Escape') { cancelReply(); return; }
    if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    if (!state.sent.length) return;
    e.preventDefault();
    if (e.key === 'ArrowUp') state.recall = state.recall < 0 ? state.sent.length - 1 : Math.max(0, state.recall - 1);
    else state.recall = state.recall < 0 ? -1 : state.recall + 1;
    if (state.recall >= state.sent.length) state.recall = -1;
    e.target.value = state.recall < 0 ? '' : state.sent[state.recall];
  }

  let toastTimer = 0;
  function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 6000);
  }

  // hashTarget is what the address names: a channel (#alerts), or a
  // message in it (#alerts/ID, a message's link).
  function hashTarget() {
    let h = '';
    try { h = decodeURIComponent(location.hash.slice(1)); } catch (_) { h = ''; }
    const i = h.indexOf('/');
    return i < 0 ? { channel: h, message: '' } : { channel: h.slice(0, i), message: h.slice(i + 1) };
  }

  function start() {
    $('composer').addEventListener('submit', send);
    $('input').addEventListener('keydown', recall);
    $('replying-cancel').addEventListener('click', cancelReply);
    $('toast').addEventListener('click', () => { $('toast').hidden = true; });
    const list = $('messages');
    list.addEventListener('scroll', () => {
      state.stick = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    });
    window.addEventListener('hashchange', () => {
      const t = hashTarget();
      if (t.channel !== state.channel) select(t.channel);
      if (t.message) { state.focus = t.message; schedule(); }
    });
    load();
  }

  async function load() {
    let res;
    try {
      res = await fetch('api/session', { credentials: 'same-origin' });
    } catch (err) {
      setStatus('offline');
      toast(`Cannot reach the agent: ${err.message}`);
      setTimeout(load, 5000);
      return;
    }
    if (res.status === 401) { location.reload(); return; }
    state.session = await res.json();
    const s = state.session;
    for (const c of s.channels) state.messages.set(c, new Map());
    $('title').textContent = s.title;
    if (s.cluster) { $('cluster').textContent = s.cluster; $('cluster').hidden = false; }
    $('user').textContent = s.user.name;
    $('logout').hidden = s.auth !== 'token';
    const wanted = hashTarget();
    state.focus = wanted.message;
    select(s.channels.includes(wanted.channel) ? wanted.channel : s.channels[0]);
    connect();
  }

  start();
})();
