// SPDX-License-Identifier: Apache-2.0
// The service graph: ServiceGraph pages -> a model of nodes and edges -> a layout in
// columns by call depth -> one SVG built off-document and inserted at once. Layout is
// O(nodes + edges) plus a sort per column, so 500+ nodes draw in well under a second.

import { $, state, s, setAttrs, str, fmtMs, fmtRate, short, counts, worst, perMinute, post } from './core.js';

const GRAPH_PAGES_MAX = 100; // 100 services a page: 10,000 services
const R = 32; // node radius
const COL_W = 260;
const ROW_H = 110;
const PAD_X = 130; // room for a long name under a first-column node
const PAD_Y = 60;
const STATUS_ORDER = ['ok', 'error', 'throttle', 'fault'];

export async function fetchGraph(start, end) {
  const services = [];
  let token;
  let pages = 0;
  do {
    const body = { StartTime: start, EndTime: end };
    if (token) body.NextToken = token;
    const r = await post('/ServiceGraph', body);
    if (Array.isArray(r.Services)) for (const svc of r.Services) services.push(svc);
    token = typeof r.NextToken === 'string' && r.NextToken !== '' ? r.NextToken : undefined;
  } while (token && ++pages < GRAPH_PAGES_MAX);
  return services;
}

// ---- the graph model and its layout ----

export function buildModel(services, range) {
  const nodes = [];
  const byRef = new Map();
  for (const svc of services) {
    if (!svc || typeof svc !== 'object' || byRef.has(svc.ReferenceId)) continue;
    const type = str(svc.Type);
    const n = {
      svc,
      name: str(svc.Name),
      type,
      client: type === 'client',
      inferred: svc.State === 'unknown',
      c: counts(svc.SummaryStatistics),
      out: [],
      inn: [],
      depth: 0,
      pos: 0,
      x: 0,
      y: 0,
      mark: 0,
      indeg: 0,
    };
    n.key = 'n:' + type + '\u0000' + n.name;
    n.rate = perMinute(n.c, svc, range);
    nodes.push(n);
    byRef.set(svc.ReferenceId, n);
  }
  const edges = [];
  for (const n of nodes) {
    const list = Array.isArray(n.svc.Edges) ? n.svc.Edges : [];
    for (const e of list) {
      const d = e && byRef.get(e.ReferenceId);
      if (!d || d === n) continue;
      const c = counts(e.SummaryStatistics);
      const edge = { src: n, dst: d, e, c, back: false, key: 'e:' + n.key + '\u0001' + d.key };
      edge.rate = perMinute(c, e, range);
      n.out.push(edge);
      d.inn.push(edge);
      edges.push(edge);
    }
  }
  return { nodes, edges };
}

// Columns by call depth: the longest path from a node nothing calls (clients first).
// Cycles are broken at the edges a depth-first walk finds going back. Within a
// column, nodes are ordered by the mean position of their callers (two sweeps), which
// keeps most edges from crossing.
function layout(m) {
  const { nodes } = m;
  const starts = nodes.filter((n) => n.inn.length === 0);
  const rest = nodes.filter((n) => n.inn.length > 0);
  starts.sort((a, b) => Number(b.client) - Number(a.client));
  for (const root of starts.concat(rest)) {
    if (root.mark) continue;
    root.mark = 1;
    const stack = [[root, 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const n = top[0];
      if (top[1] < n.out.length) {
        const e = n.out[top[1]++];
        if (e.dst.mark === 1) e.back = true;
        else if (e.dst.mark === 0) {
          e.dst.mark = 1;
          stack.push([e.dst, 0]);
        }
      } else {
        n.mark = 2;
        stack.pop();
      }
    }
  }
  for (const n of nodes) for (const e of n.out) if (!e.back) e.dst.indeg++;
  const queue = nodes.filter((n) => n.indeg === 0);
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i];
    for (const e of n.out) {
      if (e.back) continue;
      const d = e.dst;
      if (n.depth + 1 > d.depth) d.depth = n.depth + 1;
      if (--d.indeg === 0) queue.push(d);
    }
  }

  const cols = [];
  for (const n of nodes) (cols[n.depth] || (cols[n.depth] = [])).push(n);
  for (let i = 0; i < cols.length; i++) if (!cols[i]) cols[i] = [];
  const tall = cols.reduce((a, c) => Math.max(a, c.length), 0);
  const place = (col) => {
    const off = (tall - col.length) / 2;
    col.forEach((n, i) => {
      n.pos = i + off;
    });
  };
  for (const col of cols) {
    col.sort((a, b) => Number(b.client) - Number(a.client) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    place(col);
  }
  const sweep = (col, pick) => {
    for (const n of col) {
      let sum = 0;
      let k = 0;
      for (const e of pick(n)) {
        const o = e.src === n ? e.dst : e.src;
        if (o.depth === n.depth || e.back) continue;
        sum += o.pos;
        k++;
      }
      n.bary = k ? sum / k : n.pos;
    }
    col.sort((a, b) => a.bary - b.bary || a.pos - b.pos);
    place(col);
  };
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 1; i < cols.length; i++) sweep(cols[i], (n) => n.inn);
    for (let i = cols.length - 2; i >= 0; i--) sweep(cols[i], (n) => n.out);
  }
  for (const n of nodes) {
    n.x = PAD_X + n.depth * COL_W;
    n.y = PAD_Y + n.pos * ROW_H;
  }
  return { width: PAD_X * 2 + Math.max(0, cols.length - 1) * COL_W, height: PAD_Y * 2 + Math.max(0, tall - 1) * ROW_H + 20 };
}

// ---- drawing the graph ----

function ring(c) {
  const g = s('g', { class: 'rings', transform: 'rotate(-90)' });
  const sum = c ? c.ok + c.error + c.throttle + c.fault : 0;
  if (!sum) {
    g.appendChild(s('circle', { class: 'ring none', r: R }));
    return g;
  }
  const C = 2 * Math.PI * R;
  let off = 0;
  for (const cls of STATUS_ORDER) {
    const v = c[cls];
    if (!v) continue;
    const len = (C * v) / sum;
    g.appendChild(
      s('circle', {
        class: 'ring ' + cls,
        r: R,
        'stroke-dasharray': len.toFixed(2) + ' ' + (C - len).toFixed(2),
        'stroke-dashoffset': (-off).toFixed(2),
      })
    );
    off += len;
  }
  return g;
}

function nodeEl(n, i) {
  const classes = ['node'];
  if (n.client) classes.push('client');
  if (n.inferred) classes.push('inferred');
  if (state.sel && state.sel.key === n.key) classes.push('selected');
  const kind = n.client ? 'client' : n.type || (n.inferred ? 'remote' : 'service');
  const g = s(
    'g',
    {
      class: classes.join(' '),
      transform: 'translate(' + n.x + ',' + n.y + ')',
      tabindex: 0,
      role: 'button',
      'data-i': i,
      'data-name': n.name,
      'data-type': n.type,
      'data-depth': n.depth,
      'data-status': worst(n.c),
    },
    s('title', null, n.name + ' (' + kind + ')'),
    s('circle', { class: 'bg', r: R }),
    ring(n.c)
  );
  if (n.c && n.c.total) {
    g.appendChild(s('text', { class: 'metric', y: -3 }, fmtMs(n.c.avg)));
    g.appendChild(s('text', { class: 'metric', y: 10 }, fmtRate(n.rate) + '/min'));
  } else if (n.client) {
    g.appendChild(s('text', { class: 'metric', y: 4 }, 'client'));
  }
  g.appendChild(s('text', { class: 'name', y: R + 16 }, short(n.name)));
  g.appendChild(s('text', { class: 'kind', y: R + 29 }, short(kind)));
  return g;
}

function edgeEl(e, i) {
  const a = e.src;
  const b = e.dst;
  const x1 = a.x + R;
  const y1 = a.y;
  const x2 = b.x - R - 4;
  const y2 = b.y;
  let d;
  let lx;
  let ly;
  if (e.back) {
    // Back into an earlier column: an arc below both nodes.
    const dy = R + 40;
    d = 'M' + a.x + ',' + (a.y + R) + ' C' + a.x + ',' + (a.y + R + dy) + ' ' + b.x + ',' + (b.y + R + dy) + ' ' + b.x + ',' + (b.y + R + 4);
    lx = (a.x + b.x) / 2;
    ly = (a.y + b.y) / 2 + R + dy * 0.75;
  } else {
    const dx = Math.max(40, (x2 - x1) / 2);
    d = 'M' + x1 + ',' + y1 + ' C' + (x1 + dx) + ',' + y1 + ' ' + (x2 - dx) + ',' + y2 + ' ' + x2 + ',' + y2;
    lx = (x1 + 3 * (x1 + dx) + 3 * (x2 - dx) + x2) / 8;
    ly = (y1 + y2) / 2 - 5;
  }
  const status = worst(e.c);
  const classes = ['edge', status];
  if (state.sel && state.sel.key === e.key) classes.push('selected');
  const label = e.c ? fmtRate(e.rate) + '/min · ' + fmtMs(e.c.avg) : '';
  return s(
    'g',
    {
      class: classes.join(' '),
      tabindex: 0,
      role: 'button',
      'data-e': i,
      'data-from': a.name,
      'data-from-type': a.type,
      'data-to': b.name,
      'data-to-type': b.type,
      'data-status': status,
    },
    s('title', null, a.name + ' → ' + b.name),
    s('path', { class: 'hit', d }),
    s('path', { class: 'line', d, 'marker-end': 'url(#arrow)' }),
    label ? s('text', { x: lx.toFixed(1), y: ly.toFixed(1) }, label) : null
  );
}

export function render(m, range) {
  const t0 = performance.now();
  const size = layout(m);
  const svg = $('graph');
  const defs = s(
    'defs',
    null,
    s(
      'marker',
      { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M0,0 L10,5 L0,10 z' })
    )
  );
  const eg = s('g', { class: 'edges' });
  const ng = s('g', { class: 'nodes' });
  m.edges.forEach((e, i) => eg.appendChild(edgeEl(e, i)));
  m.nodes.forEach((n, i) => ng.appendChild(nodeEl(n, i)));
  svg.replaceChildren(defs, eg, ng);
  const empty = m.nodes.length === 0;
  svg.setAttribute('width', empty ? 0 : size.width);
  svg.setAttribute('height', empty ? 0 : size.height);
  $('empty').hidden = !empty;
  ng.getBBox(); // forces the layout, so the time below includes it
  const ms = performance.now() - t0;
  state.version++;
  setAttrs(svg, {
    'data-state': 'ready',
    'data-nodes': m.nodes.length,
    'data-edges': m.edges.length,
    'data-render-ms': ms.toFixed(1),
    'data-version': state.version,
    'data-range': range,
  });
  return ms;
}
