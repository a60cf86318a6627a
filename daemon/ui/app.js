// SPDX-License-Identifier: Apache-2.0
// xrayd's service map: reads this xrayd's X-Ray read API (POST /ServiceGraph,
// /TraceSummaries, /Traces) and shows the service graph (graph.js), a node's or edge's
// details (panel.js), the trace list and a trace's timeline (traces.js). Plain DOM and
// ES modules: no framework and no build step. This file wires the controls and the
// refresh, every 10 s while auto-refresh is on.

import { $, state, timeRange, setStatus, showError } from './core.js';
import { fetchGraph, buildModel, render } from './graph.js';
import { findSelected, showDetails, onGraphActivate } from './panel.js';
import { loadTraces, setTab, loadTimeline } from './traces.js';

const REFRESH_MS = 10000;

async function refreshGraph() {
  const { start, end, span } = timeRange();
  const services = await fetchGraph(start, end);
  state.model = buildModel(services, span);
  const ms = render(state.model, span);
  if (state.sel) showDetails();
  setStatus('Updated ' + new Date().toLocaleTimeString() + ' · ' + state.model.nodes.length + ' nodes · ' + state.model.edges.length + ' edges · drawn in ' + ms.toFixed(0) + ' ms', false);
}

async function refresh() {
  if (state.busy) {
    state.again = true;
    return;
  }
  state.busy = true;
  try {
    const results = await Promise.allSettled([refreshGraph(), loadTraces()]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) showError(failed.reason);
  } finally {
    state.busy = false;
  }
  if (state.again) {
    state.again = false;
    refresh();
  }
}

function init() {
  const graph = $('graph');
  graph.addEventListener('click', onGraphActivate);
  graph.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      onGraphActivate(ev);
    }
  });
  $('details-close').addEventListener('click', () => {
    state.sel = null;
    for (const el of graph.querySelectorAll('.selected')) el.classList.remove('selected');
    $('details').hidden = true;
  });
  $('details-traces').addEventListener('click', () => {
    const n = findSelected();
    if (!n || state.sel.kind !== 'node') return;
    state.service = n.name;
    $('trace-table').setAttribute('data-state', 'loading');
    loadTraces().catch(showError);
  });
  $('trace-filter-clear').addEventListener('click', () => {
    state.service = null;
    loadTraces().catch(showError);
  });
  for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => setTab(b.getAttribute('data-tab')));
  const rows = $('trace-rows');
  const open = (ev) => {
    const tr = ev.target instanceof Element ? ev.target.closest('tr[data-trace-id]') : null;
    if (tr) loadTimeline(tr.getAttribute('data-trace-id'));
  };
  rows.addEventListener('click', open);
  rows.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') open(ev);
  });
  $('timeline-close').addEventListener('click', () => {
    state.trace = null;
    $('timeline').hidden = true;
  });
  $('range').addEventListener('change', refresh);
  $('refresh').addEventListener('click', refresh);
  $('auto').addEventListener('change', () => {
    if ($('auto').checked) refresh();
  });
  setInterval(() => {
    if ($('auto').checked && !document.hidden) refresh();
  }, REFRESH_MS);
  refresh();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
