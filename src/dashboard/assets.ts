/**
 * The dashboard's web UI: one HTML page, one stylesheet, one script, all
 * served by Palisade (no CDN, no framework download: it works offline). The
 * script is plain browser JavaScript kept as text here so `tsc` ships it with
 * the rest; it draws the service graph as SVG with a layered layout (callers
 * left, callees right, as Kiali's default layout reads), polls the JSON API
 * for live updates, and streams the tap over Server-Sent Events. It builds
 * DOM nodes with textContent only (no innerHTML of mesh data).
 */

const HTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Palisade dashboard</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>Palisade</h1>
  <span id="mesh-name"></span>
  <nav>
    <a href="#graph" data-view="graph">Service graph</a>
    <a href="#security" data-view="security">Security</a>
    <a href="#proxies" data-view="proxies">Proxies</a>
    <a href="#traces" data-view="traces">Traces</a>
    <a href="#live" data-view="live">Live requests</a>
  </nav>
  <span id="updated"></span>
</header>
<main>
  <section id="view-graph" class="view">
    <p class="legend"><span class="lock-legend">lock: mTLS</span> <span class="warn-legend">&#9888; plaintext</span>
    Edge labels: requests/s, error rate, p50/p99 latency over the last <span id="window">–</span> s.</p>
    <div id="graph"></div>
    <h2>Workloads</h2>
    <table id="top-table"><thead><tr><th>Workload</th><th>Namespace</th><th>RPS</th><th>Success</th><th>P50</th><th>P99</th><th>mTLS</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="view-security" class="view">
    <h2>Denied requests (last 10 minutes)</h2>
    <p id="denies-count" class="hint"></p>
    <table id="denies"><thead><tr><th>Time</th><th>Source</th><th>Destination</th><th>Request</th><th>Status</th><th>Policy</th><th>Detail</th></tr></thead><tbody></tbody></table>
    <h2>Who may call whom</h2>
    <p class="hint">Each cell: may the column's identity send <code>GET /</code> to the row's workload (the engine of <code>palisade check authz</code>)?</p>
    <table id="matrix"></table>
    <h2>Workload identities and policies</h2>
    <table id="identities"><thead><tr><th>Workload</th><th>SPIFFE ID</th><th>Certificate serial</th><th>Expires</th><th>PeerAuthentication</th><th>AuthorizationPolicies</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="view-proxies" class="view">
    <h2>xDS sync status</h2>
    <p id="proxies-version"></p>
    <table id="proxies"><thead><tr><th>Proxy</th><th>CDS</th><th>LDS</th><th>EDS</th><th>RDS</th><th>SDS</th><th>Connected</th></tr></thead><tbody></tbody></table>
    <h2>NACKs</h2>
    <table id="nacks"><thead><tr><th>Proxy</th><th>Type</th><th>Reason</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="view-traces" class="view">
    <form id="trace-search">
      <label>Service <input name="service" placeholder="productpage.default"></label>
      <label>Min duration (ms) <input name="minDurationMs" type="number" min="0"></label>
      <label><input name="error" type="checkbox" value="true"> errors only</label>
      <button type="submit">Search</button>
    </form>
    <p id="traces-note"></p>
    <table id="traces"><thead><tr><th>Start</th><th>Root</th><th>Duration</th><th>Spans</th><th>Services</th><th>Status</th></tr></thead><tbody></tbody></table>
    <div id="waterfall"></div>
  </section>
  <section id="view-live" class="view">
    <form id="tap-form">
      <label>Workload <select name="workload" id="tap-workload"></select></label>
      <button type="submit" id="tap-start">Start</button>
      <button type="button" id="tap-stop">Stop</button>
    </form>
    <table id="tap"><thead><tr><th>Time</th><th>Proxy</th><th>Dir</th><th>Method</th><th>Path</th><th>Status</th><th>Latency</th><th>Peer</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

const CSS = `
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: #1d2733; background: #f4f6f8; }
header { display: flex; align-items: center; gap: 18px; padding: 8px 16px; background: #243b53; color: #fff; }
header h1 { font-size: 18px; margin: 0; }
header nav a { color: #cfe0f3; text-decoration: none; margin-right: 14px; }
header nav a.active { color: #fff; font-weight: 600; border-bottom: 2px solid #fff; }
#updated { margin-left: auto; font-size: 12px; color: #cfe0f3; }
main { padding: 12px 16px; }
.view { display: none; }
.view.active { display: block; }
table { border-collapse: collapse; background: #fff; margin-bottom: 16px; }
th, td { border: 1px solid #d9e2ec; padding: 3px 8px; text-align: left; font-size: 13px; }
th { background: #e4ebf2; }
#graph svg { background: #fff; border: 1px solid #d9e2ec; }
.node rect { fill: #fff; stroke: #486581; stroke-width: 1.5; rx: 6; }
.node.gateway rect { fill: #e6f6ff; }
.node.external rect, .node.unknown rect { fill: #fff8e6; stroke-dasharray: 4 3; }
.node.service rect { fill: #f0f4f8; }
.node text { font-size: 12px; fill: #102a43; }
.node .sub { font-size: 10px; fill: #627d98; }
.edge path { fill: none; stroke: #829ab1; stroke-width: 1.6; }
.edge.errors path { stroke: #d64545; }
.edge.idle path { stroke: #d9e2ec; stroke-dasharray: 3 3; }
.edge text { font-size: 10px; fill: #334e68; }
.lock rect { fill: #2f8132; } .lock path { fill: none; stroke: #2f8132; stroke-width: 1.5; }
.plaintext-warning polygon { fill: #f0b429; } .plaintext-warning text { font-size: 9px; fill: #000; font-weight: 700; }
.allow { color: #2f8132; } .deny { color: #d64545; font-weight: 600; }
.synced { color: #2f8132; } .nacked { color: #d64545; font-weight: 600; } .stale { color: #cb6e17; }
.hint, .legend { color: #486581; font-size: 12px; }
.lock-legend { color: #2f8132; } .warn-legend { color: #cb6e17; }
#waterfall .span-row { position: relative; height: 22px; border-bottom: 1px solid #eef2f6; background: #fff; }
#waterfall .span-label { position: absolute; left: 4px; width: 330px; overflow: hidden; white-space: nowrap; font-size: 12px; line-height: 22px; }
#waterfall .span-bar { position: absolute; top: 4px; height: 14px; background: #4098d7; border-radius: 2px; min-width: 2px; }
#waterfall .span-bar.error { background: #d64545; }
#waterfall .span-time { position: absolute; font-size: 10px; line-height: 22px; color: #486581; }
#traces tbody tr { cursor: pointer; }
form label { margin-right: 12px; }
`;

const JS = String.raw`
'use strict';
(function () {
  var views = ['graph', 'security', 'proxies', 'traces', 'live'];
  var SVGNS = 'http://www.w3.org/2000/svg';
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function getJson(url) {
    return fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    });
  }
  function fmt(n, digits) { return n === null || n === undefined ? '–' : Number(n).toFixed(digits === undefined ? 1 : digits); }
  function pct(n) { return n === null || n === undefined ? '–' : (n * 100).toFixed(1) + '%'; }
  function rows(tbody, list) { tbody.replaceChildren.apply(tbody, list); }
  function stamp() { document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString(); }

  // ---- service graph ----
  function layout(nodes, edges) {
    var rank = {};
    nodes.forEach(function (n) { rank[n.id] = 0; });
    for (var i = 0; i < nodes.length; i++) {
      var changed = false;
      edges.forEach(function (e) {
        if (e.source === e.target || rank[e.source] === undefined || rank[e.target] === undefined) return;
        if (rank[e.target] < rank[e.source] + 1) { rank[e.target] = rank[e.source] + 1; changed = true; }
      });
      if (!changed) break;
    }
    var busy = {};
    edges.forEach(function (e) { busy[e.source] = true; busy[e.target] = true; });
    // Idle nodes go under the first column, so the traffic reads left to right.
    nodes.forEach(function (n) { if (!busy[n.id]) rank[n.id] = 0; });
    var columns = {};
    nodes.forEach(function (n) { (columns[rank[n.id]] = columns[rank[n.id]] || []).push(n); });
    var pos = {};
    Object.keys(columns).forEach(function (r) {
      columns[r].sort(function (a, b) { return a.id < b.id ? -1 : 1; });
      columns[r].forEach(function (n, j) { pos[n.id] = { x: 20 + Number(r) * 330, y: 20 + j * 84 }; });
    });
    return pos;
  }
  function drawGraph(g) {
    var box = document.getElementById('graph');
    var pos = layout(g.nodes, g.edges);
    var W = 170, H = 44, maxX = 0, maxY = 0;
    Object.keys(pos).forEach(function (k) { maxX = Math.max(maxX, pos[k].x + W); maxY = Math.max(maxY, pos[k].y + H); });
    var svg = sv('svg', { width: maxX + 40, height: maxY + 40, id: 'graph-svg' });
    var defs = sv('defs');
    var marker = sv('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.appendChild(sv('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#829ab1' }));
    defs.appendChild(marker);
    svg.appendChild(defs);
    g.edges.forEach(function (e) {
      var a = pos[e.source], b = pos[e.target];
      if (!a || !b) return;
      var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      if (b.x <= a.x) { x1 = a.x + W / 2; y1 = a.y + H; x2 = b.x + W / 2; y2 = b.y; }
      var cls = 'edge' + (e.errorRate > 0 ? ' errors' : '') + (e.rps === 0 ? ' idle' : '');
      var group = sv('g', { 'class': cls, 'data-source': e.source, 'data-target': e.target, 'data-rps': e.rps,
        'data-error-rate': e.errorRate, 'data-mtls': e.mtls ? 'true' : 'false', 'data-denied-rps': e.deniedRps });
      var mx = (x1 + x2) / 2;
      group.appendChild(sv('path', { d: 'M ' + x1 + ' ' + y1 + ' C ' + mx + ' ' + y1 + ', ' + mx + ' ' + y2 + ', ' + x2 + ' ' + y2, 'marker-end': 'url(#arrow)' }));
      // The label sits at the curve's midpoint, in the gap between the two columns.
      var lx = mx - 66, ly = (y1 + y2) / 2 - 4;
      var label = fmt(e.rps, 2) + ' rps  ' + pct(e.errorRate) + ' err  ' + (e.p50Ms === null ? '' : 'p50 ' + fmt(e.p50Ms) + ' / p99 ' + fmt(e.p99Ms) + ' ms');
      // Two lines (rate and errors; latency) so the label fits between the columns.
      var text = sv('text', { x: lx + 14, y: ly, 'class': 'edge-label' });
      text.appendChild(sv('tspan', {}, fmt(e.rps, 2) + ' rps  ' + pct(e.errorRate) + ' err '));
      if (e.p50Ms !== null) text.appendChild(sv('tspan', { x: lx + 14, dy: 11 }, 'p50 ' + fmt(e.p50Ms) + ' / p99 ' + fmt(e.p99Ms) + ' ms'));
      group.appendChild(text);
      var title = sv('title', {}, e.source + ' → ' + e.target + ': ' + label + (e.mtls ? ' (mTLS)' : ' (plaintext)'));
      group.appendChild(title);
      if (e.mtls) {
        var lock = sv('g', { 'class': 'lock', transform: 'translate(' + lx + ',' + (ly - 9) + ')' });
        lock.appendChild(sv('path', { d: 'M 2 5 V 3 A 3 3 0 0 1 8 3 V 5' }));
        lock.appendChild(sv('rect', { x: 0, y: 5, width: 10, height: 7 }));
        group.appendChild(lock);
      } else {
        var warn = sv('g', { 'class': 'plaintext-warning', transform: 'translate(' + lx + ',' + (ly - 10) + ')' });
        warn.appendChild(sv('polygon', { points: '5,0 11,11 -1,11' }));
        warn.appendChild(sv('text', { x: 3.5, y: 10 }, '!'));
        group.appendChild(warn);
      }
      svg.appendChild(group);
    });
    g.nodes.forEach(function (n) {
      var p = pos[n.id];
      var group = sv('g', { 'class': 'node ' + n.kind, 'data-id': n.id, transform: 'translate(' + p.x + ',' + p.y + ')' });
      group.appendChild(sv('rect', { width: W, height: H }));
      group.appendChild(sv('text', { x: 8, y: 18 }, n.kind === 'workload' ? (n.app || n.workload) + (n.version ? ' ' + n.version : '') : n.workload));
      group.appendChild(sv('text', { x: 8, y: 34, 'class': 'sub' }, n.kind === 'workload' ? n.workload + '.' + n.namespace : n.kind + (n.namespace ? ' · ' + n.namespace : '')));
      svg.appendChild(group);
    });
    box.replaceChildren(svg);
    document.getElementById('window').textContent = String(g.windowSeconds);
  }
  function refreshGraph() {
    return Promise.all([getJson('/api/graph'), getJson('/api/top')]).then(function (r) {
      drawGraph(r[0].body);
      rows(document.querySelector('#top-table tbody'), r[1].body.workloads.map(function (w) {
        var tr = el('tr', { 'data-workload': w.id });
        [w.workload, w.namespace, fmt(w.rps, 2), pct(w.successRate), fmt(w.p50Ms), fmt(w.p99Ms), pct(w.mtlsRate)].forEach(function (c) { tr.appendChild(el('td', null, c)); });
        return tr;
      }));
      stamp();
    });
  }

  // ---- security ----
  function refreshSecurity() {
    return getJson('/api/security').then(function (r) {
      var s = r.body;
      document.getElementById('denies-count').textContent = s.denies.length + ' denials' + (s.denies.length > 12 ? ', the 12 newest:' : '');
      rows(document.querySelector('#denies tbody'), s.denies.slice(0, 12).map(function (d) {
        var tr = el('tr', { 'class': 'deny-row', 'data-policy': d.policy || '' });
        [new Date(d.time).toLocaleTimeString(), d.sources.length ? d.sources.join(', ') : (d.sourcePrincipal || 'plaintext'), d.proxy,
         d.method + ' ' + d.path, d.status, d.policy || '–', d.details || ''].forEach(function (c) { tr.appendChild(el('td', null, c)); });
        return tr;
      }));
      var sources = [];
      s.workloads.forEach(function (w) { w.callers.forEach(function (c) { if (sources.indexOf(c.source) < 0) sources.push(c.source); }); });
      var matrix = document.getElementById('matrix');
      var head = el('tr');
      head.appendChild(el('th', null, 'workload ↓ / caller →'));
      sources.forEach(function (src) { head.appendChild(el('th', null, src)); });
      var body = [head];
      s.workloads.forEach(function (w) {
        if (w.callers.length === 0) return;
        var tr = el('tr', { 'data-workload': w.id });
        tr.appendChild(el('th', null, w.id));
        sources.forEach(function (src) {
          var verdicts = w.callers.filter(function (c) { return c.source === src; });
          var denied = verdicts.filter(function (c) { return c.decision === 'DENY'; });
          var td = el('td', { 'class': denied.length ? 'deny' : 'allow', 'data-source': src }, verdicts.length === 0 ? '' : denied.length ? '✗' : '✓');
          td.title = verdicts.map(function (c) { return 'port ' + c.port + ': ' + c.decision + (c.policy ? ' by ' + c.policy : '') + ' (' + c.reason + ')'; }).join('\n');
          tr.appendChild(td);
        });
        body.push(tr);
      });
      matrix.replaceChildren.apply(matrix, body);
      rows(document.querySelector('#identities tbody'), s.workloads.map(function (w) {
        var tr = el('tr', { 'data-workload': w.id });
        var certs = w.certificates;
        [w.id, w.spiffeId, certs.map(function (c) { return c.serial || '–'; }).join(', '),
         certs.map(function (c) { return c.notAfter ? new Date(c.notAfter).toLocaleString() : '–'; }).join(', '),
         w.peerAuthentication.map(function (p) { return p.port + ': ' + p.mode + (p.policy ? ' (' + p.policy + ')' : ''); }).join('; ') || '–',
         w.authorizationPolicies.map(function (p) { return p.action + ' ' + p.name; }).join(', ') || '–'].forEach(function (c) { tr.appendChild(el('td', null, c)); });
        return tr;
      }));
      stamp();
    });
  }

  // ---- proxies ----
  function cell(row) {
    if (!row || row.sent === null) return ['NOT SENT', ''];
    if (row.nack !== null) return ['NACKED', 'nacked'];
    return row.acked === row.sent ? ['SYNCED', 'synced'] : ['STALE', 'stale'];
  }
  function refreshProxies() {
    return getJson('/api/proxies').then(function (r) {
      if (r.status !== 200) { document.getElementById('proxies-version').textContent = r.body.error; return; }
      var s = r.body;
      document.getElementById('proxies-version').textContent = 'Config version ' + s.configVersion + (s.configProblems.length ? ' — rejected change: ' + s.configProblems.join('; ') : '');
      var nacks = [];
      rows(document.querySelector('#proxies tbody'), s.proxies.slice().sort(function (a, b) { return a.id < b.id ? -1 : 1; }).map(function (p) {
        var name = p.id.split('~')[2] || p.id;
        var tr = el('tr', { 'data-proxy': name });
        tr.appendChild(el('td', null, name));
        ['cluster', 'listener', 'endpoint', 'route', 'secret'].forEach(function (t) {
          var c = cell(p.types[t]);
          tr.appendChild(el('td', { 'class': c[1] }, c[0] + (p.types[t] && p.types[t].acked ? ' ' + p.types[t].acked : '')));
          if (p.types[t] && p.types[t].nack) nacks.push([name, t, p.types[t].nack]);
        });
        tr.appendChild(el('td', null, new Date(p.connectedAt).toLocaleTimeString()));
        return tr;
      }));
      rows(document.querySelector('#nacks tbody'), nacks.map(function (n) {
        var tr = el('tr');
        n.forEach(function (c) { tr.appendChild(el('td', null, c)); });
        return tr;
      }));
      stamp();
    });
  }

  // ---- traces ----
  function showTrace(id) {
    return getJson('/api/traces/' + encodeURIComponent(id)).then(function (r) {
      var box = document.getElementById('waterfall');
      if (r.status !== 200) { box.textContent = r.body.error || 'no such trace'; return; }
      var spans = r.body.spans.slice();
      var byId = {};
      spans.forEach(function (s) { byId[s.spanId] = s; });
      var depth = function (s) { var d = 0; var p = s; while (p && p.parentSpanId && byId[p.parentSpanId] && d < 50) { p = byId[p.parentSpanId]; d++; } return d; };
      spans.sort(function (a, b) { return a.startTimeUnixMs - b.startTimeUnixMs; });
      var t0 = Math.min.apply(null, spans.map(function (s) { return s.startTimeUnixMs; }));
      var t1 = Math.max.apply(null, spans.map(function (s) { return s.startTimeUnixMs + s.durationMs; }));
      var total = Math.max(t1 - t0, 0.001);
      var head = el('h3', null, 'Trace ' + r.body.traceId + ' — ' + spans.length + ' spans, ' + fmt(total) + ' ms');
      var list = [head];
      spans.forEach(function (s) {
        var row = el('div', { 'class': 'span-row', 'data-service': s.service, 'data-span': s.spanId });
        row.appendChild(el('div', { 'class': 'span-label' }, '\u00a0'.repeat(depth(s) * 2) + s.service + ' ' + s.kind + ': ' + s.name));
        var left = 340 + ((s.startTimeUnixMs - t0) / total) * 560;
        var width = Math.max((s.durationMs / total) * 560, 2);
        var bar = el('div', { 'class': 'span-bar' + (s.error ? ' error' : '') });
        bar.style.left = left + 'px';
        bar.style.width = width + 'px';
        row.appendChild(bar);
        var time = el('div', { 'class': 'span-time' }, fmt(s.durationMs, 2) + ' ms');
        time.style.left = (left + width + 4) + 'px';
        row.appendChild(time);
        list.push(row);
      });
      box.replaceChildren.apply(box, list);
    });
  }
  function refreshTraces() {
    var form = document.getElementById('trace-search');
    var q = new URLSearchParams();
    ['service', 'minDurationMs'].forEach(function (k) { if (form.elements[k].value) q.set(k, form.elements[k].value); });
    if (form.elements.error.checked) q.set('error', 'true');
    q.set('limit', '50');
    return getJson('/api/traces?' + q.toString()).then(function (r) {
      var note = document.getElementById('traces-note');
      if (r.status !== 200) { note.textContent = r.body.error; rows(document.querySelector('#traces tbody'), []); return; }
      note.textContent = r.body.traces.length + ' traces';
      rows(document.querySelector('#traces tbody'), r.body.traces.map(function (t) {
        var tr = el('tr', { 'data-trace': t.traceId });
        [new Date(t.startTimeUnixMs).toLocaleTimeString(), t.rootService + ' ' + t.rootName, fmt(t.durationMs, 2) + ' ms', t.spanCount, t.services.join(', '), t.error ? 'error' : 'ok'].forEach(function (c) { tr.appendChild(el('td', null, c)); });
        tr.addEventListener('click', function () { showTrace(t.traceId); });
        return tr;
      }));
    });
  }

  // ---- live requests ----
  var source = null;
  function stopTap() { if (source) { source.close(); source = null; } }
  function startTap(workload) {
    stopTap();
    var tbody = document.querySelector('#tap tbody');
    tbody.replaceChildren();
    source = new EventSource('/api/tap?workload=' + encodeURIComponent(workload));
    source.onmessage = function (m) {
      var e = JSON.parse(m.data);
      var tr = el('tr', { 'class': 'tap-row' });
      [new Date(e.time).toLocaleTimeString(), e.proxy, e.direction, e.method, e.path, e.status, fmt(e.durationMs, 2) + ' ms',
       e.direction === 'inbound' ? (e.sourcePrincipal || 'plaintext') : e.destination].forEach(function (c) { tr.appendChild(el('td', null, c)); });
      tbody.insertBefore(tr, tbody.firstChild);
      while (tbody.children.length > 200) tbody.removeChild(tbody.lastChild);
    };
  }

  var refreshers = { graph: refreshGraph, security: refreshSecurity, proxies: refreshProxies, traces: refreshTraces, live: function () { return Promise.resolve(); } };
  function current() { var v = location.hash.slice(1); return views.indexOf(v) >= 0 ? v : 'graph'; }
  function show() {
    var v = current();
    views.forEach(function (name) {
      document.getElementById('view-' + name).classList.toggle('active', name === v);
      document.querySelector('nav a[data-view="' + name + '"]').classList.toggle('active', name === v);
    });
    if (v !== 'live') stopTap();
    refreshers[v]().catch(function () {});
  }
  window.addEventListener('hashchange', show);
  document.getElementById('trace-search').addEventListener('submit', function (ev) { ev.preventDefault(); refreshTraces(); });
  document.getElementById('tap-form').addEventListener('submit', function (ev) { ev.preventDefault(); startTap(document.getElementById('tap-workload').value); });
  document.getElementById('tap-stop').addEventListener('click', stopTap);
  getJson('/api/mesh').then(function (r) {
    document.getElementById('mesh-name').textContent = 'mesh ' + r.body.name;
    var select = document.getElementById('tap-workload');
    r.body.workloads.forEach(function (w) { select.appendChild(el('option', { value: w.id }, w.id)); });
  });
  show();
  // Live update: the graph every 3 s, the security and proxy views every 5 s while shown.
  setInterval(function () { var v = current(); if (v === 'graph') refreshGraph().catch(function () {}); }, 3000);
  setInterval(function () { var v = current(); if (v === 'security' || v === 'proxies') refreshers[v]().catch(function () {}); }, 5000);
})();
`;

/** Path → asset. */
export const DASHBOARD_ASSETS: Readonly<
  Record<string, { readonly type: string; readonly body: string }>
> = {
  '/index.html': { type: 'text/html; charset=utf-8', body: HTML },
  '/app.css': { type: 'text/css; charset=utf-8', body: CSS },
  '/app.js': { type: 'text/javascript; charset=utf-8', body: JS },
};
