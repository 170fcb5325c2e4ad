/* medthink dashboard (docs/dashboard.md). Read-only; no external resources.
 * Every piece of data reaches the page through text nodes (el() below never
 * parses HTML): model replies and dataset text are untrusted. */
'use strict';

const TOKEN = document.querySelector('meta[name="medthink-token"]').content;
const SVGNS = 'http://www.w3.org/2000/svg';
const STEP_ORDER = ['screen', 'explain', 'answer', 'judge', 'correct', 'eval', 'eval_judge'];
const CK_COLORS = ['#8a94a6', '#2f6fd6', '#2e9d5b', '#7b4fc9', '#d08a16', '#c8423b'];

/* Keep the token out of the address bar (and of screenshots and history). */
if (location.search.indexOf('token=') >= 0)
  history.replaceState(null, '', location.pathname + location.hash);

/* ---- DOM helpers: strings become text nodes, never markup ---- */
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const k in attrs || {}) {
    const v = attrs[k];
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'cls') n.className = v;
    else if (k === 'style') n.style.cssText = v; /* CSSOM: the CSP allows no style attribute */
    else n.setAttribute(k, v);
  }
  add(n, kids);
  return n;
}
function add(n, ...kids) {
  for (const c of kids) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) add(n, ...c);
    else if (c instanceof Node) n.appendChild(c);
    else n.appendChild(document.createTextNode(String(c)));
  }
}
function svg(tag, attrs, ...kids) {
  const n = document.createElementNS(SVGNS, tag);
  for (const k in attrs || {}) n.setAttribute(k, attrs[k]);
  for (const c of kids) {
    if (c === undefined || c === null) continue;
    n.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}
function fmtPct(x) { return x === undefined || x === null || isNaN(x) ? '-' : (100 * x).toFixed(1) + '%'; }
function fmtUsd(x) { return x === undefined || x === null ? '-' : '$' + Number(x).toFixed(x < 1 ? 4 : 2); }
function fmtInt(x) { return x === undefined || x === null ? '-' : Number(x).toLocaleString('en-US'); }
function stateTag(s) { return el('span', { cls: 'state ' + (s || '') }, s || '?'); }
function enc(s) { return encodeURIComponent(s); }

/* ---- API ---- */
async function api(path) {
  const r = await fetch(path, { headers: { Authorization: 'Bearer ' + TOKEN }, cache: 'no-store' });
  if (!r.ok) {
    const e = new Error(path + ': HTTP ' + r.status);
    e.status = r.status;
    throw e;
  }
  return r.json();
}

/* ---- the views: one at a time; a view's timers and streams end with it ---- */
let current = { stop() {} };
const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
const conn = document.getElementById('conn');

function setCrumbs(list) {
  crumbs.textContent = '';
  add(crumbs, list.map(([t, h]) => el('a', { href: h }, t)));
}

function route() {
  current.stop();
  main.textContent = '';
  document.body.removeAttribute('data-view');
  const h = location.hash.replace(/^#\/?/, '');
  const parts = h.split('?')[0].split('/').map(decodeURIComponent);
  const q = new URLSearchParams(h.split('?')[1] || '');
  if (parts[0] === 'job' && parts[1] && parts[2] === 'items') current = viewItems(parts[1], q.get('q') || '');
  else if (parts[0] === 'job' && parts[1] && parts[2] === 'item' && parts[3]) current = viewStory(parts[1], parts[3]);
  else if (parts[0] === 'job' && parts[1]) current = viewJob(parts[1]);
  else current = viewJobs();
}
window.addEventListener('hashchange', route);

function fail(where, e) {
  where.textContent = '';
  add(where, el('p', { cls: 'err' }, String(e.message || e)));
}

/* ---- jobs list ---- */
function jobProgress(st) {
  let tot = 0, fin = 0;
  for (const s in st.counts || {}) {
    const c = st.counts[s];
    const t = (c.pending || 0) + (c.in_flight || 0) + (c.done || 0) + (c.failed || 0) + (c.dropped || 0);
    tot += t;
    fin += (c.done || 0) + (c.failed || 0) + (c.dropped || 0);
  }
  return tot ? fin / tot : (st.state === 'done' ? 1 : 0);
}

function viewJobs() {
  setCrumbs([['jobs', '#/']]);
  const box = el('div', { id: 'view-jobs' }, el('h1', {}, 'Jobs'));
  const tbl = el('table', { id: 'jobs-table' });
  box.appendChild(el('div', { cls: 'card' }, tbl));
  main.appendChild(box);
  let timer = null, stopped = false;
  async function load() {
    try {
      const d = await api('/v1/jobs');
      tbl.textContent = '';
      tbl.appendChild(el('tr', {}, ['job', 'name', 'kind', 'state', 'phase', 'progress', 'cost', 'created'].map(
        (t, i) => el('th', { cls: i === 5 || i === 6 ? 'num' : '' }, t))));
      for (const j of d.jobs || []) {
        tbl.appendChild(el('tr', { cls: 'click', 'data-job': j.id, onclick: () => { location.hash = '#/job/' + enc(j.id); } },
          el('td', {}, el('a', { href: '#/job/' + enc(j.id) }, j.id)), el('td', {}, j.name), el('td', {}, j.kind),
          el('td', {}, stateTag(j.state)), el('td', {}, j.phase || ''), el('td', { cls: 'num' }, fmtPct(jobProgress(j))),
          el('td', { cls: 'num' }, fmtUsd(j.cost_usd)), el('td', { cls: 'muted' }, (j.created_at || '').replace('T', ' ').slice(0, 19))));
      }
      if (!(d.jobs || []).length) tbl.appendChild(el('tr', {}, el('td', { cls: 'muted' }, 'no jobs yet')));
      document.body.setAttribute('data-view', 'jobs');
    } catch (e) { fail(tbl, e); }
    if (!stopped) timer = setTimeout(load, 3000);
  }
  load();
  return { stop() { stopped = true; clearTimeout(timer); } };
}

/* ---- one job ---- */
function viewJob(id) {
  setCrumbs([['jobs', '#/'], [id, '#/job/' + enc(id)], ['items', '#/job/' + enc(id) + '/items']]);
  const head = el('div', { id: 'job-head' });
  const progress = el('div', { cls: 'card', id: 'job-progress' }, el('h2', {}, 'Progress per step'));
  const rate = el('div', { cls: 'card', id: 'job-rate' }, el('h2', {}, 'Calls and tokens over time'));
  const spend = el('div', { cls: 'card', id: 'job-spend' }, el('h2', {}, 'Spend against budget'));
  const funnel = el('div', { cls: 'card', id: 'job-funnel' }, el('h2', {}, 'Funnel'));
  const reasons = el('div', { cls: 'card', id: 'job-reasons' }, el('h2', {}, 'Failures and drops by reason'));
  const evalc = el('div', { cls: 'card wide', id: 'job-eval' }, el('h2', {}, 'Evaluation'));
  const log = el('div', { cls: 'card wide' }, el('h2', {}, 'Events'));
  const logBox = el('div', { cls: 'events', id: 'job-events' });
  log.appendChild(logBox);
  main.appendChild(el('div', { id: 'view-job', 'data-job': id }, head,
    el('div', { cls: 'grid' }, progress, spend, rate, funnel, reasons, evalc, log)));

  const parts = { progress: el('div'), spend: el('div'), rate: el('div'), funnel: el('div'), reasons: el('div'), evalc: el('div') };
  progress.appendChild(parts.progress); spend.appendChild(parts.spend); rate.appendChild(parts.rate);
  funnel.appendChild(parts.funnel); reasons.appendChild(parts.reasons); evalc.appendChild(parts.evalc);

  const live = [];           /* samples from progress events: {t, calls, tin, tout} */
  let status = null, es = null, stopped = false, timer = null, timelineOk = null, updates = 0;

  function render(st) {
    status = st;
    updates++;
    head.textContent = '';
    add(head, el('h1', {}, (st.name || st.id) + ' ', el('span', { cls: 'muted' }, '(' + st.id + ', ' + st.kind + ')'), ' ', stateTag(st.state)),
      el('p', { cls: 'muted' }, 'phase ', el('b', { id: 'job-phase' }, st.phase || '-'),
        st.reason ? ' - ' + st.reason : '', ' - dataset ' + (st.dataset || '?'),
        st.rate_per_s !== undefined ? ' - ' + Number(st.rate_per_s).toFixed(1) + ' tasks/s' : ''));
    renderProgress(parts.progress, st);
    renderSpend(parts.spend, st);
    renderFunnel(parts.funnel, st);
    renderEval(parts.evalc, st);
    const c = st.calls || {}, tk = st.tokens || {};
    const t = Date.now() / 1000;
    if (!live.length || live[live.length - 1].calls !== c.total || t - live[live.length - 1].t > 5)
      live.push({ t, calls: c.total || 0, tin: tk.in || 0, tout: tk.out || 0 });
    if (live.length > 600) live.shift();
    if (timelineOk === false) renderLiveRate(parts.rate, live);
    document.body.setAttribute('data-view', 'job');
    document.body.setAttribute('data-updates', String(updates));
  }

  function logEvent(type, d) {
    const at = (d && d.at ? d.at.replace('T', ' ').slice(11, 19) : '');
    let text = d.message || (d.state ? 'state ' + d.state + (d.reason ? ': ' + d.reason : '') : JSON.stringify(d));
    logBox.insertBefore(el('div', {}, el('span', { cls: 'muted' }, at + ' ' + type + ': '), text), logBox.firstChild);
    while (logBox.childNodes.length > 200) logBox.removeChild(logBox.lastChild);
  }

  async function refresh() {
    try { render(await api('/v1/jobs/' + enc(id))); } catch (e) { fail(head, e); }
    try { renderReasons(parts.reasons, await api('/v1/jobs/' + enc(id) + '/reasons')); } catch (e) { fail(parts.reasons, e); }
    try {
      const tl = await api('/v1/jobs/' + enc(id) + '/timeline?bucket=' + timelineBucket(status));
      timelineOk = true;
      renderTimeline(parts.rate, tl);
    } catch (e) {
      /* an older daemon has no timeline route: the chart is drawn from the live progress instead */
      timelineOk = false;
      renderLiveRate(parts.rate, live);
    }
  }

  function stream() {
    es = new EventSource('/v1/jobs/' + enc(id) + '/events?token=' + enc(TOKEN));
    es.addEventListener('progress', (m) => { try { render(JSON.parse(m.data)); } catch (e) { /* skip a bad frame */ } });
    for (const t of ['submit', 'state', 'phase', 'eval', 'message', 'warning', 'error', 'budget', 'train']) {
      es.addEventListener(t, (m) => {
        let d = {};
        try { d = JSON.parse(m.data); } catch (e) { d = { message: m.data }; }
        logEvent(t, d);
        if (t === 'state' || t === 'phase' || t === 'eval') refresh();
      });
    }
    es.addEventListener('end', () => { es.close(); conn.textContent = 'job finished'; refresh(); });
    es.onopen = () => { conn.textContent = 'live'; };
    es.onerror = () => { conn.textContent = 'reconnecting...'; };
  }

  refresh().then(() => { if (!stopped) stream(); });
  /* the reasons and the timeline have no events of their own */
  timer = setInterval(() => { if (status && status.state === 'running') refresh(); }, 5000);
  return { stop() { stopped = true; clearInterval(timer); if (es) es.close(); conn.textContent = ''; } };
}

function stepTotal(c) { return (c.pending || 0) + (c.in_flight || 0) + (c.done || 0) + (c.failed || 0) + (c.dropped || 0); }

function renderProgress(box, st) {
  box.textContent = '';
  const steps = Object.keys(st.counts || {}).sort((a, b) => STEP_ORDER.indexOf(a) - STEP_ORDER.indexOf(b));
  if (!steps.length) { box.appendChild(el('p', { cls: 'muted' }, 'no tasks yet')); return; }
  for (const s of steps) {
    const c = st.counts[s], tot = stepTotal(c) || 1;
    const bar = el('div', { cls: 'bar' });
    let x = 0;
    for (const k of ['done', 'dropped', 'failed', 'in_flight']) {
      const w = 100 * (c[k] || 0) / tot;
      if (w > 0) bar.appendChild(el('span', { cls: k, style: 'left:' + x + '%;width:' + w + '%' }));
      x += w;
    }
    const fin = (c.done || 0) + (c.dropped || 0) + (c.failed || 0);
    box.appendChild(el('div', { cls: 'steprow', 'data-step': s, 'data-finished': fin, 'data-total': stepTotal(c) },
      el('b', {}, s), bar, el('span', { cls: 'muted' }, fin + ' / ' + stepTotal(c) +
        (c.dropped ? ', ' + c.dropped + ' dropped' : '') + (c.failed ? ', ' + c.failed + ' failed' : ''))));
  }
  box.appendChild(el('div', { cls: 'legend' }, ['done', 'dropped', 'failed', 'in_flight'].map((k) =>
    el('span', {}, el('i', { cls: 'bar-' + k, style: 'background:' + { done: '#2e9d5b', dropped: '#d08a16', failed: '#c8423b', in_flight: '#2f6fd6' }[k] }), k.replace('_', ' ')))));
}

function renderSpend(box, st) {
  box.textContent = '';
  const spent = st.cost_usd || 0, budget = st.spec && st.spec.budget_usd;
  const frac = jobProgress(st);
  const proj = frac > 0 && st.state !== 'done' ? spent / frac : spent;
  const max = Math.max(spent, proj, budget || 0) * 1.1 || 1;
  const W = 460, H = 70, x = (v) => 10 + (W - 20) * v / max;
  const g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, id: 'spend-chart', role: 'img' });
  g.appendChild(svg('rect', { x: 10, y: 18, width: W - 20, height: 18, fill: '#edf0f5' }));
  g.appendChild(svg('rect', { x: 10, y: 18, width: Math.max(0, x(proj) - 10), height: 18, fill: '#2f6fd6', opacity: 0.25 }));
  g.appendChild(svg('rect', { x: 10, y: 18, width: Math.max(0, x(spent) - 10), height: 18, fill: '#2f6fd6' }));
  if (budget) {
    g.appendChild(svg('line', { x1: x(budget), x2: x(budget), y1: 10, y2: 44, stroke: '#c8423b', 'stroke-width': 2 }));
    g.appendChild(svg('text', { x: Math.min(x(budget), W - 80), y: 56 }, 'budget ' + fmtUsd(budget)));
  }
  g.appendChild(svg('text', { x: 10, y: 12 }, 'spent ' + fmtUsd(spent)));
  box.appendChild(g);
  box.appendChild(el('dl', { cls: 'kv' },
    el('dt', {}, 'spent'), el('dd', { id: 'spend-spent' }, fmtUsd(spent)),
    el('dt', {}, 'budget'), el('dd', {}, budget ? fmtUsd(budget) : 'none'),
    el('dt', {}, 'projected at the end'), el('dd', { id: 'spend-projected' }, fmtUsd(proj) +
      (budget && proj > budget ? ' (over budget: the job pauses at the budget)' : '')),
    el('dt', {}, 'tasks finished'), el('dd', {}, fmtPct(frac)),
    el('dt', {}, 'tokens'), el('dd', {}, fmtInt((st.tokens || {}).in) + ' in, ' + fmtInt((st.tokens || {}).out) + ' out'),
    el('dt', {}, 'calls'), el('dd', {}, fmtInt((st.calls || {}).total) + ' (' + fmtInt((st.calls || {}).cached) + ' cached)')));
  box.appendChild(el('p', { cls: 'note' }, 'Projection: spend so far divided by the share of tasks finished (all steps, drops and failures included).'));
}

function renderFunnel(box, st) {
  box.textContent = '';
  const c = st.counts || {}, z = {};
  const g = (s) => c[s] || z;
  const rows = [];
  if (c.screen) rows.push(['screened', (g('screen').done || 0) + (g('screen').dropped || 0)], ['kept', g('screen').done || 0]);
  if (c.explain) rows.push(['explained', g('explain').done || 0]);
  if (c.answer) rows.push(['answered', g('answer').done || 0]);
  if (c.correct) rows.push(['wrong', stepTotal(g('correct'))], ['corrected', g('correct').done || 0]);
  if (!rows.length) { box.appendChild(el('p', { cls: 'muted' }, 'this kind of job has no funnel')); return; }
  const max = Math.max(...rows.map((r) => r[1]), 1);
  const W = 460, RH = 26, H = rows.length * RH + 6;
  const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, id: 'funnel-chart', role: 'img' });
  rows.forEach(([name, n], i) => {
    const w = (W - 190) * n / max;
    const colour = i < 3 ? '#2e9d5b' : (name === 'wrong' ? '#c8423b' : '#7b4fc9');
    s.appendChild(svg('text', { x: 4, y: i * RH + 18 }, name));
    s.appendChild(svg('rect', { x: 90 + (W - 190 - w) / 2, y: i * RH + 4, width: Math.max(w, 1), height: RH - 6, fill: colour, rx: 2 }));
    s.appendChild(svg('text', { x: W - 90, y: i * RH + 18, 'data-funnel': name }, fmtInt(n)));
  });
  box.appendChild(s);
  box.appendChild(el('p', { cls: 'note' }, 'screened -> kept -> explained (stage one); answered -> wrong -> corrected (stage two).'));
}

function renderReasons(box, d) {
  box.textContent = '';
  const rs = d.reasons || [];
  if (!rs.length) { box.appendChild(el('p', { cls: 'muted' }, 'no failed or dropped task')); return; }
  const t = el('table', { id: 'reasons-table' }, el('tr', {}, el('th', {}, 'step'), el('th', {}, 'state'), el('th', {}, 'reason'), el('th', { cls: 'num' }, 'tasks')));
  for (const r of rs)
    t.appendChild(el('tr', {}, el('td', {}, r.step), el('td', {}, stateTag(r.state)), el('td', {}, r.reason === null ? '(none given)' : r.reason), el('td', { cls: 'num' }, fmtInt(r.count))));
  box.appendChild(t);
}

function timelineBucket(st) {
  const t0 = st && Date.parse(st.created_at), t1 = st && Date.parse(st.updated_at);
  const span = t0 && t1 ? (Math.max(t1, Date.now() * (st.state === 'running' ? 1 : 0)) - t0) / 1000 : 600;
  return Math.max(1, Math.round(span / 60));
}

/* A line chart: series [{name, colour, points:[[x,y]]}], x in seconds. */
function lineChart(id, series, yLabel) {
  const W = 460, H = 170, L = 48, R = 8, T = 10, B = 24;
  const xs = [], ys = [];
  for (const s of series) for (const p of s.points) { xs.push(p[0]); ys.push(p[1]); }
  const g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, id, role: 'img' });
  if (xs.length < 1) { g.appendChild(svg('text', { x: L, y: H / 2 }, 'no data yet')); return g; }
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y1 = Math.max(...ys, 1e-9) * 1.1;
  const px = (x) => L + (W - L - R) * (x - x0) / (x1 - x0), py = (y) => H - B - (H - T - B) * y / y1;
  g.appendChild(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  g.appendChild(svg('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }));
  g.appendChild(svg('text', { x: 2, y: T + 8 }, y1 >= 100 ? Math.round(y1) : y1.toPrecision(2)));
  g.appendChild(svg('text', { x: 2, y: H - B }, '0'));
  g.appendChild(svg('text', { x: L, y: H - 6 }, '0 s'));
  g.appendChild(svg('text', { x: W - R - 60, y: H - 6 }, Math.round(x1 - x0) + ' s'));
  g.appendChild(svg('text', { x: L + 6, y: T + 8 }, yLabel));
  series.forEach((s, i) => {
    const d = s.points.map((p, k) => (k ? 'L' : 'M') + px(p[0]).toFixed(1) + ' ' + py(p[1]).toFixed(1)).join(' ');
    g.appendChild(svg('path', { d, fill: 'none', stroke: s.colour, 'stroke-width': 1.8 }));
    g.appendChild(svg('text', { x: W - R - 140, y: T + 10 + 12 * i, fill: s.colour }, s.name));
  });
  return g;
}

function renderTimeline(box, tl) {
  box.textContent = '';
  const b = tl.bucket_s || 1, pts = tl.points || [];
  const t0 = pts.length ? pts[0].t : 0;
  box.appendChild(lineChart('rate-chart', [{ name: 'calls/s', colour: '#2f6fd6', points: pts.map((p) => [p.t - t0, p.calls / b]) }], 'calls per second'));
  box.appendChild(lineChart('tokens-chart', [
    { name: 'tokens in/s', colour: '#2e9d5b', points: pts.map((p) => [p.t - t0, p.tokens_in / b]) },
    { name: 'tokens out/s', colour: '#7b4fc9', points: pts.map((p) => [p.t - t0, p.tokens_out / b]) }], 'tokens per second'));
  box.appendChild(el('p', { cls: 'note' }, 'From the stored calls, in buckets of ' + b + ' s.'));
}

function renderLiveRate(box, live) {
  box.textContent = '';
  const pts = [], tin = [], tout = [];
  for (let i = 1; i < live.length; i++) {
    const a = live[i - 1], c = live[i], dt = Math.max(c.t - a.t, 0.001);
    pts.push([c.t - live[0].t, (c.calls - a.calls) / dt]);
    tin.push([c.t - live[0].t, (c.tin - a.tin) / dt]);
    tout.push([c.t - live[0].t, (c.tout - a.tout) / dt]);
  }
  box.appendChild(lineChart('rate-chart', [{ name: 'calls/s', colour: '#2f6fd6', points: pts }], 'calls per second'));
  box.appendChild(lineChart('tokens-chart', [{ name: 'tokens in/s', colour: '#2e9d5b', points: tin },
    { name: 'tokens out/s', colour: '#7b4fc9', points: tout }], 'tokens per second'));
  box.appendChild(el('p', { cls: 'note', id: 'rate-live-note' }, 'Live, since this page opened (this daemon has no timeline route).'));
}

/* ---- evaluation ---- */
function wilson(k, n) {
  if (!n) return null;
  const z = 1.959964, p = k / n, d = 1 + z * z / n;
  const c = (p + z * z / (2 * n)) / d, h = z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
  return [Math.max(0, c - h), Math.min(1, c + h)];
}

/* The checkpoints: status.eval.checkpoints, or the one final evaluation
 * older daemons report as status.eval. */
function checkpoints(st) {
  const ev = st.eval;
  if (!ev) return [];
  if (Array.isArray(ev.checkpoints)) return ev.checkpoints;
  if (ev.total !== undefined) return [Object.assign({ name: 'final' }, ev)];
  return [];
}

function renderEval(box, st) {
  box.textContent = '';
  const cks = checkpoints(st);
  if (!cks.length) { box.appendChild(el('p', { cls: 'muted', id: 'eval-none' }, 'no evaluation yet')); return; }
  const base = cks.find((c) => c.name === 'baseline');
  const t = el('table', { id: 'eval-table' }, el('tr', {}, ['checkpoint', 'items', 'correct', 'accuracy', '95% interval', 'vs baseline', 'ungraded', 'judged'].map(
    (h, i) => el('th', { cls: i ? 'num' : '' }, h))));
  for (const c of cks) {
    const ci = c.ci95 || wilson(c.correct, c.total);
    const delta = base && c !== base ? c.accuracy - base.accuracy : null;
    t.appendChild(el('tr', { 'data-checkpoint': c.name }, el('td', {}, c.name), el('td', { cls: 'num' }, fmtInt(c.total)),
      el('td', { cls: 'num' }, fmtInt(c.correct)), el('td', { cls: 'num' }, fmtPct(c.accuracy)),
      el('td', { cls: 'num' }, ci ? fmtPct(ci[0]) + ' - ' + fmtPct(ci[1]) : '-'),
      el('td', { cls: 'num' }, delta === null ? '' : (delta >= 0 ? '+' : '') + (100 * delta).toFixed(1) + ' pt' +
        (c.delta_ci95 ? ' [' + (100 * c.delta_ci95[0]).toFixed(1) + ', ' + (100 * c.delta_ci95[1]).toFixed(1) + ']' : '')),
      el('td', { cls: 'num' }, fmtInt(c.ungraded)), el('td', { cls: 'num' }, fmtInt(c.judged))));
  }
  box.appendChild(t);
  if (!cks.some((c) => c.ci95)) box.appendChild(el('p', { cls: 'note' }, 'Intervals: Wilson score, computed here from the counts.'));
  box.appendChild(evalChart(cks));
  box.appendChild(el('p', { cls: 'note' }, 'Accuracy per topic and overall, one bar per checkpoint; whiskers are the 95% intervals.'));
}

function evalChart(cks) {
  const topics = ['overall'];
  for (const c of cks) for (const k in c.by_topic || {}) if (topics.indexOf(k) < 0) topics.push(k);
  const W = Math.max(900, topics.length * (cks.length * 16 + 24) + 60), H = 220, L = 40, B = 44, T = 14;
  const gw = (W - L - 10) / topics.length, bw = Math.min(22, (gw - 10) / cks.length);
  const py = (v) => H - B - (H - T - B) * v;
  const g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, id: 'eval-chart', role: 'img' });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    g.appendChild(svg('line', { x1: L, x2: W - 10, y1: py(v), y2: py(v), class: 'axis', opacity: v ? 0.35 : 1 }));
    g.appendChild(svg('text', { x: 4, y: py(v) + 4 }, (100 * v) + '%'));
  }
  topics.forEach((tp, i) => {
    const gx = L + i * gw + (gw - bw * cks.length) / 2;
    cks.forEach((c, j) => {
      const d = tp === 'overall' ? c : (c.by_topic || {})[tp];
      if (!d) return;
      const acc = d.accuracy !== undefined ? d.accuracy : (d.total ? d.correct / d.total : 0);
      const x = gx + j * bw;
      g.appendChild(svg('rect', { x, y: py(acc), width: bw - 2, height: Math.max(0.5, py(0) - py(acc)), fill: CK_COLORS[j % CK_COLORS.length], 'data-bar': c.name + '/' + tp },
        svg('title', {}, c.name + ', ' + tp + ': ' + fmtPct(acc) + ' (' + d.correct + ' of ' + d.total + ')')));
      const ci = d.ci95 || wilson(d.correct, d.total);
      if (ci) {
        const cx = x + (bw - 2) / 2;
        g.appendChild(svg('line', { x1: cx, x2: cx, y1: py(ci[0]), y2: py(ci[1]), stroke: '#333', 'stroke-width': 1 }));
      }
    });
    g.appendChild(svg('text', { x: L + i * gw + gw / 2, y: H - B + 14, 'text-anchor': 'middle' }, tp.length > 14 ? tp.slice(0, 13) + '.' : tp));
  });
  cks.forEach((c, j) => {
    g.appendChild(svg('rect', { x: L + j * 110, y: H - 16, width: 10, height: 10, fill: CK_COLORS[j % CK_COLORS.length] }));
    g.appendChild(svg('text', { x: L + j * 110 + 14, y: H - 7 }, c.name));
  });
  return g;
}

/* ---- item browser ---- */
function viewItems(id, q0) {
  setCrumbs([['jobs', '#/'], [id, '#/job/' + enc(id)], ['items', '#/job/' + enc(id) + '/items']]);
  const input = el('input', { type: 'search', id: 'item-q', placeholder: 'item id or text', value: q0 });
  const list = el('table', { id: 'items-table' });
  const more = el('button', { id: 'items-more' }, 'more');
  let next = 0, q = q0, stopped = false;
  const form = el('form', { onsubmit: (e) => { e.preventDefault(); location.hash = '#/job/' + enc(id) + '/items?q=' + enc(input.value); } },
    input, ' ', el('button', {}, 'Search'));
  main.appendChild(el('div', { id: 'view-items' }, el('h1', {}, 'Items of ' + id), el('div', { cls: 'card' }, form, list, more)));
  async function load(reset) {
    try {
      const d = await api('/v1/jobs/' + enc(id) + '/items?limit=50&q=' + enc(q) + '&from=' + (reset ? 0 : next));
      if (stopped) return;
      if (reset) {
        list.textContent = '';
        list.appendChild(el('tr', {}, el('th', {}, 'id'), el('th', {}, 'topic'), el('th', {}, 'question'), el('th', {}, 'steps')));
      }
      for (const it of d.items || []) {
        const href = '#/job/' + enc(id) + '/item/' + enc(it.id);
        list.appendChild(el('tr', { cls: 'click', 'data-item': it.id, onclick: () => { location.hash = href; } },
          el('td', {}, el('a', { href }, it.id)), el('td', {}, it.topic || ''), el('td', {}, it.question),
          el('td', { cls: 'muted' }, Object.keys(it.tasks || {}).map((s) => s + ' ' + it.tasks[s]).join(', '))));
      }
      next = d.next;
      more.style.display = next === null || next === undefined ? 'none' : '';
      document.body.setAttribute('data-view', 'items');
    } catch (e) { fail(list, e); }
  }
  more.addEventListener('click', () => load(false));
  load(true);
  return { stop() { stopped = true; } };
}

/* ---- one item's story ---- */
function replyText(call) {
  const r = call && call.reply;
  if (r && typeof r === 'object' && r.choices && r.choices[0]) {
    const ch = r.choices[0];
    if (ch.message && typeof ch.message.content === 'string') return ch.message.content;
    if (typeof ch.text === 'string') return ch.text;
  }
  return r === null || r === undefined ? '' : (typeof r === 'string' ? r : JSON.stringify(r, null, 2));
}

function promptText(call) {
  const rq = call && call.request;
  if (rq && Array.isArray(rq.messages))
    return rq.messages.map((m) => '[' + m.role + ']\n' + (typeof m.content === 'string' ? m.content :
      (m.content || []).map((p) => p.text || '(' + p.type + ')').join('\n'))).join('\n\n');
  if (rq && typeof rq.prompt === 'string') return rq.prompt;
  return JSON.stringify(rq, null, 2);
}

function kv(obj) {
  const dl = el('dl', { cls: 'kv' });
  for (const k in obj) {
    const v = obj[k];
    dl.appendChild(el('dt', {}, k));
    dl.appendChild(el('dd', { 'data-key': k }, v !== null && typeof v === 'object' ? JSON.stringify(v, null, 2) : String(v)));
  }
  return dl;
}

function viewStory(id, item) {
  setCrumbs([['jobs', '#/'], [id, '#/job/' + enc(id)], ['items', '#/job/' + enc(id) + '/items'], [item, location.hash]]);
  const box = el('div', { id: 'story' });
  main.appendChild(el('div', { id: 'view-story' }, box));
  let stopped = false;
  api('/v1/jobs/' + enc(id) + '/items/' + enc(item)).then((s) => {
    if (stopped) return;
    const it = s.item || {};
    add(box, el('h1', {}, 'Item ' + (it.id || item) + ' ', el('span', { cls: 'muted' }, '(seq ' + s.seq + ' of ' + s.job + ')')));
    const opts = el('dl', { cls: 'kv' });
    for (const k in it.options || {}) { opts.appendChild(el('dt', {}, k)); opts.appendChild(el('dd', {}, it.options[k])); }
    add(box, el('div', { cls: 'card' }, el('h2', {}, 'Question'), el('p', { id: 'story-question' }, it.question || ''), opts,
      el('p', {}, 'gold: ', el('b', {}, it.answer || '?'), it.topic ? ' - topic ' + it.topic : ''),
      it.explanation ? el('details', {}, el('summary', {}, 'the dataset\'s explanation'), el('pre', {}, it.explanation)) : null));
    for (const st of s.steps || []) {
      const c = st.call;
      const task = st.task || {};
      const art = st.artifact;
      const artView = art && typeof art === 'object' ? kv(art) : el('pre', {}, art === null || art === undefined ? '(none yet)' : String(art));
      add(box, el('div', { cls: 'card step', 'data-step': st.step },
        el('h2', {}, st.step + ' ', el('span', { cls: 'muted' }, '(' + st.phase + ') '), stateTag(task.state),
          task.attempts ? ' ' + task.attempts + ' attempt(s)' : '', task.reason ? ' - ' + task.reason : ''),
        el('div', {}, el('b', {}, st.artifact_kind), artView),
        c ? el('div', { cls: 'call' },
          el('p', { cls: 'muted' }, 'call ' + c.id + ': ' + c.endpoint + ' ' + c.model + ', ' + fmtInt(c.tokens_in) + ' in + ' +
            fmtInt(c.tokens_out) + ' out tokens, ' + fmtUsd(c.cost_usd) + ', ' + (c.latency_ms === null ? '-' : Math.round(c.latency_ms) + ' ms') +
            ', ' + c.attempts + ' attempt(s), HTTP ' + c.status + (c.error ? ', error: ' + c.error : '')),
          el('details', {}, el('summary', {}, 'prompt'), el('pre', { cls: 'prompt' }, promptText(c))),
          el('details', { open: 'open' }, el('summary', {}, 'reply'), el('pre', { cls: 'reply' }, replyText(c)))) :
          el('p', { cls: 'muted' }, 'no call (answered from the cache, or not made yet)')));
    }
    document.body.setAttribute('data-view', 'story');
  }).catch((e) => fail(box, e));
  return { stop() { stopped = true; } };
}

route();
