// SPDX-License-Identifier: Apache-2.0
// The service map's shared pieces: the page state, DOM builders that only ever put
// strings in as text, number formats, the status of a set of statistics, and calls to
// the read API. Safety rule for every module: a string from a segment (names, URLs,
// causes) reaches the page only through a text node, textContent, or a data-*/title
// attribute; never as markup.

const SVGNS = 'http://www.w3.org/2000/svg';
const NAME_SHOWN_MAX = 32; // characters of a name under a node (the title has all)

export const $ = (id) => document.getElementById(id);

export const state = {
  model: null, // graph.js's model of the last ServiceGraph answer
  sel: null, // {kind: 'node' | 'edge', key}
  tab: 'recent',
  service: null, // trace list filter: service("name")
  trace: null, // trace id shown in the timeline
  busy: false,
  again: false,
  traceSeq: 0, // the newest trace list request: older answers are dropped
  version: 0,
};

// ---- DOM helpers: attributes by setAttribute, content as text nodes only ----

export function setAttrs(e, attrs) {
  if (!attrs) return;
  for (const k of Object.keys(attrs)) {
    const v = attrs[k];
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
  }
}

function append(e, kids) {
  for (const k of kids) {
    if (k === undefined || k === null || k === false) continue;
    e.appendChild(typeof k === 'object' ? k : document.createTextNode(String(k)));
  }
}

export function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, kids);
  return e;
}

export function s(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  append(e, kids);
  return e;
}

// ---- numbers and words ----

export function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

export function str(v) {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

export function fmtMs(seconds) {
  const ms = seconds * 1000;
  if (ms >= 10000) return (ms / 1000).toFixed(1) + ' s';
  if (ms >= 1000) return (ms / 1000).toFixed(2) + ' s';
  if (ms >= 100) return ms.toFixed(0) + ' ms';
  if (ms >= 10) return ms.toFixed(1) + ' ms';
  return ms.toFixed(2) + ' ms';
}

export function fmtRate(perMin) {
  if (perMin >= 100) return perMin.toFixed(0);
  if (perMin >= 10) return perMin.toFixed(1);
  return perMin.toFixed(2);
}

export function pct(part, total) {
  return total > 0 ? ((100 * part) / total).toFixed(1) + '%' : '0%';
}

export function short(name) {
  return name.length > NAME_SHOWN_MAX ? name.slice(0, NAME_SHOWN_MAX - 1) + '…' : name;
}

// SummaryStatistics -> counts; null for a node without statistics (a client).
export function counts(st) {
  if (!st || typeof st !== 'object') return null;
  const err = st.ErrorStatistics || {};
  const flt = st.FaultStatistics || {};
  const c = {
    ok: num(st.OkCount),
    error: num(err.OtherCount),
    throttle: num(err.ThrottleCount),
    fault: num(flt.TotalCount),
    seconds: num(st.TotalResponseTime),
  };
  c.total = Math.max(num(st.TotalCount), c.ok + c.error + c.throttle + c.fault);
  c.avg = c.total > 0 ? c.seconds / c.total : 0;
  return c;
}

// The worst status present: what an edge, a badge or a summary is coloured by.
export function worst(c) {
  if (!c || c.total === 0) return 'none';
  if (c.fault) return 'fault';
  if (c.throttle) return 'throttle';
  if (c.error) return 'error';
  return 'ok';
}

// Requests a minute over the span the statistics cover (whole minutes in xrayd).
export function perMinute(c, obj, range) {
  if (!c) return 0;
  let span = num(obj.EndTime) - num(obj.StartTime);
  if (!(span > 0)) span = range;
  return c.total / Math.max(span / 60, 1 / 60);
}

// ---- the read API ----

export async function post(path, body) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
    });
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (res.status === 429 && attempt < 3) {
      // xrayd answers a few queries at once; the others are asked to retry.
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      continue;
    }
    if (!res.ok) {
      const msg = data && typeof data.message === 'string' ? data.message : res.statusText;
      throw new Error(path + ': ' + res.status + ' ' + msg);
    }
    return data && typeof data === 'object' ? data : {};
  }
}

export function timeRange() {
  const span = num($('range').value) || 300;
  const end = Math.floor(Date.now() / 1000) + 1;
  return { start: end - span, end, span };
}

export function setStatus(text, err) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('err', !!err);
}

export function showError(e) {
  setStatus(e && e.message ? e.message : String(e), true);
}
