// netbridge's dashboard: plain JavaScript and SVG, no library, no build step.
//
// Everything comes from this origin: one GET /netbridge/topology draws every view, and
// GET /events (a stream of JSON lines) triggers a fresh draw whenever anyone changes anything.
// Requests that change state carry X-Netbridge-Csrf, which the daemon requires of a browser
// session; the session itself is an HttpOnly cookie this script never sees.
'use strict';

const state = {
  topo: { Networks: [], Containers: [], Endpoints: [] },
  byNetwork: new Map(),
  byContainer: new Map(),
  sort: { key: 'Name', dir: 1 },
  page: 0,
  // IDs of the networks the filter box lets through; null = no filter.
  filterIds: null,
  detail: null,
  loads: 0,
};

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));
const short = (id) => String(id).slice(0, 12);

// ---- the API ----------------------------------------------------------------------------

async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'GET') opts.headers['X-Netbridge-Csrf'] = '1';
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!r.ok) {
    const message = (json && json.message) || `${r.status} ${r.statusText}`;
    const e = new Error(message);
    e.status = r.status;
    throw e;
  }
  return json;
}

function showError(message) {
  const el = $('#error');
  el.textContent = message;
  el.hidden = !message;
}

// Runs a user action: shows Docker's message on failure, redraws on success.
async function act(work) {
  try {
    await work();
    showError('');
    await refresh();
    return true;
  } catch (e) {
    showError(e.message);
    return false;
  }
}

// ---- loading ----------------------------------------------------------------------------

let inFlight = null;
// What the next load fetches: everything, or only the networks events named.
const pending = { full: false, networks: new Set() };

// One load at a time; whatever arrives meanwhile is gathered into the next one. `networks`
// (IDs) asks for just those networks' part of the picture; nothing asks for all of it.
function refresh(networks) {
  if (networks) for (const id of networks) pending.networks.add(id);
  else pending.full = true;
  if (inFlight) return inFlight;
  inFlight = (async () => {
    try {
      while (pending.full || pending.networks.size) {
        if (pending.full) {
          pending.full = false;
          pending.networks.clear();
          index(await api('GET', '/netbridge/topology'));
          await loadFilter();
          state.loads += 1;
          render();
        } else {
          const ids = [...pending.networks];
          pending.networks.clear();
          await Promise.all(ids.map(loadNetwork));
          state.loads += 1;
          renderChanged(ids);
        }
      }
    } catch (e) {
      if (e.status === 401) {
        window.location.assign('/ui/login');
        return;
      }
      showError(e.message);
    } finally {
      inFlight = null;
    }
  })();
  return inFlight;
}

// Replaces one network's part of the picture (or drops the network, if it is gone).
async function loadNetwork(id) {
  let part = null;
  try {
    part = await api('GET', `/netbridge/topology?network=${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  const t = state.topo;
  const net = part && part.Networks[0];
  const key = net ? net.Id : id;
  const nets = t.Networks.filter((n) => n.Id !== key);
  if (net) nets.push(net);
  const eps = t.Endpoints.filter((e) => e.NetworkId !== key).concat(part ? part.Endpoints : []);
  const known = new Set(t.Containers.map((c) => c.Id));
  const containers = t.Containers.concat((part ? part.Containers : []).filter((c) => !known.has(c.Id)));
  index({ Networks: nets, Containers: containers, Endpoints: eps });
}

function index(topo) {
  state.topo = topo;
  state.networks = new Map(topo.Networks.map((n) => [n.Id, n]));
  state.containers = new Map(topo.Containers.map((c) => [c.Id, c]));
  state.byNetwork = new Map();
  state.byContainer = new Map();
  for (const e of topo.Endpoints) {
    if (!state.byNetwork.has(e.NetworkId)) state.byNetwork.set(e.NetworkId, []);
    state.byNetwork.get(e.NetworkId).push(e);
    if (!state.byContainer.has(e.ContainerId)) state.byContainer.set(e.ContainerId, []);
    state.byContainer.get(e.ContainerId).push(e);
  }
}

// The open events stream's controller. A browser allows six HTTP/1.1 connections per host:
// a stream left open by a page navigated away from (kept in the back/forward cache) or by a
// hidden tab would starve the requests of the visible one, so streams close when the page is
// hidden or left, and reopen (with a fresh picture) when it is shown again.
let stream = null;

// Follows GET /events; reconnects after a second if the stream ends.
async function follow() {
  if (stream) return;
  const ctl = new AbortController();
  stream = ctl;
  const live = $('#live');
  while (stream === ctl) {
    try {
      const r = await fetch('/events', { credentials: 'same-origin', signal: ctl.signal });
      if (!r.ok || !r.body) throw new Error(`events: ${r.status}`);
      live.textContent = 'live';
      live.className = 'live on';
      await readLines(r.body.getReader(), onEvents);
    } catch (_) {
      // fall through to the retry
    }
    if (stream !== ctl) return;
    live.textContent = 'reconnecting…';
    live.className = 'live';
    await new Promise((ok) => setTimeout(ok, 1000));
    refresh();
  }
}

// Network events refresh just their network; anything else (containers made or removed)
// refreshes everything.
function onEvents(lines) {
  const networks = [];
  for (const line of lines) {
    let e = null;
    try { e = JSON.parse(line); } catch (_) { e = null; }
    if (e && e.Type === 'network' && e.Actor && e.Actor.ID) networks.push(e.Actor.ID);
    else return refresh();
  }
  return refresh(networks);
}

// Calls `onEvent` with the JSON lines each chunk completes.
async function readLines(reader, onEvent) {
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += decoder.decode(value, { stream: true });
    const lines = buffered.split('\n');
    buffered = lines.pop();
    const events = lines.filter((l) => l.trim());
    if (events.length) onEvent(events);
  }
}

function pause() {
  if (!stream) return;
  stream.abort();
  stream = null;
  $('#live').textContent = 'paused';
  $('#live').className = 'live';
}

function resume() {
  refresh();
  follow();
}

// ---- views ------------------------------------------------------------------------------

function currentView() {
  const v = (window.location.hash || '#networks').slice(1);
  return ['networks', 'containers', 'topology', 'diagnose'].includes(v) ? v : 'networks';
}

function render() {
  const view = currentView();
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== `view-${view}`;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.id === `nav-${view}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  renderChoices();
  if (view === 'networks') renderNetworks();
  if (view === 'containers') renderContainers();
  if (view === 'topology') renderTopology();
  document.body.dataset.loads = String(state.loads);
}

// After some networks changed: on the networks view, their rows are redrawn in place (a table
// of a thousand rows is not laid out again for one connect); elsewhere the view is redrawn.
function renderChanged(ids) {
  const patched = currentView() === 'networks' && !$('#network-filter').value.trim()
    && state.sort.key !== 'Endpoints' && ids.every(patchRow);
  if (!patched) {
    render();
    return;
  }
  renderDetail();
  document.body.dataset.loads = String(state.loads);
}

// Redraws one network's existing row; false when it has none (or no longer has a network).
function patchRow(id) {
  const row = document.querySelector(`#networks-table tr[data-id="${CSS.escape(id)}"]`);
  const n = state.networks.get(id);
  if (!row || !n) return false;
  const tmp = document.createElement('tbody');
  tmp.innerHTML = rowHtml(networkRow(n));
  row.replaceWith(tmp.firstElementChild);
  return true;
}

function renderChoices() {
  const select = $('#cc-network');
  const chosen = select.value;
  select.innerHTML = state.topo.Networks
    .filter((n) => n.Driver === 'bridge')
    .map((n) => `<option value="${esc(n.Id)}">${esc(n.Name)}</option>`).join('');
  if (chosen) select.value = chosen;
  $('#container-names').innerHTML = state.topo.Containers
    .map((c) => `<option value="${esc(c.Name)}"></option>`).join('');
  const topoSel = $('#topology-network');
  const t = topoSel.value;
  topoSel.innerHTML = '<option value="">all networks</option>' + state.topo.Networks
    .filter((n) => n.Bridge)
    .map((n) => `<option value="${esc(n.Id)}">${esc(n.Name)}</option>`).join('');
  topoSel.value = state.networks.has(t) ? t : '';
}

// ---- networks ---------------------------------------------------------------------------

function networkRow(n) {
  const eps = state.byNetwork.get(n.Id) || [];
  return {
    n,
    Name: n.Name,
    Driver: n.Driver,
    Scope: n.Scope,
    Subnets: n.Subnets.map((s) => s.Subnet).join(', '),
    Gateway: n.Subnets.map((s) => s.Gateway).join(', '),
    Endpoints: eps.length,
    Labels: Object.entries(n.Labels || {}).map(([k, v]) => (v ? `${k}=${v}` : k)).join(', '),
    Internal: n.Internal ? 'yes' : 'no',
  };
}

// `key=value` words, as `docker network ls --filter key=value` takes them; a bare word is a name.
function parseFilter(text) {
  const f = new Map();
  for (const tok of text.split(/\s+/).filter(Boolean)) {
    const i = tok.indexOf('=');
    const key = i < 0 ? 'name' : tok.slice(0, i);
    const value = i < 0 ? tok : tok.slice(i + 1);
    if (!f.has(key)) f.set(key, []);
    f.get(key).push(value);
  }
  return f;
}

// The daemon applies the filters (GET /networks?filters=), so they mean exactly what they mean
// to `docker network ls`, `until` included, and a bad one gets Docker's message.
async function loadFilter() {
  const text = $('#network-filter').value.trim();
  if (!text) {
    state.filterIds = null;
    return;
  }
  const filters = Object.fromEntries(parseFilter(text));
  try {
    const list = await api('GET', `/networks?filters=${encodeURIComponent(JSON.stringify(filters))}`);
    state.filterIds = new Set(list.map((n) => n.Id));
    showError('');
  } catch (e) {
    state.filterIds = new Set();
    showError(e.message);
  }
}

let filterTimer = null;
function onFilterInput() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(async () => {
    await loadFilter();
    state.page = 0;
    renderNetworks();
  }, 150);
}

// Rows of the networks table drawn at once.
const PAGE = 100;

function rowHtml(r) {
  return `<tr data-id="${esc(r.n.Id)}" data-name="${esc(r.Name)}">
    <td><button class="link" data-action="detail" data-id="${esc(r.n.Id)}">${esc(r.Name)}</button></td>
    <td>${esc(r.Driver)}</td><td>${esc(r.Scope)}</td><td>${esc(r.Subnets)}</td>
    <td>${esc(r.Gateway)}</td><td class="num">${r.Endpoints}</td><td>${esc(r.Labels)}</td>
    <td>${r.Internal}</td>
    <td>${r.n.Builtin ? '' : `<button data-action="remove-network" data-id="${esc(r.n.Id)}" aria-label="Remove network ${esc(r.Name)}">Remove</button>`}</td>
  </tr>`;
}

function renderNetworks() {
  const { key, dir } = state.sort;
  const rows = state.topo.Networks.map(networkRow)
    .filter((r) => !state.filterIds || state.filterIds.has(r.n.Id));
  rows.sort((a, b) => {
    const x = a[key]; const y = b[key];
    return (typeof x === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
  });
  // A page of rows at a time: laying out a thousand table rows costs a browser hundreds of
  // milliseconds, a hundred a few.
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const first = state.page * PAGE;
  const shown = rows.slice(first, first + PAGE);
  $('#networks-table tbody').innerHTML = shown.map(rowHtml).join('');
  for (const th of document.querySelectorAll('#networks-table th')) {
    const b = th.querySelector('button');
    if (b && b.dataset.sort === key) th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  $('#networks-count').textContent = rows.length > shown.length
    ? `${first + 1}–${first + shown.length} of ${rows.length} networks (${state.topo.Networks.length} in all)`
    : `${rows.length} of ${state.topo.Networks.length} networks`;
  $('#page-prev').disabled = state.page === 0;
  $('#page-next').disabled = state.page >= pages - 1;
  $('#pager').hidden = pages === 1;
  renderDetail();
  markFirstDraw();
}

// The first table drawn with data, and painted: what the benchmark reads (milliseconds since
// navigation started).
function markFirstDraw() {
  const data = document.body.dataset;
  if (!state.loads || data.networksDrawn) return;
  data.networksDrawn = String(performance.now());
  requestAnimationFrame(() => setTimeout(() => { data.networksPainted = String(performance.now()); }));
}

function renderDetail() {
  const box = $('#network-detail');
  const n = state.detail && state.networks.get(state.detail);
  if (!n) { box.hidden = true; return; }
  const eps = state.byNetwork.get(n.Id) || [];
  box.hidden = false;
  box.innerHTML = `<h3>Network ${esc(n.Name)} <small>${esc(short(n.Id))}</small></h3>
    <p>bridge ${esc(n.Bridge || '—')}; ${n.Subnets.map((s) => `${esc(s.Subnet)} via ${esc(s.Gateway)}`).join('; ')}
    ${n.Internal ? '; internal' : ''}${n.ICC ? '' : '; ICC off'}</p>
    <table class="endpoints"><thead><tr><th>Container</th><th>Interface</th><th>IPv4</th><th>IPv6</th>
    <th>MAC</th><th>Aliases</th><th>Host veth</th><th>Actions</th></tr></thead><tbody>
    ${eps.map((e) => {
    const c = state.containers.get(e.ContainerId) || { Name: short(e.ContainerId) };
    return `<tr><td>${esc(c.Name)}</td><td>${esc(e.Interface)}</td><td>${esc(e.IPv4Address || '')}</td>
      <td>${esc(e.IPv6Address || '')}</td><td>${esc(e.MacAddress)}</td><td>${esc((e.Aliases || []).join(', '))}</td>
      <td>${esc(e.HostInterface)}</td>
      <td><button data-action="disconnect" data-network="${esc(n.Id)}" data-container="${esc(e.ContainerId)}"
        aria-label="Disconnect ${esc(c.Name)} from ${esc(n.Name)}">Disconnect</button></td></tr>`;
  }).join('')}</tbody></table>`;
}

// ---- containers -------------------------------------------------------------------------

function renderContainers() {
  $('#containers-table tbody').innerHTML = state.topo.Containers.map((c) => {
    const eps = state.byContainer.get(c.Id) || [];
    const nets = eps.map((e) => {
      const n = state.networks.get(e.NetworkId);
      const name = n ? n.Name : short(e.NetworkId);
      return `<li>${esc(name)}: ${esc(e.Interface)} ${esc(e.IPv4Address || e.IPv6Address || '')}
        <button data-action="disconnect" data-network="${esc(e.NetworkId)}" data-container="${esc(c.Id)}"
        aria-label="Disconnect ${esc(c.Name)} from ${esc(name)}">Disconnect</button></li>`;
    }).join('');
    return `<tr data-name="${esc(c.Name)}"><td>${esc(c.Name)}</td><td>${esc(c.Kind)}</td><td>${esc(short(c.Id))}</td>
      <td><ul>${nets}</ul></td>
      <td><button data-action="remove-container" data-id="${esc(c.Id)}" aria-label="Remove container ${esc(c.Name)}">Remove</button></td></tr>`;
  }).join('');
}

// ---- topology ---------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// Containers on the left (one row per interface), bridges on the right, one line per veth
// pair, labelled with its host end where it meets the bridge. Containers are grouped by their
// first network and each bridge sits level with its containers, so lines mostly run straight;
// the select shows one network alone (what keeps 200 containers usable).
const T = { ROW: 22, CX: 20, CW: 320, BX: 620, BW: 300, W: 940 };

function topologyModel(only) {
  const bridges = state.topo.Networks.filter((n) => n.Bridge && (!only || n.Id === only));
  const shown = new Set(bridges.map((n) => n.Id));
  const rank = new Map(bridges.map((n, i) => [n.Id, i]));
  const first = (x) => (x.eps.length ? rank.get(x.eps[0].NetworkId) : 1e9);
  const containers = state.topo.Containers
    .map((c) => ({ c, eps: (state.byContainer.get(c.Id) || []).filter((e) => shown.has(e.NetworkId)) }))
    .filter((x) => x.eps.length > 0 || !only)
    .sort((a, b) => first(a) - first(b) || a.c.Name.localeCompare(b.c.Name));
  return { bridges, containers };
}

function drawContainers(svg, containers, ports) {
  let y = 20;
  for (const { c, eps } of containers) {
    const h = 26 + Math.max(eps.length, 1) * T.ROW;
    const g = el('g', { class: 'container', 'data-name': c.Name, 'data-id': c.Id });
    g.append(el('rect', { x: T.CX, y, width: T.CW, height: h, rx: 6 }));
    g.append(el('text', { x: T.CX + 8, y: y + 17, class: 'title' }, `${c.Name} (${c.Kind})`));
    if (!eps.length) g.append(el('text', { x: T.CX + 16, y: y + 40, class: 'note' }, 'no network'));
    eps.forEach((e, i) => {
      const py = y + 26 + i * T.ROW + T.ROW / 2;
      g.append(el('text', { x: T.CX + 16, y: py + 4, class: 'iface' },
        `${e.Interface}  ${e.IPv4Address || ''} ${e.IPv6Address || ''}`.trim()));
      g.append(el('circle', { cx: T.CX + T.CW, cy: py, r: 4, class: 'port' }));
      ports.set(e.Id, py);
    });
    svg.append(g);
    y += h + 10;
  }
  return y;
}

function drawBridges(svg, bridges, ports) {
  const ordered = bridges.map((n) => {
    const eps = (state.byNetwork.get(n.Id) || []).filter((e) => ports.has(e.Id))
      .sort((a, b) => ports.get(a.Id) - ports.get(b.Id));
    return { n, eps, from: eps.length ? ports.get(eps[0].Id) : 1e9 };
  }).sort((a, b) => a.from - b.from);
  const links = [];
  let y = 20;
  for (const { n, eps, from } of ordered) {
    const top = Math.max(y, from < 1e9 ? from - 48 : y);
    const h = 56 + eps.length * T.ROW;
    const g = el('g', { class: `bridge${n.Internal ? ' internal' : ''}`, 'data-name': n.Name, 'data-bridge': n.Bridge });
    g.append(el('rect', { x: T.BX, y: top, width: T.BW, height: h, rx: 6 }));
    g.append(el('text', { x: T.BX + 10, y: top + 18, class: 'title' }, `${n.Name}: bridge ${n.Bridge}`));
    const notes = [n.Internal ? 'internal' : '', n.ICC ? '' : 'ICC off'].filter(Boolean).join(', ');
    g.append(el('text', { x: T.BX + 10, y: top + 36 },
      n.Subnets.map((s) => `${s.Subnet} gw ${s.Gateway}`).join('  ') + (notes ? `  (${notes})` : '')));
    eps.forEach((e, i) => {
      const py = top + 48 + i * T.ROW + T.ROW / 2;
      g.append(el('text', { x: T.BX + 16, y: py + 4, class: 'veth' }, e.HostInterface));
      links.push({ e, n, y1: ports.get(e.Id), y2: py });
    });
    svg.append(g);
    y = top + h + 14;
  }
  return { bottom: y, links };
}

function renderTopology() {
  const { bridges, containers } = topologyModel($('#topology-network').value);
  const svg = el('svg', { xmlns: SVG, class: 'topology', role: 'presentation' });
  const ports = new Map();
  const left = drawContainers(svg, containers, ports);
  const { bottom, links } = drawBridges(svg, bridges, ports);
  for (const { e, n, y1, y2 } of links) {
    const line = el('line', {
      x1: T.CX + T.CW + 4, y1, x2: T.BX, y2, class: 'link',
      'data-network': n.Name, 'data-container': (state.containers.get(e.ContainerId) || {}).Name || '',
      'data-veth': e.HostInterface, 'data-bridge': n.Bridge,
    });
    line.append(el('title', {}, `${e.Interface} ⇄ ${e.HostInterface} on ${n.Bridge}`));
    svg.append(line);
  }
  const height = Math.max(left, bottom) + 20;
  svg.setAttribute('viewBox', `0 0 ${T.W} ${height}`);
  svg.setAttribute('width', T.W);
  svg.setAttribute('height', height);
  const box = $('#topology');
  box.replaceChildren(svg);
  box.setAttribute('aria-label',
    `${bridges.length} bridges, ${containers.length} containers, ${links.length} veth pairs`);
}

// ---- diagnose ---------------------------------------------------------------------------

function renderDiagnosis(d) {
  const p = d.Probe;
  const probe = !p ? '<p>No probe was sent.</p>' : `<p class="probe">Probe to ${esc(p.Address)} from inside ${esc(d.Source.Name)}:
    ${p.Sent} sent, ${p.Received} received, ${p.Loss.toFixed(0)}% loss${p.RttMs.length
    ? `, RTT ${p.RttMs.map((r) => r.toFixed(2)).join(' / ')} ms` : ''}${p.Error ? `; ${esc(p.Error)}` : ''}</p>`;
  $('#diagnosis').innerHTML = `<p class="verdict ${esc(d.Verdict)}" id="verdict">${esc(d.Source.Name)} → ${esc(d.Target ? d.Target.Name : d.Address)}:
    <strong>${esc(d.Verdict)}</strong></p>
    <p>Shared networks: ${d.SharedNetworks.length ? esc(d.SharedNetworks.join(', ')) : 'none'}</p>
    <ul class="reasons">${d.Reasons.map((r) => `<li data-code="${esc(r.Code)}">${esc(r.Message)}</li>`).join('')}</ul>
    ${probe}`;
}

// ---- wiring -----------------------------------------------------------------------------

function labelsOf(text) {
  const out = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i < 0) out[part] = ''; else out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

function createNetworkBody(f) {
  const v = (name) => f.elements[name].value.trim();
  const config = {};
  if (v('subnet')) config.Subnet = v('subnet');
  if (v('gateway')) config.Gateway = v('gateway');
  if (v('iprange')) config.IPRange = v('iprange');
  const body = {
    Name: v('name'), Driver: 'bridge', Internal: f.elements.internal.checked,
    EnableIPv6: f.elements.ipv6.checked, Labels: labelsOf(v('labels')),
  };
  if (Object.keys(config).length) body.IPAM = { Config: [config] };
  return body;
}

function connectBody(f) {
  const v = (name) => f.elements[name].value.trim();
  const ipam = {};
  if (v('ipv4')) ipam.IPv4Address = v('ipv4');
  if (v('ipv6')) ipam.IPv6Address = v('ipv6');
  const aliases = v('aliases').split(',').map((s) => s.trim()).filter(Boolean);
  const config = {};
  if (Object.keys(ipam).length) config.IPAMConfig = ipam;
  if (aliases.length) config.Aliases = aliases;
  return { Container: v('container'), EndpointConfig: config };
}

function onSubmit(id, work) {
  $(id).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    if (await act(() => work(f))) f.reset();
  });
}

function wire() {
  onSubmit('#create-network', (f) => api('POST', '/networks/create', createNetworkBody(f)));
  onSubmit('#create-sandbox', (f) => api('POST',
    `/containers/create?name=${encodeURIComponent(f.elements.name.value.trim())}`));
  onSubmit('#connect', (f) => api('POST',
    `/networks/${encodeURIComponent(f.elements.network.value)}/connect`, connectBody(f)));
  $('#diagnose-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    $('#diagnosis').textContent = 'Diagnosing…';
    try {
      const d = await api('POST', '/netbridge/diagnose', {
        Source: f.elements.source.value.trim(),
        Target: f.elements.target.value.trim(),
        Count: Number(f.elements.count.value || 0),
        TimeoutMs: 3000,
      });
      showError('');
      renderDiagnosis(d);
    } catch (e) {
      $('#diagnosis').textContent = '';
      showError(e.message);
    }
  });
  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-action], button[data-sort]');
    if (!b) return;
    if (b.dataset.sort) {
      const key = b.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      renderNetworks();
      return;
    }
    const { action, id, network, container } = b.dataset;
    if (action === 'detail') { state.detail = id; renderDetail(); }
    if (action === 'remove-network') act(() => api('DELETE', `/networks/${encodeURIComponent(id)}`));
    if (action === 'remove-container') act(() => api('DELETE', `/containers/${encodeURIComponent(id)}?force=1`));
    if (action === 'disconnect') {
      act(() => api('POST', `/networks/${encodeURIComponent(network)}/disconnect`, { Container: container }));
    }
  });
  $('#network-filter').addEventListener('input', onFilterInput);
  $('#page-prev').addEventListener('click', () => { state.page -= 1; renderNetworks(); });
  $('#page-next').addEventListener('click', () => { state.page += 1; renderNetworks(); });
  $('#topology-network').addEventListener('change', renderTopology);
  window.addEventListener('hashchange', render);
  document.addEventListener('visibilitychange', () => (document.hidden ? pause() : resume()));
  window.addEventListener('pagehide', pause);
  window.addEventListener('pageshow', (ev) => { if (ev.persisted) resume(); });
}

wire();
index(state.topo);
render();
refresh();
follow();
