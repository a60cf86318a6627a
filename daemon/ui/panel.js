// SPDX-License-Identifier: Apache-2.0
// The side panel: a node's or an edge's statistics, its response-time histogram and
// percentiles, and what it calls or is called by; selection in the graph.

import { $, state, h, s, num, fmtMs, fmtRate, pct, worst } from './core.js';

const HIST_BINS = 30;

export function findSelected() {
  const m = state.model;
  if (!m || !state.sel) return null;
  const list = state.sel.kind === 'node' ? m.nodes : m.edges;
  return list.find((x) => x.key === state.sel.key) || null;
}


function statRow(dl, label, value, key, cls) {
  dl.appendChild(h('dt', null, label));
  dl.appendChild(h('dd', { 'data-stat': key, class: cls }, value));
}

function percentiles(hist, qs) {
  const list = (Array.isArray(hist) ? hist : [])
    .map((e) => ({ v: num(e && e.Value), n: num(e && e.Count) }))
    .filter((e) => e.n > 0)
    .sort((a, b) => a.v - b.v);
  const total = list.reduce((a, e) => a + e.n, 0);
  return qs.map((q) => {
    let seen = 0;
    for (const e of list) {
      seen += e.n;
      if (seen >= q * total) return e.v;
    }
    return 0;
  });
}

function drawHistogram(svg, hist) {
  const list = (Array.isArray(hist) ? hist : [])
    .map((e) => ({ v: num(e && e.Value), n: num(e && e.Count) }))
    .filter((e) => e.n > 0 && e.v >= 0);
  const W = 330;
  const H = 130;
  const left = 34;
  const bottom = 18;
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  svg.replaceChildren();
  const total = list.reduce((a, e) => a + e.n, 0);
  svg.setAttribute('data-total', total);
  if (!list.length) {
    svg.setAttribute('data-bars', 0);
    svg.appendChild(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No requests in this range'));
    return;
  }
  const max = list.reduce((a, e) => Math.max(a, e.v), 0);
  const span = max > 0 ? max * 1.1 : 0.001; // the slowest bar clear of the edge
  const bins = new Array(HIST_BINS).fill(0);
  for (const e of list) bins[Math.min(HIST_BINS - 1, Math.floor((e.v / span) * HIST_BINS))] += e.n;
  const top = Math.max(...bins);
  const bw = (W - left - 4) / HIST_BINS;
  let bars = 0;
  bins.forEach((n, i) => {
    if (!n) return;
    bars++;
    const bh = ((H - bottom - 8) * n) / top;
    const lo = (span * i) / HIST_BINS;
    const hi = (span * (i + 1)) / HIST_BINS;
    svg.appendChild(
      s(
        'rect',
        { class: 'bar', x: (left + i * bw + 1).toFixed(1), y: (H - bottom - bh).toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: bh.toFixed(1) },
        s('title', null, fmtMs(lo) + ' – ' + fmtMs(hi) + ': ' + n)
      )
    );
  });
  svg.setAttribute('data-bars', bars);
  svg.appendChild(s('line', { x1: left, y1: H - bottom, x2: W - 4, y2: H - bottom }));
  svg.appendChild(s('text', { x: left, y: H - 4 }, '0'));
  svg.appendChild(s('text', { x: W - 4, y: H - 4, 'text-anchor': 'end' }, fmtMs(span)));
  svg.appendChild(s('text', { x: left - 4, y: 12, 'text-anchor': 'end' }, String(top)));
}

function edgeLine(e, other) {
  const c = e.c;
  const parts = [other.name, ': '];
  if (c) parts.push(fmtRate(e.rate) + '/min, ' + fmtMs(c.avg) + (c.fault ? ', ' + c.fault + ' faults' : ''));
  return h('li', { 'data-status': worst(c) }, ...parts);
}

export function showDetails() {
  const obj = findSelected();
  const panel = $('details');
  if (!obj) {
    panel.hidden = true;
    return;
  }
  const node = state.sel.kind === 'node';
  const src = node ? obj.svc : obj.e;
  const c = obj.c;
  panel.hidden = false;
  panel.setAttribute('data-kind', state.sel.kind);
  $('details-title').textContent = node ? obj.name : obj.src.name + ' → ' + obj.dst.name;
  const sub = node
    ? [obj.client ? 'client' : obj.type || 'service', obj.inferred ? 'not instrumented' : 'instrumented', obj.svc.Root ? 'root' : ''].filter(Boolean).join(' · ')
    : 'calls from ' + (obj.src.client ? 'clients of ' + obj.src.name : obj.src.name) + ' (as the caller timed them)';
  $('details-sub').textContent = sub;
  const dl = $('details-stats');
  dl.replaceChildren();
  if (c) {
    statRow(dl, 'Requests', String(c.total), 'total');
    statRow(dl, 'Rate', fmtRate(obj.rate) + ' / min', 'rate');
    statRow(dl, 'Average', fmtMs(c.avg), 'avg');
    statRow(dl, 'OK', c.ok + ' (' + pct(c.ok, c.total) + ')', 'ok');
    statRow(dl, 'Errors (4xx)', c.error + ' (' + pct(c.error, c.total) + ')', 'error', c.error ? 'error' : null);
    statRow(dl, 'Throttles (429)', c.throttle + ' (' + pct(c.throttle, c.total) + ')', 'throttle', c.throttle ? 'throttle' : null);
    statRow(dl, 'Faults (5xx)', c.fault + ' (' + pct(c.fault, c.total) + ')', 'fault', c.fault ? 'fault' : null);
  } else {
    statRow(dl, 'Requests', 'see its edges', 'total');
  }
  const hist = src.ResponseTimeHistogram;
  drawHistogram($('histogram'), hist);
  const [p50, p90, p99] = percentiles(hist, [0.5, 0.9, 0.99]);
  $('details-pct').textContent = c && c.total ? 'p50 ' + fmtMs(p50) + ' · p90 ' + fmtMs(p90) + ' · p99 ' + fmtMs(p99) : '';
  const box = $('details-edges');
  box.replaceChildren();
  if (node) {
    if (obj.out.length) box.append(h('h3', null, 'Calls'), h('ul', { class: 'edges-list' }, ...obj.out.map((e) => edgeLine(e, e.dst))));
    if (obj.inn.length) box.append(h('h3', null, 'Called by'), h('ul', { class: 'edges-list' }, ...obj.inn.map((e) => edgeLine(e, e.src))));
  }
  $('details-traces').hidden = !node || obj.client || obj.inferred;
}

export function select(kind, obj) {
  state.sel = { kind, key: obj.key };
  for (const el of $('graph').querySelectorAll('.selected')) el.classList.remove('selected');
  const list = kind === 'node' ? state.model.nodes : state.model.edges;
  const el = $('graph').querySelector(kind === 'node' ? '.node[data-i="' + list.indexOf(obj) + '"]' : '.edge[data-e="' + list.indexOf(obj) + '"]');
  if (el) el.classList.add('selected');
  showDetails();
}

export function onGraphActivate(ev) {
  const m = state.model;
  if (!m) return;
  const t = ev.target instanceof Element ? ev.target : null;
  const nodeG = t && t.closest('.node');
  const edgeG = t && t.closest('.edge');
  if (nodeG) {
    const n = m.nodes[num(nodeG.getAttribute('data-i'))];
    if (n) select('node', n);
  } else if (edgeG) {
    const e = m.edges[num(edgeG.getAttribute('data-e'))];
    if (e) select('edge', e);
  }
}
