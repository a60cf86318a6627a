// SPDX-License-Identifier: Apache-2.0
// The trace list (TraceSummaries: recent, slowest, faults, errors, one service's) and a
// trace's timeline (Traces: each Segments[].Document parsed, subsegments nested under
// their segment, each segment under the call that made it).

import { $, state, h, setAttrs, num, str, fmtMs, post, timeRange, showError } from './core.js';

const SUMMARY_PAGES_MAX = 10; // 100 summaries a page
const TRACE_ROWS_MAX = 100;
const TIMELINE_ROWS_MAX = 2000;
const DOC_DEPTH_MAX = 64; // nested subsegments followed at most this deep

// ---- the trace list ----

function quote(v) {
  return '"' + v.replace(/[\\"]/g, '\\$&') + '"';
}

function summaryStatus(t) {
  if (t.HasFault) return 'fault';
  if (t.HasThrottle) return 'throttle';
  if (t.HasError) return 'error';
  return 'ok';
}

const STATUS_WORD = { ok: 'OK', error: 'Error', throttle: 'Throttle', fault: 'Fault' };

export async function loadTraces() {
  const seq = ++state.traceSeq;
  const { start, end } = timeRange();
  let expr = state.tab === 'faults' ? 'fault' : state.tab === 'errors' ? '(error or throttle)' : '';
  if (state.service !== null) {
    const svc = 'service(' + quote(state.service) + ')';
    expr = expr ? svc + ' and ' + expr : svc;
  }
  const all = [];
  let token;
  let pages = 0;
  do {
    const body = { StartTime: start, EndTime: end };
    if (expr) body.FilterExpression = expr;
    if (token) body.NextToken = token;
    const r = await post('/TraceSummaries', body);
    if (Array.isArray(r.TraceSummaries)) for (const t of r.TraceSummaries) if (t && typeof t === 'object') all.push(t);
    token = typeof r.NextToken === 'string' && r.NextToken !== '' ? r.NextToken : undefined;
  } while (token && ++pages < SUMMARY_PAGES_MAX && seq === state.traceSeq);
  if (seq !== state.traceSeq) return; // a newer request (another tab) answers instead
  const rt = (t) => (t.ResponseTime !== undefined ? num(t.ResponseTime) : num(t.Duration));
  if (state.tab === 'slowest') all.sort((a, b) => rt(b) - rt(a));
  else all.sort((a, b) => num(b.StartTime) - num(a.StartTime));
  renderTraces(all.slice(0, TRACE_ROWS_MAX), all.length);
}

function renderTraces(list, found) {
  const rows = list.map((t) => {
    const id = str(t.Id);
    const status = summaryStatus(t);
    const http = t.Http && typeof t.Http === 'object' ? t.Http : {};
    const names = (Array.isArray(t.ServiceIds) ? t.ServiceIds : []).map((v) => str(v && v.Name)).filter(Boolean);
    const url = str(http.HttpURL);
    return h(
      'tr',
      { 'data-trace-id': id, 'data-status': status, tabindex: 0, class: id === state.trace ? 'selected' : null },
      h('td', null, h('span', { class: 'badge ' + status }, STATUS_WORD[status])),
      h('td', { class: 'id' }, id),
      h('td', null, t.StartTime ? new Date(num(t.StartTime) * 1000).toLocaleTimeString() : ''),
      h('td', { class: 'num' }, t.ResponseTime !== undefined ? fmtMs(num(t.ResponseTime)) : '—'),
      h('td', { class: 'num' }, fmtMs(num(t.Duration))),
      h('td', null, str(http.HttpMethod)),
      h('td', { class: 'num' }, http.HttpStatus !== undefined ? str(http.HttpStatus) : ''),
      h('td', { class: 'url', title: url }, url),
      h('td', { class: 'svcs', title: names.join(', ') }, names.join(', '))
    );
  });
  if (!rows.length) rows.push(h('tr', { class: 'none' }, h('td', { colspan: 9, class: 'sub' }, 'No traces in this range.')));
  $('trace-rows').replaceChildren(...rows);
  $('trace-count').textContent = found > list.length ? list.length + ' of ' + found + ' traces' : found + ' traces';
  setAttrs($('trace-table'), { 'data-state': 'ready', 'data-rows': list.length, 'data-tab': state.tab });
  const f = $('trace-filter');
  f.hidden = state.service === null;
  $('trace-filter-text').textContent = state.service === null ? '' : 'service: ' + state.service;
}

export function setTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll('.tab')) b.setAttribute('aria-selected', String(b.getAttribute('data-tab') === tab));
  $('trace-table').setAttribute('data-state', 'loading');
  loadTraces().catch(showError);
}

// ---- the trace timeline ----

function causeText(cause) {
  if (!cause || typeof cause !== 'object') return '';
  const ex = Array.isArray(cause.exceptions) ? cause.exceptions[0] : null;
  if (!ex || typeof ex !== 'object') return '';
  return [str(ex.type), str(ex.message)].filter(Boolean).join(': ');
}

function docStatus(it) {
  if (it.fault) return 'fault';
  if (it.throttle) return 'throttle';
  if (it.error) return 'error';
  return 'ok';
}

// Segments[].Document strings -> rows in call order: each document with its nested
// subsegments, and each segment under the subsegment that called it (its parent_id).
function timelineRows(segments) {
  const byId = new Map();
  const tops = [];
  let count = 0;
  const item = (doc, depth, kind) => {
    if (!doc || typeof doc !== 'object' || count >= TIMELINE_ROWS_MAX) return null;
    count++;
    const http = doc.http && typeof doc.http === 'object' ? doc.http : {};
    const resp = http.response && typeof http.response === 'object' ? http.response : {};
    const it = {
      id: str(doc.id),
      name: str(doc.name),
      kind,
      ns: str(doc.namespace) || str(doc.origin),
      start: num(doc.start_time),
      end: num(doc.end_time),
      pending: doc.in_progress === true || !num(doc.end_time),
      fault: doc.fault === true,
      error: doc.error === true,
      throttle: doc.throttle === true,
      http: resp.status !== undefined ? str(resp.status) : '',
      cause: causeText(doc.cause),
      parent: str(doc.parent_id),
      kids: [],
    };
    if (it.id && !byId.has(it.id)) byId.set(it.id, it);
    if (depth < DOC_DEPTH_MAX && Array.isArray(doc.subsegments)) {
      for (const sub of doc.subsegments) {
        const k = item(sub, depth + 1, 'subsegment');
        if (k) {
          k.nested = true;
          it.kids.push(k);
        }
      }
    }
    return it;
  };
  for (const seg of Array.isArray(segments) ? segments : []) {
    let doc;
    try {
      doc = JSON.parse(str(seg && seg.Document));
    } catch (e) {
      continue;
    }
    const it = item(doc, 0, doc && doc.type === 'subsegment' ? 'subsegment' : 'segment');
    if (it) tops.push(it);
  }
  const roots = [];
  for (const it of tops) {
    const p = it.parent ? byId.get(it.parent) : null;
    if (p && p !== it) p.kids.push(it);
    else roots.push(it);
  }
  const rows = [];
  const seen = new Set();
  const walk = (it, depth) => {
    if (seen.has(it) || rows.length >= TIMELINE_ROWS_MAX) return;
    seen.add(it);
    rows.push({ it, depth });
    it.kids.sort((a, b) => a.start - b.start);
    for (const k of it.kids) walk(k, depth + 1);
  };
  roots.sort((a, b) => a.start - b.start);
  for (const r of roots) walk(r, 0);
  for (const it of tops) walk(it, 0); // parents that loop back to their children
  return rows;
}

export async function loadTimeline(id) {
  state.trace = id;
  for (const tr of $('trace-rows').querySelectorAll('tr')) tr.classList.toggle('selected', tr.getAttribute('data-trace-id') === id);
  const sec = $('timeline');
  sec.hidden = false;
  $('timeline-title').textContent = 'Trace ' + id;
  $('timeline-sub').textContent = 'Loading…';
  const box = $('timeline-rows');
  box.setAttribute('data-state', 'loading');
  box.setAttribute('data-trace-id', id);
  let r;
  try {
    r = await post('/Traces', { TraceIds: [id] });
  } catch (e) {
    $('timeline-sub').textContent = e.message;
    box.replaceChildren();
    box.setAttribute('data-state', 'error');
    return;
  }
  if (state.trace !== id) return; // another row was clicked meanwhile
  const t = (Array.isArray(r.Traces) ? r.Traces : []).find((x) => x && x.Id === id);
  if (!t) {
    $('timeline-sub').textContent = 'This trace is no longer in xrayd’s store.';
    box.replaceChildren();
    $('timeline-axis').replaceChildren();
    box.setAttribute('data-state', 'missing');
    return;
  }
  renderTimeline(timelineRows(t.Segments), t);
  sec.scrollIntoView({ block: 'nearest' });
}

function renderTimeline(rows, t) {
  let t0 = Infinity;
  let t1 = 0;
  for (const { it } of rows) {
    if (it.start > 0 && it.start < t0) t0 = it.start;
    t1 = Math.max(t1, it.end, it.start);
  }
  if (!Number.isFinite(t0)) t0 = t1;
  const total = Math.max(t1 - t0, 1e-6);
  const axis = h('div', { class: 'ticks' });
  for (let i = 0; i <= 4; i++) axis.appendChild(h('span', null, fmtMs((total * i) / 4)));
  $('timeline-axis').replaceChildren(h('span', null, 'Name'), axis, h('span', { class: 'num' }, 'Duration'));
  const out = rows.map(({ it, depth }) => {
    const status = docStatus(it);
    const end = it.pending ? t1 : Math.max(it.end, it.start);
    const bar = h('div', { class: 'tl-bar ' + status + (it.pending ? ' pending' : ''), title: it.name + (it.http ? ' · HTTP ' + it.http : '') + (it.cause ? ' · ' + it.cause : '') });
    bar.style.left = ((100 * (it.start - t0)) / total).toFixed(3) + '%';
    bar.style.width = ((100 * (end - it.start)) / total).toFixed(3) + '%';
    const name = h('div', { class: 'tl-name' }, it.name, it.ns ? h('span', { class: 'ns' }, it.ns) : null);
    name.style.paddingLeft = 4 + depth * 14 + 'px';
    const dur = it.pending ? 'in progress' : fmtMs(Math.max(0, it.end - it.start));
    const row = h(
      'div',
      { class: 'tl-row ' + it.kind, 'data-name': it.name, 'data-kind': it.kind, 'data-status': status, 'data-depth': depth },
      name,
      h('div', { class: 'tl-track' }, bar),
      h('div', { class: 'tl-dur' }, (it.http ? it.http + ' · ' : '') + dur)
    );
    if (it.cause) row.appendChild(h('div', { class: 'tl-cause' }, it.cause));
    return row;
  });
  if (!out.length) out.push(h('p', { class: 'tl-note' }, 'No readable documents in this trace.'));
  const box = $('timeline-rows');
  box.replaceChildren(...out);
  box.setAttribute('data-state', 'ready');
  box.setAttribute('data-rows', rows.length);
  const segs = rows.filter((r) => r.it.kind === 'segment').length;
  $('timeline-sub').textContent = fmtMs(num(t.Duration) || total) + ' · ' + segs + ' segments · ' + (rows.length - segs) + ' subsegments';
}
