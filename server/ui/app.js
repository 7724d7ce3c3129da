// The streamlib control room: the same HTTP API as every other client (bearer token where the
// server has one), the program over WHEP, layers edited with PATCH /layers/{id}, health from the
// /events stream. No framework: the page must load with no network beyond the server.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { scene: null, token: '', pc: null, whepLocation: null, hls: null, stats: null, events: 0, publishing: {} };

// The token comes from #token=… once (then it is kept for the tab) or from the form.
(function readToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem('streamlib-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname);
  }
  state.token = sessionStorage.getItem('streamlib-token') || '';
})();

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h.Authorization = 'Bearer ' + state.token;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  if (r.status === 401) {
    $('token-form').hidden = false;
    throw new Error('this server needs its token');
  }
  const text = await r.text();
  const value = text && r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (!r.ok) throw new Error((value && value.error) || r.statusText);
  return value;
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = $('token').value;
  sessionStorage.setItem('streamlib-token', state.token);
  $('token-form').hidden = true;
  start();
});

function log(text) {
  const li = document.createElement('li');
  li.textContent = new Date().toLocaleTimeString() + ' ' + text;
  $('events').prepend(li);
  while ($('events').children.length > 200) $('events').lastChild.remove();
}

// ---- scene: layers, inputs, outputs ----

async function loadScene() {
  try {
    state.scene = await api('GET', '/scene');
  } catch (e) {
    state.scene = null;
    log('scene: ' + e.message);
  }
  renderLayers();
  renderInputs();
  renderOutputs();
  renderBoxes();
  pickOutputs();
}

function outputId(o, i) {
  return o.id || 'output' + i;
}

async function patchLayer(id, fields) {
  try {
    await api('PATCH', '/layers/' + encodeURIComponent(id), fields);
    const layer = state.scene.layers.find((l) => l.id === id);
    if (layer) Object.assign(layer, fields);
    renderBoxes();
  } catch (e) {
    log('layer ' + id + ': ' + e.message);
  }
}

function cell(row, child) {
  const td = document.createElement('td');
  if (typeof child === 'string') td.textContent = child;
  else if (child) td.append(child);
  row.append(td);
  return td;
}

function input(type, props, onChange, event) {
  const el = document.createElement('input');
  el.type = type;
  Object.assign(el, props);
  el.addEventListener(event || 'change', () => onChange(el));
  return el;
}

function renderLayers() {
  const body = $('layers').tBodies[0];
  body.replaceChildren();
  for (const layer of state.scene?.layers || []) {
    const row = document.createElement('tr');
    row.dataset.layer = layer.id;
    cell(row, layer.id + ' (' + layer.kind + ')');
    cell(row, input('checkbox', { checked: layer.visible !== false, className: 'visible' },
      (el) => patchLayer(layer.id, { visible: el.checked })));
    cell(row, input('range', { min: 0, max: 1, step: 0.01, value: layer.opacity ?? 1, className: 'opacity' },
      (el) => patchLayer(layer.id, { opacity: Number(el.value) })));
    cell(row, input('number', { step: 1, value: layer.z ?? 0, className: 'z' },
      (el) => patchLayer(layer.id, { z: Math.round(Number(el.value)) })));
    cell(row, layer.kind === 'text'
      ? input('text', { value: layer.text ?? '', className: 'text' }, (el) => patchLayer(layer.id, { text: el.value }))
      : '');
    body.append(row);
  }
}

function counterText(c) {
  return Object.entries(c || {}).map(([k, v]) => k + ' ' + v).join(', ');
}

function renderInputs() {
  const body = $('inputs').tBodies[0];
  body.replaceChildren();
  const live = new Map((state.stats?.inputs || []).map((i) => [i.input, i]));
  for (const [id, spec] of Object.entries(state.scene?.inputs || {})) {
    const row = document.createElement('tr');
    const s = live.get(id);
    cell(row, id);
    cell(row, spec.kind);
    const st = cell(row, s ? s.state + (s.last_error ? ' — ' + s.last_error : '') : 'not live');
    st.className = s && s.state !== 'live' ? 'warn' : '';
    const counters = cell(row, counterText(s?.counters));
    counters.className = 'counters';
    if (spec.kind === 'whip') {
      const send = document.createElement('button');
      send.textContent = state.publishing[id] ? 'Stop camera' : 'Send camera';
      send.onclick = () => (state.publishing[id] ? unpublish(id) : publish(id));
      counters.prepend(send, ' ');
    }
    body.append(row);
  }
}

// ---- WHIP: this browser's camera as a scene input ----

async function publish(input) {
  try {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: false });
    const pc = new RTCPeerConnection();
    for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const r = await fetch('/whip/' + encodeURIComponent(input), {
      method: 'POST', headers: headers({ 'Content-Type': 'application/sdp' }), body: pc.localDescription.sdp,
    });
    if (r.status !== 201) throw new Error((await r.text()) || r.statusText);
    const location_ = new URL(r.headers.get('location'), location.href).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    state.publishing[input] = { pc, media, location: location_ };
    log('sending the camera to ' + input);
  } catch (e) {
    log('camera to ' + input + ': ' + e.message);
  }
  renderInputs();
}

async function unpublish(input) {
  const p = state.publishing[input];
  delete state.publishing[input];
  if (!p) return;
  p.pc.close();
  p.media.getTracks().forEach((t) => t.stop());
  await fetch(p.location, { method: 'DELETE', headers: headers() }).catch(() => {});
  renderInputs();
}

// Non-trickle, as WHIP/WHEP servers expect: wait (briefly) for our candidates.
function gathered(pc) {
  return new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
    setTimeout(done, 1000);
  });
}

function renderOutputs() {
  const body = $('outputs').tBodies[0];
  body.replaceChildren();
  const sinks = state.stats?.sinks || [];
  (state.scene?.outputs || []).forEach((o, i) => {
    const id = outputId(o, i);
    const row = document.createElement('tr');
    const mine = sinks.filter((s) => s.output === id);
    cell(row, id);
    cell(row, o.kind);
    cell(row, String(mine.reduce((n, s) => n + s.written, 0)));
    cell(row, String(mine.reduce((n, s) => n + s.dropped, 0)));
    cell(row, mine.map((s) => (s.error ? 'error: ' + s.error + ' ' : '') + counterText(s.counters)).join('; ')).className = 'counters';
    body.append(row);
  });
}

// ---- layer boxes over the program: drag to move, corner to resize ----

function renderBoxes() {
  const boxes = $('boxes');
  boxes.replaceChildren();
  const scene = state.scene;
  if (!scene) return;
  const scale = boxes.clientWidth / scene.width;
  for (const layer of scene.layers || []) {
    if (!Array.isArray(layer.rect) || layer.visible === false) continue;
    const [rx, ry, rw, rh] = layer.rect;
    const box = document.createElement('div');
    box.className = 'box';
    box.dataset.layer = layer.id;
    const place = (r) => {
      box.style.left = r.x * scale + 'px';
      box.style.top = r.y * scale + 'px';
      box.style.width = r.w * scale + 'px';
      box.style.height = r.h * scale + 'px';
    };
    place({ x: rx, y: ry, w: rw, h: rh });
    const label = document.createElement('span');
    label.textContent = layer.id;
    const corner = document.createElement('i');
    box.append(label, corner);
    box.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      const resize = e.target === corner;
      const start = { x: e.clientX, y: e.clientY, rect: { x: rx, y: ry, w: rw, h: rh } };
      box.setPointerCapture(e.pointerId);
      const rectAt = (ev) => {
        const dx = (ev.clientX - start.x) / scale;
        const dy = (ev.clientY - start.y) / scale;
        const r = Object.assign({}, start.rect);
        if (resize) {
          r.w = Math.max(2, Math.round(r.w + dx));
          r.h = Math.max(2, Math.round(r.h + dy));
        } else {
          r.x = Math.round(r.x + dx);
          r.y = Math.round(r.y + dy);
        }
        return r;
      };
      const move = (ev) => place(rectAt(ev));
      const up = (ev) => {
        box.removeEventListener('pointermove', move);
        box.removeEventListener('pointerup', up);
        const r = rectAt(ev);
        patchLayer(layer.id, { rect: [r.x, r.y, r.w, r.h] });
      };
      box.addEventListener('pointermove', move);
      box.addEventListener('pointerup', up);
    });
    boxes.append(box);
  }
}
new ResizeObserver(renderBoxes).observe($('stage'));

// ---- WHEP: the program, sub-second ----

function pickOutputs() {
  const outs = (state.scene?.outputs || []).map((o, i) => [outputId(o, i), o]);
  fill($('whep-output'), outs.filter(([, o]) => o.kind === 'whep').map(([id]) => id), watch);
  fill($('hls-output'), outs.filter(([, o]) => o.kind === 'hls').map(([, o]) => o.dir), playHls);
}

function fill(select, values, onPick) {
  const before = select.value;
  if ([...select.options].map((o) => o.value).join() === values.join()) return;
  select.replaceChildren(...values.map((v) => new Option(v, v)));
  select.onchange = () => onPick(select.value);
  if (values.length) onPick(values.includes(before) ? before : values[0]);
}

async function hangUp() {
  if (state.pc) state.pc.close();
  state.pc = null;
  if (state.whepLocation) {
    const where = state.whepLocation;
    state.whepLocation = null;
    await fetch(where, { method: 'DELETE', headers: headers() }).catch(() => {});
  }
}

async function watch(output) {
  await hangUp();
  const badge = $('whep-state');
  badge.textContent = 'connecting to ' + output;
  badge.className = 'pill warn';
  const pc = new RTCPeerConnection();
  state.pc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.ontrack = (e) => {
    $('live').srcObject = e.streams[0] || new MediaStream([e.track]);
  };
  pc.onconnectionstatechange = () => {
    badge.textContent = output + ': ' + pc.connectionState;
    badge.className = 'pill ' + (pc.connectionState === 'connected' ? 'ok' : pc.connectionState === 'failed' ? 'bad' : 'warn');
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  try {
    const r = await fetch('/whep/' + encodeURIComponent(output), {
      method: 'POST', headers: headers({ 'Content-Type': 'application/sdp' }), body: pc.localDescription.sdp,
    });
    if (r.status !== 201) throw new Error((await r.text()) || r.statusText);
    state.whepLocation = new URL(r.headers.get('location'), location.href).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  } catch (e) {
    badge.textContent = output + ': ' + e.message;
    badge.className = 'pill bad';
  }
}
addEventListener('pagehide', () => {
  if (state.whepLocation) fetch(state.whepLocation, { method: 'DELETE', headers: headers(), keepalive: true });
});

// ---- HLS, played by hls.js (it can send the token; a native player cannot) ----

function playHls(dir) {
  if (state.hls) state.hls.destroy();
  const video = $('hls');
  const url = '/media/' + dir.split('/').map(encodeURIComponent).join('/') + '/master.m3u8';
  if (window.Hls && Hls.isSupported()) {
    state.hls = new Hls({ lowLatencyMode: true, xhrSetup: (xhr) => state.token && xhr.setRequestHeader('Authorization', 'Bearer ' + state.token) });
    state.hls.on(Hls.Events.ERROR, (_, d) => d.fatal && log('hls: ' + d.details));
    state.hls.loadSource(url);
    state.hls.attachMedia(video);
  } else {
    video.src = url;
  }
  video.play().catch(() => {});
}

// ---- snapshot ----

$('snapshot-button').addEventListener('click', async () => {
  const r = await fetch('/snapshot.png', { headers: headers() });
  if (!r.ok) return log('snapshot: ' + r.statusText);
  const old = $('snapshot').src;
  $('snapshot').src = URL.createObjectURL(await r.blob());
  if (old) URL.revokeObjectURL(old);
});

// ---- /events: read with fetch (EventSource cannot send the token) ----

async function followEvents() {
  for (;;) {
    try {
      const r = await fetch('/events', { headers: headers() });
      if (!r.ok) throw new Error(r.statusText);
      $('health').textContent = 'live';
      $('health').className = 'pill ok';
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const chunk = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = chunk.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
          if (data) onEvent(JSON.parse(data));
        }
      }
    } catch (e) {
      $('health').textContent = 'disconnected: ' + e.message;
      $('health').className = 'pill bad';
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function onEvent(e) {
  state.events++;
  if (e.type === 'stats') {
    state.stats = e;
    $('fps').textContent = (e.fps ?? 0).toFixed(1) + ' fps';
    $('late').textContent = e.missed_ticks + ' late ticks';
    $('late').className = 'pill ' + (e.missed_ticks ? 'warn' : 'ok');
    renderInputs();
    renderOutputs();
    return;
  }
  log(e.type + ' ' + JSON.stringify(e));
  if (e.type === 'scene_applied') loadScene();
}

// For tests and scripts driving the page: the colour the program shows at (x, y) in scene pixels.
// Change-to-display latency: toggles `layer` (which must cover scene pixel (x, y) with a red-ish
// colour) through the API and times, per toggle, from the PATCH to the browser's expected display
// time of the first video frame that shows it. Includes waiting for the next render tick.
async function measureLatency(layer, x, y, n) {
  const v = $('live');
  const red = () => {
    const p = window.streamlib.pixelAt(x, y);
    return p && p[0] > 150;
  };
  const out = [];
  for (let i = 0; i < n; i++) {
    const visible = i % 2 === 1;
    const t0 = performance.now();
    fetch('/layers/' + encodeURIComponent(layer), {
      method: 'PATCH', headers: headers({ 'Content-Type': 'application/json' }), body: JSON.stringify({ visible }),
    });
    out.push(await new Promise((resolve) => {
      const step = (now, meta) => {
        if (red() === visible) resolve(meta.expectedDisplayTime - t0);
        else if (performance.now() - t0 > 3000) resolve(null);
        else v.requestVideoFrameCallback(step);
      };
      v.requestVideoFrameCallback(step);
    }));
    await new Promise((r) => setTimeout(r, 150 + Math.random() * 100));
  }
  return out;
}

window.streamlib = {
  state,
  publish,
  unpublish,
  measureLatency,
  pixelAt(x, y) {
    const v = $('live');
    if (!v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0);
    const sx = state.scene ? v.videoWidth / state.scene.width : 1;
    return Array.from(g.getImageData(Math.round(x * sx), Math.round(y * sx), 1, 1).data);
  },
};

function start() {
  loadScene();
}
start();
followEvents();
