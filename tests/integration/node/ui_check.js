// SPDX-License-Identifier: Apache-2.0
// Drives xrayd's service-map page in a real headless Chromium (playwright-core with the
// system's chromium) and prints what the page shows as one JSON object on the last
// line of stdout; test_ui.py asserts on it. Usage: node ui_check.js CONFIG.json, where
// CONFIG has url, chromium, outDir, mode ("map" or "scale") and the mode's fields.
// Every wait is bounded; the browser is closed on every path.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const WAIT_MS = cfg.waitMs || 30000;

async function collectGraph(page) {
  return page.evaluate(() => {
    const pick = (el) => {
      const o = {};
      for (const a of el.attributes) if (a.name.startsWith('data-')) o[a.name.slice(5)] = a.value;
      o.classes = el.getAttribute('class') || '';
      return o;
    };
    const svg = document.getElementById('graph');
    return {
      svg: pick(svg),
      nodes: Array.from(svg.querySelectorAll('.node')).map((el) => {
        const o = pick(el);
        o.text = el.querySelector('text.name').textContent;
        o.title = el.querySelector('title').textContent;
        const t = el.getAttribute('transform').match(/translate\(([-\d.]+),([-\d.]+)\)/);
        o.x = t ? Number(t[1]) : null;
        o.rings = Array.from(el.querySelectorAll('.ring')).map((r) => r.getAttribute('class'));
        return o;
      }),
      edges: Array.from(svg.querySelectorAll('.edge')).map((el) => {
        const o = pick(el);
        const label = el.querySelector('text');
        o.label = label ? label.textContent : '';
        return o;
      }),
    };
  });
}

async function collectDetails(page) {
  return page.evaluate(() => {
    const stats = {};
    for (const dd of document.querySelectorAll('#details-stats dd')) stats[dd.getAttribute('data-stat')] = dd.textContent;
    const hist = document.getElementById('histogram');
    return {
      hidden: document.getElementById('details').hidden,
      kind: document.getElementById('details').getAttribute('data-kind'),
      title: document.getElementById('details-title').textContent,
      sub: document.getElementById('details-sub').textContent,
      stats,
      histBars: Number(hist.getAttribute('data-bars')),
      histTotal: Number(hist.getAttribute('data-total')),
      percentiles: document.getElementById('details-pct').textContent,
    };
  });
}

async function collectTraces(page) {
  return page.evaluate(() => {
    const table = document.getElementById('trace-table');
    return {
      tab: table.getAttribute('data-tab'),
      rows: Array.from(document.querySelectorAll('#trace-rows tr[data-trace-id]')).map((tr) => ({
        id: tr.getAttribute('data-trace-id'),
        status: tr.getAttribute('data-status'),
        cells: Array.from(tr.cells).map((td) => td.textContent),
      })),
      filter: document.getElementById('trace-filter').hidden ? null : document.getElementById('trace-filter-text').textContent,
    };
  });
}

// Waits until the trace table shows tab's answer (a new one after `before`).
async function waitTraces(page, tab) {
  await page.waitForFunction(
    (t) => {
      const table = document.getElementById('trace-table');
      return table.getAttribute('data-state') === 'ready' && table.getAttribute('data-tab') === t;
    },
    tab,
    { timeout: WAIT_MS }
  );
  return collectTraces(page);
}

async function openTimeline(page, id) {
  await page.click('#trace-rows tr[data-trace-id="' + id + '"]');
  await page.waitForFunction(
    (tid) => {
      const box = document.getElementById('timeline-rows');
      return box.getAttribute('data-trace-id') === tid && box.getAttribute('data-state') === 'ready';
    },
    id,
    { timeout: WAIT_MS }
  );
  return page.evaluate(() => ({
    title: document.getElementById('timeline-title').textContent,
    sub: document.getElementById('timeline-sub').textContent,
    rows: Array.from(document.querySelectorAll('#timeline-rows .tl-row')).map((r) => ({
      name: r.getAttribute('data-name'),
      text: r.querySelector('.tl-name').firstChild.textContent,
      kind: r.getAttribute('data-kind'),
      status: r.getAttribute('data-status'),
      depth: Number(r.getAttribute('data-depth')),
      dur: r.querySelector('.tl-dur').textContent,
      cause: r.querySelector('.tl-cause') ? r.querySelector('.tl-cause').textContent : null,
      width: r.querySelector('.tl-bar').style.width,
    })),
  }));
}

// Elements a page could only have if a name had been parsed as markup.
async function injected(page) {
  return page.evaluate(() => ({
    img: document.querySelectorAll('img').length,
    scripts: Array.from(document.querySelectorAll('script')).map((s) => s.getAttribute('src')),
    onerror: document.querySelectorAll('[onerror]').length,
  }));
}

async function runMap(page, out) {
  const names = cfg.expectNames;
  await page.waitForFunction(
    (want) => {
      const have = new Set(Array.from(document.querySelectorAll('#graph .node')).map((n) => n.getAttribute('data-name')));
      return want.every((n) => have.has(n));
    },
    names,
    { timeout: WAIT_MS }
  );
  out.graph = await collectGraph(page);

  await page.click('#graph .node[data-name="' + cfg.clickNode + '"]:not(.client)');
  await page.waitForSelector('#details:not([hidden])', { timeout: WAIT_MS });
  out.nodeDetails = await collectDetails(page);

  const [from, to] = cfg.clickEdge;
  await page.click('#graph .edge[data-from="' + from + '"][data-to="' + to + '"] path.hit', { force: true });
  await page.waitForFunction(() => document.getElementById('details').getAttribute('data-kind') === 'edge', null, { timeout: WAIT_MS });
  out.edgeDetails = await collectDetails(page);

  out.recent = await waitTraces(page, 'recent');
  if (cfg.evilTrace) out.evilTimeline = await openTimeline(page, cfg.evilTrace);
  if (cfg.faultTrace) out.faultTimeline = await openTimeline(page, cfg.faultTrace);

  await page.click('.tab[data-tab="faults"]');
  out.faults = await waitTraces(page, 'faults');
  await page.click('.tab[data-tab="errors"]');
  out.errors = await waitTraces(page, 'errors');
  await page.click('.tab[data-tab="slowest"]');
  out.slowest = await waitTraces(page, 'slowest');

  // The node's "traces through this service" filter.
  await page.click('#graph .node[data-name="' + cfg.clickNode + '"]:not(.client)');
  await page.waitForFunction(() => document.getElementById('details').getAttribute('data-kind') === 'node', null, { timeout: WAIT_MS });
  await page.click('#details-traces');
  await page.waitForFunction(() => !document.getElementById('trace-filter').hidden && document.getElementById('trace-table').getAttribute('data-state') === 'ready', null, { timeout: WAIT_MS });
  out.serviceTraces = await collectTraces(page);

  out.injected = await injected(page);
  const shot = path.join(cfg.outDir, cfg.shot || 'ui-map.png');
  await page.screenshot({ path: shot, fullPage: true });
  out.screenshots = [shot];
}

async function runScale(page, out) {
  const t0 = Date.now();
  await page.waitForFunction(
    (n) => Number(document.getElementById('graph').getAttribute('data-nodes')) >= n,
    cfg.expectNodes,
    { timeout: WAIT_MS }
  );
  out.firstShowMs = Date.now() - t0;
  out.first = await page.evaluate(() => {
    const svg = document.getElementById('graph');
    return {
      nodes: Number(svg.getAttribute('data-nodes')),
      edges: Number(svg.getAttribute('data-edges')),
      renderMs: Number(svg.getAttribute('data-render-ms')),
      domNodes: svg.querySelectorAll('.node').length,
      domEdges: svg.querySelectorAll('.edge').length,
      depths: Array.from(svg.querySelectorAll('.node')).reduce((a, n) => {
        const d = n.getAttribute('data-depth');
        a[d] = (a[d] || 0) + 1;
        return a;
      }, {}),
    };
  });

  // A refresh by hand: fetch (several pages), lay out and draw again.
  const version = await page.getAttribute('#graph', 'data-version');
  const t1 = Date.now();
  await page.click('#refresh');
  await page.waitForFunction((v) => document.getElementById('graph').getAttribute('data-version') !== v, version, { timeout: WAIT_MS });
  out.refreshMs = Date.now() - t1;
  out.refreshRenderMs = Number(await page.getAttribute('#graph', 'data-render-ms'));

  // Still responsive: a click on a node deep in the graph opens its panel at once.
  const target = '#graph .node[data-name="' + cfg.clickNode + '"]';
  await page.locator(target).scrollIntoViewIfNeeded({ timeout: WAIT_MS });
  const t2 = Date.now();
  await page.click(target);
  await page.waitForSelector('#details:not([hidden])', { timeout: WAIT_MS });
  out.clickMs = Date.now() - t2;
  out.nodeDetails = await collectDetails(page);

  // The main thread answers between refreshes (no long task left running).
  const t3 = Date.now();
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(1))));
  out.frameMs = Date.now() - t3;

  const shot = path.join(cfg.outDir, 'ui-scale.png');
  await page.screenshot({ path: shot });
  out.screenshots = [shot];
}

async function main() {
  const out = { dialogs: [], pageErrors: [], consoleErrors: [], foreignRequests: [], failedRequests: [] };
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
    timeout: WAIT_MS,
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const origin = new URL(cfg.url).origin;
    page.on('dialog', (d) => {
      out.dialogs.push(d.type() + ': ' + d.message());
      d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => out.pageErrors.push(String(e && e.message ? e.message : e)));
    page.on('console', (m) => {
      if (m.type() === 'error') out.consoleErrors.push(m.text());
    });
    page.on('request', (r) => {
      if (!r.url().startsWith(origin + '/')) out.foreignRequests.push(r.url());
    });
    page.on('requestfailed', (r) => out.failedRequests.push(r.url()));
    const res = await page.goto(cfg.url, { waitUntil: 'load', timeout: WAIT_MS });
    out.status = res ? res.status() : 0;
    if (cfg.mode === 'scale') await runScale(page, out);
    else await runMap(page, out);
  } catch (e) {
    out.error = String(e && e.stack ? e.stack : e);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }) + '\n');
  process.exitCode = 1;
});
