// tracewire's trace viewer: a single page over the collector's JSON API
// and the viewer's endpoints (/api/traces/{id}/view, …/critical-path,
// /api/compare). Hand-written, no dependencies. Everything from the
// server is inserted as text (never as HTML).
'use strict';
(() => {
  const view = document.getElementById('view');
  const ROW = 24; // px, as --row in app.css
  const OVERSCAN = 12;

  // ---------- helpers ----------

  /** An element with attributes and children (strings become text). */
  function el(tag, attrs, ...children) {
    const svg = ['svg', 'g', 'circle', 'path', 'line', 'rect', 'text', 'title', 'defs', 'marker', 'polyline', 'tspan'].includes(tag);
    const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.setAttribute('class', v);
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'style' && typeof v === 'object') Object.assign(node.style, v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch (_) { body = null; }
    if (!res.ok) {
      const message = body && typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`;
      const e = new Error(message);
      e.status = res.status;
      throw e;
    }
    return body;
  }

  function fmtNs(ns) {
    ns = Number(ns) || 0;
    const a = Math.abs(ns);
    if (a < 1e3) return `${Math.round(ns)} ns`;
    if (a < 1e6) return `${(ns / 1e3).toFixed(a < 1e4 ? 2 : 1)} µs`;
    if (a < 1e9) return `${(ns / 1e6).toFixed(a < 1e7 ? 2 : 1)} ms`;
    return `${(ns / 1e9).toFixed(2)} s`;
  }
  const fmtDelta = (ns) => (ns > 0 ? '+' : ns < 0 ? '−' : '') + fmtNs(Math.abs(ns));
  const fmtPct = (f) => `${(f * 100).toFixed(1)}%`;
  function fmtTime(unixNano) {
    const d = new Date(Number(unixNano) / 1e6);
    return isNaN(d) ? '' : d.toISOString().replace('T', ' ').replace('Z', ' UTC');
  }
  function display(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
  const isHexId = (s, n) => typeof s === 'string' && s.length === n && /^[0-9a-fA-F]+$/.test(s);

  // ---------- colours: a service palette, text contrast checked ----------

  // Light backgrounds with dark text (#111): each pair is well above 4.5:1.
  const PALETTE = ['#8ecae6', '#ffb703', '#95d5b2', '#f4a261', '#cdb4db', '#ffafcc', '#a8dadc',
    '#e9c46a', '#b5e48c', '#bde0fe', '#f7b2ad', '#d4c1ec', '#ffd6a5', '#caffbf', '#9bf6ff', '#fdffb6'];
  const TEXT = '#111111';
  const colours = new Map();
  function colourOf(service) {
    let c = colours.get(service);
    if (!c) {
      c = PALETTE[colours.size % PALETTE.length];
      colours.set(service, c);
    }
    return c;
  }
  function luminance(hex) {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) return 0;
    const [r, g, b] = m.slice(1).map((h) => {
      const c = parseInt(h, 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  /** The WCAG contrast ratio of two #rrggbb colours. */
  function contrast(a, b) {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  }
  function chip(service) {
    return el('span', { class: 'chip', style: { background: colourOf(service), color: TEXT }, 'data-service': service }, service);
  }

  // ---------- routing ----------

  let generation = 0;
  function route() {
    generation += 1;
    delete view.dataset.ready;
    const hash = location.hash || '#/search';
    const [path, qs] = hash.slice(1).split('?');
    const params = new URLSearchParams(qs || '');
    const parts = path.split('/').filter(Boolean);
    const page = parts[0] || 'search';
    for (const a of document.querySelectorAll('.top nav a')) {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const g = generation;
    const run = page === 'trace' && parts[1] ? showTrace(decodeURIComponent(parts[1]), params, g)
      : page === 'compare' ? showCompare(params, g)
      : page === 'map' ? showMap(params, g)
      : showSearch(params, g);
    Promise.resolve(run).catch((e) => {
      if (g === generation) view.replaceChildren(el('p', { class: 'error-text', role: 'alert' }, `Error: ${e.message}`));
    }).finally(() => ready(g));
  }
  const current = (g) => g === generation;
  /** Marks the page as rendered for the current hash (tests wait for it). */
  function ready(g) { if (current(g)) view.dataset.ready = location.hash || '#/search'; }
  function go(hash) { location.hash = hash; }

  // ---------- search ----------

  const RANGES = [['', 'any time'], ['15m', 'last 15 minutes'], ['1h', 'last hour'], ['6h', 'last 6 hours'],
    ['24h', 'last 24 hours'], ['7d', 'last 7 days']];
  const RANGE_MS = { '15m': 9e5, '1h': 3.6e6, '6h': 2.16e7, '24h': 8.64e7, '7d': 6.048e8 };

  async function showSearch(params, g) {
    const services = await getJSON('/api/services').then((b) => b.services || []).catch(() => []);
    if (!current(g)) return;
    const p = (k) => params.get(k) || '';
    const serviceSel = el('select', { name: 'service', id: 'f-service' },
      el('option', { value: '' }, 'any service'),
      services.map((s) => el('option', { value: s, selected: s === p('service') }, s)));
    const opList = el('datalist', { id: 'operations' });
    const opInput = el('input', { name: 'operation', id: 'f-operation', list: 'operations', value: p('operation'), placeholder: 'any operation' });
    const loadOps = async () => {
      opList.replaceChildren();
      const s = serviceSel.value;
      if (!s) return;
      try {
        const b = await getJSON(`/api/services/${encodeURIComponent(s)}/operations`);
        opList.replaceChildren(...(b.operations || []).map((o) => el('option', { value: o.name }, o.kind ? `${o.name} (${o.kind})` : o.name)));
      } catch (_) { /* an older collector: free text only */ }
    };
    serviceSel.addEventListener('change', loadOps);
    loadOps();
    const form = el('form', { class: 'search', role: 'search', 'aria-label': 'Find traces' },
      el('label', {}, 'Service', serviceSel),
      el('label', {}, 'Operation', opInput, opList),
      el('label', {}, 'Attributes (key=value, several: comma)', el('input', { name: 'attribute', id: 'f-attribute', value: params.getAll('attribute').join(', '), placeholder: 'http.route=/login' })),
      el('label', {}, 'Min duration (ms)', el('input', { class: 'num', name: 'min_duration_ms', id: 'f-min', inputmode: 'decimal', value: p('min_duration_ms') })),
      el('label', {}, 'Max duration (ms)', el('input', { class: 'num', name: 'max_duration_ms', id: 'f-max', inputmode: 'decimal', value: p('max_duration_ms') })),
      el('label', {}, 'Time', el('select', { name: 'range', id: 'f-range' }, RANGES.map(([v, t]) => el('option', { value: v, selected: v === p('range') }, t)))),
      el('label', {}, 'From', el('input', { type: 'datetime-local', step: 1, name: 'from', id: 'f-from', value: p('from') })),
      el('label', {}, 'To', el('input', { type: 'datetime-local', step: 1, name: 'to', id: 'f-to', value: p('to') })),
      el('label', {}, 'Limit', el('input', { class: 'num', name: 'limit', id: 'f-limit', value: p('limit') || '50' })),
      el('label', {}, 'Sort', el('select', { name: 'sort', id: 'f-sort' },
        [['', 'newest first'], ['slowest', 'slowest first'], ['fastest', 'fastest first'], ['spans', 'most spans']]
          .map(([v, t]) => el('option', { value: v, selected: v === p('sort') }, t)))),
      el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'error', id: 'f-error', checked: p('error') === 'true' }), 'Errors only'),
      el('button', { type: 'submit', id: 'f-submit' }, 'Find traces'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const out = new URLSearchParams();
      const fd = new FormData(form);
      for (const k of ['service', 'operation', 'min_duration_ms', 'max_duration_ms', 'range', 'from', 'to', 'limit', 'sort']) {
        const v = String(fd.get(k) || '').trim();
        if (v) out.set(k, v);
      }
      for (const a of String(fd.get('attribute') || '').split(',')) if (a.trim()) out.append('attribute', a.trim());
      if (fd.get('error')) out.set('error', 'true');
      out.set('run', '1');
      const hash = `#/search?${out}`;
      if (location.hash === hash) route(); else go(hash);
    });
    const results = el('section', { id: 'results', 'aria-live': 'polite' });
    view.replaceChildren(el('h1', {}, 'Find traces'), form, results);
    if (params.get('run') !== '1' && ![...params.keys()].length) {
      // First visit: show the most recent traces.
      params = new URLSearchParams('limit=50');
    }
    await runSearch(params, results, g);
  }

  async function runSearch(params, results, g) {
    const q = new URLSearchParams();
    for (const k of ['service', 'operation', 'min_duration_ms', 'max_duration_ms', 'limit']) if (params.get(k)) q.set(k, params.get(k));
    for (const a of params.getAll('attribute')) q.append('attribute', a);
    if (params.get('error') === 'true') q.set('error', 'true');
    // A preset range and a custom one: the later start and the earlier
    // end (From and To are the browser's local time).
    const range = params.get('range');
    const since = [];
    if (range && RANGE_MS[range]) since.push(Math.floor(Date.now() - RANGE_MS[range]));
    const local = (name) => { const t = Date.parse(params.get(name) || ''); return Number.isFinite(t) ? t : null; };
    if (local('from') !== null) since.push(local('from'));
    if (since.length) q.set('since_ms', String(Math.max(...since)));
    if (local('to') !== null) q.set('until_ms', String(local('to')));
    results.replaceChildren(el('p', { class: 'muted' }, 'Searching…'));
    let traces;
    try {
      traces = (await getJSON(`/api/traces?${q}`)).traces || [];
    } catch (e) {
      if (current(g)) results.replaceChildren(el('p', { class: 'error-text', role: 'alert' }, `Search failed: ${e.message}`));
      return;
    }
    if (!current(g)) return;
    const sort = params.get('sort');
    if (sort === 'slowest') traces.sort((a, b) => b.duration_ns - a.duration_ns);
    else if (sort === 'fastest') traces.sort((a, b) => a.duration_ns - b.duration_ns);
    else if (sort === 'spans') traces.sort((a, b) => b.span_count - a.span_count);
    if (!traces.length) {
      results.replaceChildren(el('p', { class: 'muted', id: 'no-results' }, 'No trace matches.'));
      return;
    }
    const rows = traces.map((t) => el('tr', { class: 'result', 'data-trace-id': t.trace_id, onclick: (ev) => { if (ev.target.tagName !== 'A') go(`#/trace/${t.trace_id}`); } },
      el('td', { class: 'mono' }, fmtTime(t.start_unix_nano)),
      el('td', {}, el('a', { href: `#/trace/${t.trace_id}`, class: 'root-op' }, t.root_name === null || t.root_name === undefined ? '(root not stored)' : `${t.root_service}: ${t.root_name}`),
        el('div', { class: 'mono muted' }, t.trace_id)),
      el('td', {}, (t.services || []).map(chip)),
      el('td', { class: 'num' }, t.span_count),
      el('td', { class: 'num duration' }, fmtNs(t.duration_ns)),
      el('td', { class: 'num' }, t.error_count ? el('span', { class: 'error-text' }, `${t.error_count} ⚠`) : '0')));
    results.replaceChildren(
      el('h2', {}, `${traces.length} trace${traces.length === 1 ? '' : 's'}`),
      scatter(traces),
      el('table', { class: 'results' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Start'), el('th', {}, 'Root operation'), el('th', {}, 'Services'),
          el('th', { class: 'num' }, 'Spans'), el('th', { class: 'num' }, 'Duration'), el('th', { class: 'num' }, 'Errors'))),
        el('tbody', {}, rows)));
  }

  /** Duration over start time; outliers (beyond Q3 + 1.5 IQR) in red. */
  function scatter(traces) {
    const W = 900, H = 220, L = 70, R = 16, T = 14, B = 30;
    const xs = traces.map((t) => Number(t.start_unix_nano) / 1e6);
    const ys = traces.map((t) => Number(t.duration_ns));
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const y1 = Math.max(...ys) || 1;
    const sorted = [...ys].sort((a, b) => a - b);
    const q = (f) => sorted[Math.min(sorted.length - 1, Math.floor(f * (sorted.length - 1)))];
    const fence = sorted.length >= 4 ? q(0.75) + 1.5 * (q(0.75) - q(0.25)) : Infinity;
    const sx = (x) => (x1 === x0 ? (L + W - R) / 2 : L + ((x - x0) / (x1 - x0)) * (W - L - R));
    const sy = (y) => H - B - (y / y1) * (H - T - B);
    const svg = el('svg', { class: 'scatter', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Trace duration over time' },
      el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#8a8f98' }),
      el('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#8a8f98' }),
      el('text', { x: L - 6, y: T + 4, 'text-anchor': 'end' }, fmtNs(y1)),
      el('text', { x: L - 6, y: H - B, 'text-anchor': 'end' }, '0'),
      el('text', { x: L, y: H - 8 }, fmtTime(x0 * 1e6)),
      el('text', { x: W - R, y: H - 8, 'text-anchor': 'end' }, fmtTime(x1 * 1e6)));
    traces.forEach((t, i) => {
      const outlier = ys[i] > fence;
      svg.append(el('circle', {
        cx: sx(xs[i]).toFixed(1), cy: sy(ys[i]).toFixed(1), r: outlier ? 7 : 5,
        class: outlier ? 'point outlier' : 'point', fill: t.error_count ? '#b3261e' : outlier ? '#f28b82' : '#4c7bd9',
        'fill-opacity': 0.8, 'data-trace-id': t.trace_id, onclick: () => go(`#/trace/${t.trace_id}`),
      }, el('title', {}, `${t.root_name || t.trace_id}: ${fmtNs(t.duration_ns)}${outlier ? ' (outlier)' : ''}`)));
    });
    return svg;
  }

  // ---------- the waterfall (virtualised) ----------

  /**
   * A waterfall of `rows` (the view's spans in tree order). Only the rows
   * in sight are in the DOM. opts: total (ns), onOpen(index), highlight
   * (a Set of span ids), idPrefix, label.
   */
  function waterfall(rows, opts) {
    const total = Math.max(1, opts.total);
    const prefix = opts.idPrefix || 'wf';
    const highlight = opts.highlight || new Set();
    let selected = -1;
    const axis = el('div', { class: 'axis', 'aria-hidden': 'true' },
      [0, 0.25, 0.5, 0.75, 1].map((f) => el('span', { style: { left: `${f * 100}%` } }, fmtNs(total * f))));
    const spacer = el('div', { class: 'spacer', style: { height: `${rows.length * ROW}px` } });
    const box = el('div', { class: 'rows', role: 'listbox', tabindex: 0, 'aria-label': opts.label || 'Spans', id: `${prefix}-rows`,
      style: { height: `min(${opts.maxHeight || '62vh'}, ${rows.length * ROW + 4}px)` } }, spacer);
    const root = el('div', { class: 'waterfall' }, axis, box);
    let pending = false;

    function rowNode(i) {
      const s = rows[i];
      const left = (s.start_offset_ns / total) * 100;
      const width = Math.max(0, (s.duration_ns / total) * 100);
      const error = s.status === 'error';
      const onPath = s.critical_path_self_ns !== null && s.critical_path_self_ns !== undefined;
      const classes = ['row'];
      if (highlight.has(s.span_id)) classes.push('slower');
      if (onPath) classes.push('critical');
      if (s.bottleneck) classes.push('bottleneck');
      const bar = el('div', { class: `bar${error ? ' error' : ''}${s.bottleneck ? ' bottleneck' : ''}`, style: { left: `${left}%`, width: `${width}%`, background: colourOf(s.service) } },
        onPath ? el('div', { class: 'cp', title: `critical path: ${fmtNs(s.critical_path_self_ns)} self` }) : null);
      // The duration: inside a wide bar (dark text on the service colour),
      // else beside it.
      const durStyle = width > 14 ? { right: `calc(${Math.max(0, 100 - left - width)}% + 4px)`, color: TEXT }
        : left + width > 82 ? { right: `calc(${Math.max(0, 100 - left)}% + 4px)` } : { left: `calc(${left + width}% + 4px)` };
      return el('div', {
        class: classes.join(' '), role: 'option', id: `${prefix}-row-${i}`, 'aria-selected': String(i === selected),
        'data-index': i, 'data-span-id': s.span_id, 'data-service': s.service, 'data-name': s.name, 'data-depth': s.depth,
        'data-bottleneck': s.bottleneck ? 'true' : null, 'data-critical': onPath ? 'true' : null, 'data-error': error ? 'true' : null,
        style: { top: `${i * ROW}px` }, onclick: () => { select(i); box.focus({ preventScroll: true }); opts.onOpen && opts.onOpen(i); },
      },
      el('div', { class: 'label', style: { paddingLeft: `${4 + Math.min(s.depth, 24) * 14}px` }, title: `${s.service}: ${s.name}` },
        chip(s.service), ' ', el('span', { class: 'name' }, s.name),
        error ? el('span', { class: 'err', title: s.error_message || 'error' }, '⚠ error') : null,
        s.bottleneck ? el('span', { class: 'bneck' }, 'bottleneck') : null,
        s.orphan ? el('span', { class: 'muted' }, ' (orphan)') : null),
      el('div', { class: 'track' }, bar, el('span', { class: 'dur', style: durStyle }, fmtNs(s.duration_ns))));
    }

    function render() {
      pending = false;
      const top = box.scrollTop;
      const h = box.clientHeight || 600;
      const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
      const last = Math.min(rows.length, Math.ceil((top + h) / ROW) + OVERSCAN);
      const nodes = [];
      for (let i = first; i < last; i++) nodes.push(rowNode(i));
      spacer.replaceChildren(...nodes);
      // The axis spans what the bars span (not the scroll bar).
      axis.style.marginRight = `${box.offsetWidth - box.clientWidth}px`;
      if (selected >= first && selected < last) box.setAttribute('aria-activedescendant', `${prefix}-row-${selected}`);
      else box.removeAttribute('aria-activedescendant');
    }
    function schedule() {
      if (!pending) { pending = true; requestAnimationFrame(render); }
    }
    function select(i, scroll) {
      if (!rows.length) return;
      selected = Math.max(0, Math.min(rows.length - 1, i));
      if (scroll) {
        const y = selected * ROW;
        if (y < box.scrollTop) box.scrollTop = y;
        else if (y + ROW > box.scrollTop + box.clientHeight) box.scrollTop = y + ROW - box.clientHeight;
      }
      render();
      opts.onSelect && opts.onSelect(selected);
    }
    box.addEventListener('scroll', schedule);
    box.addEventListener('keydown', (ev) => {
      const page = Math.max(1, Math.floor(box.clientHeight / ROW) - 1);
      const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
      if (ev.key in moves) select(selected < 0 ? 0 : selected + moves[ev.key], true);
      else if (ev.key === 'Home') select(0, true);
      else if (ev.key === 'End') select(rows.length - 1, true);
      else if (ev.key === 'Enter' && selected >= 0) { opts.onOpen && opts.onOpen(selected); }
      else return;
      ev.preventDefault();
    });
    return {
      node: root,
      render,
      select,
      selected: () => selected,
      indexOf: (spanId) => rows.findIndex((r) => r.span_id === spanId),
    };
  }

  // ---------- trace ----------

  async function showTrace(id, params, g) {
    view.replaceChildren(el('p', { class: 'muted' }, `Loading trace ${id}…`));
    const enc = encodeURIComponent(id);
    // The waterfall needs only the view; the stored spans (details) and
    // the log lines are asked for next and fill in when they arrive.
    const tree = await getJSON(`/api/traces/${enc}/view`);
    if (!current(g)) return;
    const rawP = getJSON(`/api/traces/${enc}`).catch((e) => ({ spans: [], logs: [], error: e.message }));
    const path = tree.critical_path || {};
    let spans = new Map();
    let logs = [];
    let traceStart = 0;
    const rows = tree.spans || [];
    const details = el('aside', { class: 'details', id: 'details', 'aria-label': 'Span details', tabindex: -1 },
      el('p', { class: 'muted' }, 'Select a span (click, or arrow keys and Enter) to see its attributes, events, links and logs.'));
    const layout = el('div', { class: 'trace-layout' });
    let opened = -1;
    const wf = waterfall(rows, {
      total: tree.duration_ns, idPrefix: 'span', label: 'Spans of the trace, in tree order',
      onOpen: (i) => openDetails(i),
    });
    function openDetails(i) {
      opened = i;
      const row = rows[i];
      const s = spans.get(row.span_id) || {};
      details.replaceChildren(...spanDetails(row, s, path, logs.filter((l) => l.span_id === row.span_id), traceStart));
    }
    const b = path.bottleneck || {};
    const header = el('div', {},
      el('h1', {}, `${tree.root ? `${tree.root.service}: ${tree.root.name}` : 'Trace'}`),
      el('div', { class: 'summary' },
        el('span', { class: 'mono' }, `trace ${tree.trace_id}`),
        el('span', {}, `start ${tree.start}`),
        el('span', {}, `duration ${fmtNs(tree.duration_ns)}`),
        el('span', {}, `${tree.span_count} spans`),
        el('span', {}, `${(tree.services || []).length} services`),
        tree.error_count ? el('span', { class: 'error-text' }, `${tree.error_count} error${tree.error_count === 1 ? '' : 's'}`) : el('span', {}, 'no errors'),
        tree.orphan_count ? el('span', {}, `${tree.orphan_count} orphans`) : null),
      el('p', { id: 'bottleneck' }, 'Bottleneck (largest self-time on the critical path): ',
        el('a', { href: `#/trace/${tree.trace_id}?span=${b.span_id}`, class: 'bottleneck-link' }, `${b.service}: ${b.name}`),
        ` — ${fmtNs(b.self_ns)} self, ${fmtPct(b.share || 0)} of ${fmtNs(path.total_ns)}. `,
        el('span', { class: 'muted' }, 'Critical-path spans have a dark underline.')),
      el('form', { class: 'compare', onsubmit: (ev) => { ev.preventDefault(); const other = ev.target.elements.other.value.trim(); if (other) go(`#/compare?a=${encodeURIComponent(other)}&b=${tree.trace_id}`); } },
        el('label', {}, 'Compare with trace (baseline)', el('input', { class: 'id mono', name: 'other', id: 'compare-with', placeholder: '32 hex digits' })),
        el('button', { type: 'submit' }, 'Compare')),
      el('div', { class: 'legend', 'aria-label': 'Services' }, (tree.services || []).map(chip)));
    // The log lines under the waterfall, the details beside both.
    const logsSlot = el('section', { class: 'logs', id: 'logs-loading' }, el('p', { class: 'muted' }, 'Loading log lines…'));
    layout.append(el('div', { class: 'trace-main' }, wf.node, logsSlot), details);
    view.replaceChildren(header, layout);
    wf.render();
    window.tracewire.firstRender = performance.now();
    const want = params.get('span');
    const start = want ? wf.indexOf(want) : -1;
    if (start >= 0) wf.select(start, true);
    document.getElementById('span-rows').focus({ preventScroll: true });

    const raw = await rawP;
    if (!current(g)) return;
    spans = new Map((raw.spans || []).map((s) => [s.span_id, s]));
    traceStart = (raw.spans || []).reduce((m, s) => Math.min(m, Number(s.start_unix_nano)), Infinity);
    logs = (raw.logs || []).slice().sort((x, y) => Number(x.time_unix_nano || x.observed_time_unix_nano) - Number(y.time_unix_nano || y.observed_time_unix_nano));
    logsSlot.replaceWith(raw.error ? el('p', { class: 'error-text', role: 'alert' }, `The stored spans could not be read: ${raw.error}`)
      : logsPanel(logs, traceStart, (spanId) => {
        const i = wf.indexOf(spanId);
        if (i >= 0) { wf.select(i, true); openDetails(i); }
      }));
    if (opened >= 0) openDetails(opened);
    else if (start >= 0) openDetails(start);
  }

  function kvTable(obj, cls) {
    const entries = Object.entries(obj || {});
    if (!entries.length) return el('p', { class: 'muted' }, 'none');
    return el('table', { class: cls }, el('tbody', {}, entries.map(([k, v]) => el('tr', {}, el('td', { class: 'mono' }, k), el('td', {}, display(v))))));
  }

  function spanDetails(row, s, path, logs, traceStart) {
    const status = s.status || { code: row.status };
    const step = (path.path || []).find((p) => p.span_id === row.span_id);
    const out = [
      el('h2', {}, row.name),
      el('dl', {},
        el('dt', {}, 'Service'), el('dd', {}, chip(row.service)),
        el('dt', {}, 'Kind'), el('dd', {}, s.kind || row.kind || ''),
        el('dt', {}, 'Status'), el('dd', { class: status.code === 'error' ? 'error-text' : '' }, `${status.code}${status.message ? `: ${status.message}` : ''}`),
        el('dt', {}, 'Start'), el('dd', {}, `+${fmtNs(row.start_offset_ns)}`),
        el('dt', {}, 'Duration'), el('dd', {}, fmtNs(row.duration_ns)),
        el('dt', {}, 'Critical path'), el('dd', {}, step ? `${fmtNs(step.self_ns)} self (${fmtPct(step.share)})${step.bottleneck ? ' — the bottleneck' : ''}` : 'not on it'),
        el('dt', {}, 'Span id'), el('dd', { class: 'mono' }, row.span_id),
        el('dt', {}, 'Parent'), el('dd', { class: 'mono' }, row.parent_span_id || 'none (root)')),
      el('h2', {}, 'Attributes'), kvTable(s.attributes, 'attributes'),
      el('h2', {}, 'Events')];
    const events = Array.isArray(s.events) ? s.events : [];
    out.push(events.length ? el('ul', { class: 'events' }, events.map((e) => el('li', {},
      el('strong', {}, e.name || ''), ` +${fmtNs(Number(e.time_unix_nano) - traceStart)}`, kvTable(e.attributes)))) : el('p', { class: 'muted' }, 'none'));
    out.push(el('h2', {}, 'Links'));
    const links = Array.isArray(s.links) ? s.links : [];
    out.push(links.length ? el('ul', { class: 'links' }, links.map((l) => {
      const ok = isHexId(l.trace_id, 32) && isHexId(l.span_id, 16);
      return el('li', {}, ok ? el('a', { href: `#/trace/${l.trace_id}?span=${l.span_id}`, class: 'span-link' }, `trace ${l.trace_id.slice(0, 8)}… span ${l.span_id}`) : display(l),
        kvTable(l.attributes));
    })) : el('p', { class: 'muted' }, 'none'));
    out.push(el('h2', {}, 'Logs'));
    out.push(logs.length ? el('ul', {}, logs.map((l) => el('li', {}, `${l.severity_text || ''} ${display(l.body)}`))) : el('p', { class: 'muted' }, 'none'));
    out.push(el('h2', {}, 'Resource'), kvTable(s.resource, 'resource'));
    out.push(el('h2', {}, 'Scope'), el('p', { class: 'mono' }, s.scope ? `${s.scope.name || ''} ${s.scope.version || ''}` : ''));
    return out;
  }

  function logsPanel(logs, traceStart, onSpan) {
    const section = el('section', { class: 'logs', id: 'logs', 'aria-label': 'Log lines' }, el('h2', {}, `Log lines (${logs.length})`));
    if (!logs.length) {
      section.append(el('p', { class: 'muted' }, 'No log line of this trace is stored (OTLP logs go to POST /v1/logs).'));
      return section;
    }
    section.append(el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Service'), el('th', {}, 'Severity'), el('th', {}, 'Message'), el('th', {}, 'Span'))),
      el('tbody', {}, logs.map((l) => {
        const t = Number(l.time_unix_nano) || Number(l.observed_time_unix_nano);
        const sev = String(l.severity_text || '').toLowerCase();
        return el('tr', { class: 'log-row', 'data-span-id': l.span_id || null, onclick: () => l.span_id && onSpan(l.span_id) },
          el('td', { class: 'mono' }, `+${fmtNs(t - traceStart)}`),
          el('td', {}, chip(l.service || 'unknown_service')),
          el('td', { class: `sev-${sev}` }, l.severity_text || String(l.severity_number || '')),
          el('td', { class: 'log-body' }, display(l.body)),
          el('td', {}, l.span_id ? el('a', { href: '#', class: 'mono', onclick: (ev) => { ev.preventDefault(); ev.stopPropagation(); onSpan(l.span_id); } }, l.span_id) : ''));
      }))));
    return section;
  }

  // ---------- compare ----------

  async function showCompare(params, g) {
    const a = params.get('a') || '';
    const b = params.get('b') || '';
    const form = el('form', { class: 'compare', onsubmit: (ev) => {
      ev.preventDefault();
      const f = ev.target.elements;
      go(`#/compare?a=${encodeURIComponent(f.a.value.trim())}&b=${encodeURIComponent(f.b.value.trim())}`);
    } },
    el('label', {}, 'Trace A (baseline)', el('input', { class: 'id mono', name: 'a', id: 'cmp-a', value: a })),
    el('label', {}, 'Trace B', el('input', { class: 'id mono', name: 'b', id: 'cmp-b', value: b })),
    el('button', { type: 'submit' }, 'Compare'));
    view.replaceChildren(el('h1', {}, 'Compare two traces'), form);
    if (!a || !b) return;
    let diff, va, vb;
    try {
      [diff, va, vb] = await Promise.all([
        getJSON(`/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`),
        getJSON(`/api/traces/${encodeURIComponent(a)}/view`), getJSON(`/api/traces/${encodeURIComponent(b)}/view`)]);
    } catch (e) {
      if (current(g)) view.append(el('p', { class: 'error-text', role: 'alert' }, `Cannot compare: ${e.message}`));
      return;
    }
    if (!current(g)) return;
    const ranked = (list, cls, title) => el('section', {}, el('h2', {}, `${title} (${list.length})`),
      list.length ? el('table', { class: cls }, el('thead', {}, el('tr', {}, el('th', {}, 'Service'), el('th', {}, 'Operation'),
        el('th', { class: 'num' }, 'A'), el('th', { class: 'num' }, 'B'), el('th', { class: 'num' }, 'Difference'), el('th', { class: 'num' }, 'Relative'))),
      el('tbody', {}, list.map((m) => el('tr', { 'data-name': m.name, title: m.path },
        el('td', {}, chip(m.service)), el('td', { class: 'op' }, m.name),
        el('td', { class: 'num' }, fmtNs(m.a_duration_ns)), el('td', { class: 'num' }, fmtNs(m.b_duration_ns)),
        el('td', { class: `num ${m.delta_ns > 0 ? 'delta-pos' : 'delta-neg'}` }, fmtDelta(m.delta_ns)),
        el('td', { class: 'num' }, m.relative === null || m.relative === undefined ? '' : `${m.relative > 0 ? '+' : ''}${fmtPct(m.relative)}`)))))
        : el('p', { class: 'muted' }, 'none'));
    const unmatched = (list, title) => el('section', {}, el('h2', {}, `${title} (${list.length})`),
      list.length ? el('ul', {}, list.map((u) => el('li', {}, chip(u.service), ` ${u.name} — ${fmtNs(u.duration_ns)}`))) : el('p', { class: 'muted' }, 'none'));
    const slowerA = new Set(diff.slower.map((m) => m.a_span_id));
    const slowerB = new Set(diff.slower.map((m) => m.b_span_id));
    const total = Math.max(va.duration_ns, vb.duration_ns);
    const wa = waterfall(va.spans, { total, idPrefix: 'cmp-a', highlight: slowerA, label: 'Spans of trace A', maxHeight: '40vh' });
    const wb = waterfall(vb.spans, { total, idPrefix: 'cmp-b', highlight: slowerB, label: 'Spans of trace B', maxHeight: '40vh' });
    view.append(
      el('p', { class: 'summary', id: 'compare-summary' },
        el('span', {}, `A ${fmtNs(diff.a.duration_ns)} (${diff.a.span_count} spans)`),
        el('span', {}, `B ${fmtNs(diff.b.duration_ns)} (${diff.b.span_count} spans)`),
        el('span', { class: diff.duration_delta_ns > 0 ? 'delta-pos' : 'delta-neg' }, `B − A: ${fmtDelta(diff.duration_delta_ns)}`)),
      ranked(diff.slower, 'slower', 'Slower in B, largest difference first'),
      ranked(diff.faster, 'faster', 'Faster in B'),
      unmatched(diff.missing, 'Missing in B'), unmatched(diff.new, 'New in B'),
      el('h2', {}, 'Waterfalls (slower spans highlighted)'),
      el('div', { class: 'compare-grid' },
        el('div', {}, el('p', {}, el('a', { href: `#/trace/${diff.a.trace_id}` }, `A ${diff.a.trace_id}`)), wa.node),
        el('div', {}, el('p', {}, el('a', { href: `#/trace/${diff.b.trace_id}` }, `B ${diff.b.trace_id}`)), wb.node)));
    wa.render();
    wb.render();
  }

  // ---------- service map ----------

  async function showMap(params, g) {
    // The last hour unless asked (the map reads every span of its window).
    const range = params.has('range') ? params.get('range') : '1h';
    const sel = el('select', { id: 'map-range', onchange: (ev) => go(`#/map?range=${ev.target.value}`) },
      RANGES.map(([v, t]) => el('option', { value: v, selected: v === range }, t)));
    view.replaceChildren(el('h1', {}, 'Service map'), el('label', {}, 'Time ', sel));
    const q = new URLSearchParams();
    if (RANGE_MS[range]) q.set('since_ms', String(Math.floor(Date.now() - RANGE_MS[range])));
    let edges;
    try {
      edges = (await getJSON(`/api/dependencies?${q}`)).edges || [];
    } catch (e) {
      if (current(g)) view.append(el('p', { class: 'error-text', role: 'alert' }, `The service map needs the collector's /api/dependencies: ${e.message}`));
      return;
    }
    if (!current(g)) return;
    if (!edges.length) { view.append(el('p', { class: 'muted' }, 'No calls between services are stored.')); return; }
    view.append(serviceMap(edges), edgeTable(edges));
  }

  /** Layers by call depth: the longest path from a service nobody calls,
   *  over the calls that do not close a cycle (a Kafka consumer calling
   *  back its producer's service stays to the right of it). */
  function serviceMap(edges) {
    const names = [...new Set(edges.flatMap((e) => [e.caller, e.callee]))].sort();
    const out = new Map(names.map((n) => [n, []]));
    for (const e of edges) if (e.caller !== e.callee) out.get(e.caller).push(e.callee);
    const called = new Set(edges.filter((e) => e.caller !== e.callee).map((e) => e.callee));
    // Depth-first from the roots (then from any service left, for cycles
    // nobody enters): a call to a service on the current path is a back edge.
    const state = new Map();
    const back = new Set();
    const visit = (n) => {
      state.set(n, 'open');
      for (const m of out.get(n)) {
        if (state.get(m) === 'open') back.add(`${n}\u0000${m}`);
        else if (!state.has(m)) visit(m);
      }
      state.set(n, 'done');
    };
    for (const n of names) if (!called.has(n) && !state.has(n)) visit(n);
    for (const n of names) if (!state.has(n)) visit(n);
    const depth = new Map(names.map((n) => [n, 0]));
    for (let round = 0; round < names.length; round++) {
      let changed = false;
      for (const [n, targets] of out) {
        for (const m of targets) {
          if (back.has(`${n}\u0000${m}`)) continue;
          const d = depth.get(n) + 1;
          if (d > depth.get(m)) { depth.set(m, d); changed = true; }
        }
      }
      if (!changed) break;
    }
    const layers = [];
    for (const n of names) (layers[depth.get(n)] ||= []).push(n);
    // Order each layer by the mean position of its callers (fewer crossings).
    for (let d = 1; d < layers.length; d++) {
      const prev = new Map((layers[d - 1] || []).map((n, i) => [n, i]));
      const score = (n) => {
        const ps = edges.filter((e) => e.callee === n && prev.has(e.caller)).map((e) => prev.get(e.caller));
        return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : Infinity;
      };
      (layers[d] || []).sort((a, b) => score(a) - score(b) || a.localeCompare(b));
    }
    const NW = 160, NH = 36, GX = 440, GY = 130, PAD = 30;
    const pos = new Map();
    layers.forEach((layer, d) => (layer || []).forEach((n, i) => pos.set(n, { x: PAD + d * GX, y: PAD + i * GY })));
    const W = PAD * 2 + (layers.length - 1) * GX + NW;
    const H = PAD * 2 + (Math.max(...layers.map((l) => (l ? l.length : 0))) - 1) * GY + NH + 30;
    const svg = el('svg', { class: 'map', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Service map', style: { maxWidth: `${W}px` } },
      el('defs', {}, el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' },
        el('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#6b7280' }))));
    const pairCount = new Map();
    // Calls going right, per callee, from the top caller down.
    const forward = new Map();
    for (const e of edges) {
      if (e.caller === e.callee || pos.get(e.callee).x <= pos.get(e.caller).x) continue;
      if (!forward.has(e.callee)) forward.set(e.callee, []);
      forward.get(e.callee).push(e);
    }
    for (const list of forward.values()) list.sort((p, q) => pos.get(p.caller).y - pos.get(q.caller).y);
    const paths = el('g', { class: 'edges' });
    const labels = el('g', { class: 'edge-labels' });
    svg.append(paths);
    for (const e of edges) {
      const a = pos.get(e.caller), b = pos.get(e.callee);
      const k = `${e.caller}\u0000${e.callee}`;
      const nth = pairCount.get(k) || 0;
      pairCount.set(k, nth + 1);
      let d, lx, ly;
      if (e.caller === e.callee) {
        d = `M${a.x + NW - 20},${a.y} C${a.x + NW + 40},${a.y - 60} ${a.x + NW + 40},${a.y + NH + 20} ${a.x + NW},${a.y + NH - 6}`;
        lx = a.x + NW + 30; ly = a.y - 30;
      } else {
        const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2;
        const back = x2 <= x1;
        const bend = back ? 80 : 0;
        d = back ? `M${a.x + NW / 2},${a.y + NH} C${a.x + NW / 2},${a.y + NH + bend} ${b.x + NW / 2},${b.y + NH + bend} ${b.x + NW / 2},${b.y + NH}`
          : `M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}`;
        if (back) {
          lx = (a.x + b.x + NW) / 2; ly = Math.max(a.y, b.y) + NH + bend * 0.75;
        } else {
          // In the gap before the callee, stacked when several calls arrive.
          const incoming = forward.get(e.callee);
          const k = incoming.indexOf(e);
          lx = b.x - (GX - NW) / 2; ly = y2 + (k - (incoming.length - 1) / 2) * 32;
        }
      }
      if (e.caller === e.callee || pos.get(e.callee).x <= pos.get(e.caller).x) ly += nth * 30;
      const rate = e.calls ? e.errors / e.calls : 0;
      const l1 = `${e.calls} call${e.calls === 1 ? '' : 's'} · ${e.protocol}`;
      const l2 = `${fmtPct(rate)} err · p50 ${fmtNs(e.p50_ns)} · p99 ${fmtNs(e.p99_ns)}`;
      const edgeId = `edge-${paths.childElementCount}`;
      paths.append(el('g', { class: `edge${e.errors ? ' has-errors' : ''}`, id: edgeId, 'data-caller': e.caller, 'data-callee': e.callee, 'data-protocol': e.protocol, 'data-calls': e.calls, 'data-errors': e.errors },
        el('title', {}, `${e.caller} → ${e.callee}: ${l1}, ${l2}`),
        el('path', { d, 'marker-end': 'url(#arrow)' })));
      // Labels above every line.
      labels.append(el('g', { class: 'edge-label', 'data-edge': edgeId },
        el('rect', { x: lx - 118, y: ly - 13, width: 236, height: 28, rx: 3 }),
        el('text', { x: lx, y: ly - 1, 'text-anchor': 'middle', class: 'calls' }, l1),
        el('text', { x: lx, y: ly + 11, 'text-anchor': 'middle' }, l2)));
    }
    svg.append(labels);
    for (const n of names) {
      const p = pos.get(n);
      svg.append(el('g', { class: 'node', 'data-service': n },
        el('rect', { x: p.x, y: p.y, width: NW, height: NH, rx: 6, fill: colourOf(n) }),
        el('text', { x: p.x + NW / 2, y: p.y + NH / 2 + 5, 'text-anchor': 'middle' }, n)));
    }
    return svg;
  }

  function edgeTable(edges) {
    return el('table', { class: 'edges' }, el('thead', {}, el('tr', {}, ['Caller', 'Callee', 'Protocol', 'Calls', 'Errors', 'p50', 'p99'].map((h) => el('th', {}, h)))),
      el('tbody', {}, edges.map((e) => el('tr', { 'data-caller': e.caller, 'data-callee': e.callee },
        el('td', {}, chip(e.caller)), el('td', {}, chip(e.callee)), el('td', {}, e.protocol),
        el('td', { class: 'num' }, e.calls), el('td', { class: 'num' }, `${e.errors} (${fmtPct(e.calls ? e.errors / e.calls : 0)})`),
        el('td', { class: 'num' }, fmtNs(e.p50_ns)), el('td', { class: 'num' }, fmtNs(e.p99_ns))))));
  }

  // For tests and curious people: the palette and the contrast function.
  window.tracewire = { palette: PALETTE, text: TEXT, contrast, firstRender: null };
  // Every stored service gets its colour in name order before the first
  // page draws, so a service has the same colour on every page.
  getJSON('/api/services')
    .then((b) => (b.services || []).forEach(colourOf))
    .catch(() => {})
    .finally(() => {
      window.addEventListener('hashchange', route);
      route();
    });
})();
