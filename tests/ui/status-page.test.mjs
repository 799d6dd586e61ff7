// The status page (GET /) in headless Chromium against a real netchecker-server.
//
// hack/test-ui.sh starts the server, posts the reports that make the nodes of
// EXPECT_JSON, and runs this with:
//   BASE_URL      http://127.0.0.1:PORT/ (the server)
//   SERVER_PID    the server's PID: the last phase stops it (SIGTERM) to see the error banner
//   EXPECT_JSON   {"node name": "verdict", ...}: every node /api/v2/status must report
//   EXPECT_AUTH_JSON  {"agent": "missing" | "invalid" | null, ...}: the agents whose last
//                 report did not prove its sender (the server runs --report-auth warn
//                 --report-token-file), or that never reported; every other agent's is "ok"
//   EXPECT_PAIRS_JSON [[from, to, network, kind], ...]: the failing mesh pairs staged
//                 (the server runs --mesh-peers 2 --mesh-round 1)
//   PAGE_FILE     crates/server/assets/status.html (what GET / must serve)
//   SCREENSHOT    where to write the screenshot of the failing cluster
//   SCREENSHOT_MESH  where to write the screenshot of its mesh section
//   EXTRA_REPORT  a JSON report for a new node, posted mid-test (without a token) to see the page refresh
//   LOCKED_URL    http://127.0.0.1:PORT/ of a second server, started with --read-token-file
//                 and --mesh-peers 0
//   READ_TOKEN    the token in that file
// The page's 5 s refresh timer runs on Playwright's fake clock: no sleeping.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('BASE_URL');
const SERVER_PID = Number(env('SERVER_PID'));
const EXPECT = JSON.parse(env('EXPECT_JSON'));
const PAGE_FILE = env('PAGE_FILE');
const SCREENSHOT = env('SCREENSHOT');
const EXTRA = JSON.parse(env('EXTRA_REPORT'));
const EXPECT_AUTH = JSON.parse(env('EXPECT_AUTH_JSON'));
const EXPECT_PAIRS = JSON.parse(env('EXPECT_PAIRS_JSON'));
const SCREENSHOT_MESH = env('SCREENSHOT_MESH');
const LOCKED = env('LOCKED_URL');
const READ_TOKEN = env('READ_TOKEN');
const REFRESH_MS = 5000;
// What the page says of an agent's `auth` (doc/status-page.md).
const AUTH_TEXT = { ok: 'verified', missing: 'no token', invalid: 'invalid token', forbidden: 'token of another pod' };

// The colour class each verdict must get (doc/status-page.md), and what its colour must look like.
const CLASS_OF = {
  healthy: 'sev-ok', pending: 'sev-pending', unknown: 'sev-neutral',
  pod_network_down: 'sev-warn2', host_network_down: 'sev-warn2',
  dns_failure: 'sev-warn', probe_failures: 'sev-warn',
  unreachable: 'sev-crit', agents_late: 'sev-crit',
  mesh_outbound_down: 'sev-warn2', mesh_inbound_down: 'sev-warn2', mesh_partition: 'sev-warn2', mesh_mtu: 'sev-warn2',
  mesh_slow: 'sev-warn', lossy: 'sev-warn', family_down: 'sev-warn2',
};
// What a tile says of the mesh verdicts (the others read as their name).
const VERDICT_TEXT = {
  mesh_outbound_down: 'mesh: cannot reach its peers', mesh_inbound_down: 'mesh: peers cannot reach it',
  mesh_partition: 'mesh: partition', mesh_mtu: 'mesh: MTU blackhole', mesh_slow: 'mesh: slow peers',
  lossy: 'lossy path', family_down: 'IP family down',
};
const verdictText = (v) => VERDICT_TEXT[v] || v.replace(/_/g, ' ');
// The mesh (doc/status-page.md): pair kinds, and the class of each matrix character.
const KIND_TEXT = { unreachable: 'unreachable', mtu: 'MTU', slow: 'slow' };
const KIND_RANK = { unreachable: 0, mtu: 1, slow: 2 };
const CELL_CLASS = { o: 'm-ok', u: 'm-unreachable', m: 'm-mtu', s: 'm-slow', x: 'm-once', '.': 'm-none', '-': 'm-self' };
const PAIRS_SHOWN = 20;
const HUE = {
  'sev-ok': ([r, g, b]) => g > r + 40 && g > b + 40, // green
  'sev-warn': ([r, g, b]) => r > g + 30 && g > b + 30, // amber
  'sev-warn2': ([r, g, b]) => r > g + 60 && g > b, // orange
  'sev-crit': ([r, g, b]) => r > g + 80 && r > b + 80, // red
};
const rgbOf = (css) => css.match(/\d+/g).map(Number);
const timeOf = (iso) => Date.parse(String(iso).replace(/(\.\d{3})\d+/, '$1'));
const pairKey = (p) => JSON.stringify(Array.isArray(p) ? p : [p.from, p.to, p.network, p.kind]);
const VERDICT_KEYS = Object.keys(CLASS_OF);
const STATE_KEYS = ['ok', 'absent', 'outdated', 'pending', 'unexpected'];

let step = 'start';
const log = (msg) => console.log(`test-ui: ${msg}`);
const noNumbers = (text) => text.replace(/\d+(\.\d+)?/g, '#');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last === true) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(100);
  }
}

async function apiStatus(base = BASE, headers = {}) {
  const res = await fetch(new URL('api/v2/status', base), { headers });
  assert.equal(res.status, 200, `GET /api/v2/status answered ${res.status}`);
  return res.json();
}
const verdictsOf = (status) => Object.fromEntries(status.nodes.map((n) => [n.node, n.verdict]));
const authOf = (status) => Object.fromEntries(status.nodes.flatMap((n) => n.agents.map((a) => [a.name, a.auth])));

// The summary's counts as the page shows them, by data-count key.
const summaryCounts = (page) => page.locator('#summary [data-count]').evaluateAll((els) =>
  Object.fromEntries(els.map((e) => [e.dataset.count, e.querySelector('b').textContent])));
function assertCounts(counts, s) {
  assert.equal(counts.nodes, String(s.nodes));
  assert.equal(counts.agents, String(s.agents));
  for (const k of VERDICT_KEYS) assert.equal(counts[`verdict:${k}`], String(s.verdicts[k]), `summary count of ${k}`);
  for (const k of STATE_KEYS) assert.equal(counts[`state:${k}`], String(s.agent_states[k]), `summary count of ${k} agents`);
}

// A status of `n` mesh nodes (worker-001...) on the pod and host networks, from
// `base` (a real answer): worker-100 is cut off (every other node fails to reach
// it), each node probed its 16 ring successors lately; one MTU pair, one slow
// pair and one unconfirmed failure. The matrix only up to 300 nodes, as the server.
function bigMesh(base, n) {
  const names = Array.from({ length: n }, (_, i) => `worker-${String(i + 1).padStart(3, '0')}`);
  const down = names[99];
  const t0 = timeOf(base.generated_at);
  const at = (secondsAgo) => new Date(t0 - secondsAgo * 1000).toISOString();
  const pod = names.map((_, i) => names.map((__, j) => {
    const d = (j - i + n) % n;
    if (i === j) return '-';
    if (j === 99) return 'u';
    if (i === 10 && d === 3) return 'm';
    if (i === 20 && d === 5) return 's';
    if (i === 30 && d === 7) return 'x';
    return d <= 16 ? 'o' : '.';
  }).join(''));
  const pairs = [
    { from: names[20], to: names[25], network: 'pod', kind: 'slow', since: at(7200), failures: 120, reason: 'slow', error: '' },
    { from: names[10], to: names[13], network: 'pod', kind: 'mtu', since: at(3600), failures: 60, reason: 'MTU', error: 'no answer within 2 s' },
    { from: names[40], to: names[44], network: 'pod', family: 'ipv6', kind: 'mtu', since: at(3000), failures: 5, reason: 'MTU over IPv6', error: '' },
    ...names.filter((x) => x !== down).map((from, i) => ({ from, to: down, network: 'pod', kind: 'unreachable',
      since: at(600 - i), failures: 10, reason: `most peers cannot reach ${down}`, error: 'connect: connection refused' })),
  ];
  const s = structuredClone(base);
  s.nodes = names.map((node) => ({ node, verdict: node === down ? 'mesh_inbound_down' : 'healthy',
    reason: node === down ? 'most peers cannot reach it' : '', agents: [] }));
  const cover = Math.ceil((n - 2) / 7);
  s.mesh = {
    enabled: true, peers: 8, round: 29653920, round_seconds: 60,
    networks: ['pod', 'host'].map((network) => ({ network, members: n, cover_rounds: cover, cover_seconds: cover * 60 })),
    failing_pairs: pairs,
    nodes: names.map((node) => ({ node, verdict: node === down ? 'inbound_down' : 'ok',
      networks: ['pod', 'host'].map((network) => ({ network, membership: 'member', probed: 16, failed: 0,
        probed_by: 16, failed_by: node === down && network === 'pod' ? 16 : 0 })) })),
  };
  if (n <= 300) s.mesh.matrix = { nodes: names, pod, host: pod.map((r) => r.replace(/[umsx]/g, 'o')) };
  return s;
}

async function main() {
  step = 'GET / serves the page';
  const index = await fetch(BASE);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type') || '', /^text\/html/);
  assert.equal(await index.text(), readFileSync(PAGE_FILE, 'utf8'), 'GET / must serve crates/server/assets/status.html');
  log(`GET / serves the page (Content-Security-Policy: ${index.headers.get('content-security-policy') || 'none'})`);

  step = 'the API reaches the staged verdicts';
  let status;
  await until('the staged verdicts in /api/v2/status', async () => {
    status = await apiStatus();
    const got = verdictsOf(status);
    return JSON.stringify(got, Object.keys(got).sort()) === JSON.stringify(EXPECT, Object.keys(EXPECT).sort()) || got;
  }, 20000);
  log(`API: ${Object.entries(verdictsOf(status)).map(([n, v]) => `${JSON.stringify(n)}=${v}`).join(' ')}`);
  for (const v of ['healthy', 'pod_network_down', 'unreachable', 'dns_failure']) {
    assert.ok(Object.values(EXPECT).includes(v), `the staged cluster must include a ${v} node`);
  }
  const wantAuth = Object.fromEntries(Object.keys(authOf(status)).map((a) => [a, a in EXPECT_AUTH ? EXPECT_AUTH[a] : 'ok']));
  assert.deepEqual(authOf(status), wantAuth, 'the server checked each report\'s sender as staged');
  assert.equal(status.summary.unauthenticated, Object.values(EXPECT_AUTH).filter((r) => r != null).length);
  log(`API: report senders ${JSON.stringify(EXPECT_AUTH)}, the others ok; ${status.summary.unauthenticated} unauthenticated`);
  assert.deepEqual(status.mesh.failing_pairs.map(pairKey).sort(), EXPECT_PAIRS.map(pairKey).sort(),
    'the server confirmed the staged failing pairs');
  log(`API: mesh of ${status.mesh.matrix.nodes.length} nodes, ${status.mesh.failing_pairs.length} failing pairs`);

  const profile = mkdtempSync(join(tmpdir(), 'netchecker-ui-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
  });
  try {
    await browserPhases(ctx, status);
    await readTokenPhases(ctx);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

async function browserPhases(ctx, status) {
  const page = ctx.pages()[0] || (await ctx.newPage());
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Failed fetches are expected later (503, server stopped); script errors and CSP refusals are not.
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED/.test(m.text())) problems.push(m.text());
  });
  page.on('dialog', (d) => { problems.push(`dialog opened: ${d.message()}`); d.dismiss(); });
  await page.clock.install();

  step = 'the grid renders every node with its verdict';
  await page.goto(BASE);
  const tiles = page.locator('#grid [data-node]');
  await until('one tile per node', async () => (await tiles.count()) === status.nodes.length || (await tiles.count()));
  const rendered = await tiles.evaluateAll((els) => els.map((e) => ({
    node: e.dataset.node, verdict: e.dataset.verdict, cls: e.className, tag: e.tagName,
    name: e.querySelector('.name').textContent, reason: e.querySelector('.reason').textContent,
    verdictText: e.querySelector('.verdict').textContent,
    title: e.title, color: getComputedStyle(e).borderLeftColor,
  })));
  assert.deepEqual(Object.fromEntries(rendered.map((t) => [t.node, t.verdict])), verdictsOf(status));
  const byNode = Object.fromEntries(status.nodes.map((n) => [n.node, n]));
  for (const t of rendered) {
    const want = CLASS_OF[t.verdict];
    assert.equal(t.tag, 'BUTTON', `tile ${t.node} must be a button (keyboard access)`);
    assert.ok(t.cls.split(' ').includes(want), `tile ${t.node} (${t.verdict}) has class "${t.cls}", want ${want}`);
    const rgb = t.color.match(/\d+/g).map(Number);
    if (HUE[want]) assert.ok(HUE[want](rgb), `tile ${t.node} (${t.verdict}) is coloured ${t.color}, not ${want}`);
    assert.equal(t.name, t.node === '' ? '(no node)' : t.node);
    assert.equal(t.verdictText, verdictText(t.verdict), `tile ${t.node} names its verdict`);
    // Reasons quote report ages, which move between the page's fetch and ours: compare without numbers.
    if (byNode[t.node].reason) assert.equal(noNumbers(t.reason), noNumbers(byNode[t.node].reason), `tile ${t.node} shows its reason`);
    for (const a of byNode[t.node].agents) {
      assert.ok(t.title.includes(a.name) && t.title.includes(a.state), `tooltip of ${t.node} names ${a.name} (${a.state})`);
      if (a.auth) assert.ok(t.title.includes(`report sender: ${AUTH_TEXT[a.auth]}`), `tooltip of ${t.node} says who sent ${a.name}'s report`);
    }
    const path = byNode[t.node].path;
    if (path) {
      const loss = `loss ${(path.loss_ratio * 100).toFixed(1)}% (${path.unanswered} of ${path.attempts} connections`;
      assert.ok(t.title.includes(`path: ${loss}`), `tooltip of ${t.node} gives its loss: ${t.title}`);
      if (path.mesh) {
        const mesh = `mesh probes: loss ${(path.mesh.loss_ratio * 100).toFixed(1)}% (${path.mesh.unanswered} of ${path.mesh.probes} unanswered at first)`;
        assert.ok(t.title.includes(mesh), `tooltip of ${t.node} gives its mesh probes' loss: ${t.title}`);
      }
    }
    if (t.node === 'node-l') {
      assert.ok(path && path.mesh && path.mesh.unanswered === 12 && path.mesh.probes === 96,
        `node-l's mesh figures count its raced probes: ${JSON.stringify(path)}`);
    }
  }
  log(`grid: ${rendered.length} tiles, verdicts and colour classes match the API`);

  step = 'problem nodes first, then by name';
  const healthyFrom = rendered.findIndex((t) => t.verdict === 'healthy');
  assert.ok(healthyFrom > 0, 'some problem node before the healthy ones');
  assert.ok(rendered.slice(healthyFrom).every((t) => t.verdict === 'healthy'), `order: ${rendered.map((t) => t.node)}`);
  for (let i = 1; i < rendered.length; i++) {
    if (rendered[i].verdict === rendered[i - 1].verdict) {
      assert.ok(rendered[i - 1].node < rendered[i].node, `same verdict sorted by name: ${rendered.map((t) => t.node)}`);
    }
  }

  step = 'the summary shows the counts';
  const counts = await summaryCounts(page);
  const s = status.summary;
  assertCounts(counts, s);
  assert.equal(await page.locator('#overall').textContent(), s.healthy ? 'healthy' : 'failing');
  assert.match(await page.locator('#podview').textContent(), /^static: synced$/);
  assert.equal(await page.locator('#grace').count(), 0, 'no "pending since restart" with --startup-grace 0');
  const generated = await page.locator('#generated').textContent();
  assert.ok(/^generated .*\d/.test(generated) && !/Invalid|T\d\d:/.test(generated), `generation time shown as a date: ${generated}`);
  log(`summary: ${JSON.stringify(counts)}`);

  step = 'the summary warns of agents that did not prove who sent their reports';
  const unauth = page.locator('#unauth');
  assert.equal(counts.unauthenticated, String(s.unauthenticated));
  assert.equal(await unauth.textContent(), `${s.unauthenticated} agents did not prove who sent their reports`);
  assert.ok((await unauth.getAttribute('class')).split(' ').includes('sev-warn'), 'the warning has the warning colour');
  assert.ok(await unauth.isVisible());
  log(`summary warning: "${await unauth.textContent()}"`);

  step = 'text from the JSON is rendered as text';
  const xss = rendered.find((t) => t.node.includes('<img'));
  assert.ok(xss, 'the staged cluster has a node whose name contains markup');
  assert.equal(await page.locator('img').count(), 0, 'no element was injected from the JSON');
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected handler ran');
  assert.equal(await page.locator('#grid [data-node] .name').filter({ hasText: '<img src=x' }).count(), 1);

  step = 'clicking a tile reveals its agents';
  const detail = page.locator('#detail');
  assert.equal(await detail.isVisible(), false, 'no detail panel before a click');
  const podDown = status.nodes.find((n) => n.verdict === 'pod_network_down');
  const tileOf = (node) => page.locator(`#grid [data-node="${node.replace(/["\\]/g, '\\$&')}"]`);
  await tileOf(podDown.node).click();
  await detail.waitFor({ state: 'visible' });
  assert.equal(await tileOf(podDown.node).getAttribute('aria-expanded'), 'true');
  const rows = await detail.locator('tbody tr').evaluateAll((els) => els.map((e) => [e.dataset.agent, e.dataset.state]));
  assert.deepEqual(rows, podDown.agents.map((a) => [a.name, a.state]), 'the panel lists the node\'s agents');
  assert.ok(podDown.agents.some((a) => a.auth !== 'ok'), `the screenshot's node has an agent without a verified sender`);
  assert.ok(noNumbers(await detail.textContent()).includes(noNumbers(podDown.reason)), 'the panel shows the reason');
  log(`click on ${podDown.node}: panel lists ${rows.map((r) => r.join('=')).join(', ')}`);

  step = 'the screenshot';
  await page.screenshot({ path: SCREENSHOT });
  log(`screenshot: ${SCREENSHOT}`);

  step = 'the panel says who sent each agent\'s report';
  // Every node's panel: a "report sender" column, warning style for anything but a verified sender.
  const senderCells = () => detail.evaluate((box) => {
    const col = [...box.querySelectorAll('thead th')].findIndex((th) => th.textContent === 'report sender');
    return [...box.querySelectorAll('tbody tr')].map((tr) => {
      const td = tr.children[col];
      return { agent: tr.dataset.agent, auth: tr.dataset.auth, text: td && td.textContent, cls: td && td.className };
    });
  });
  for (const n of status.nodes) {
    await tileOf(n.node).click();
    await until(`the panel of ${n.node}`, async () => (await detail.getAttribute('data-node')) === n.node);
    const cells = await senderCells();
    assert.deepEqual(cells.map((c) => c.agent), n.agents.map((a) => a.name));
    for (const [i, a] of n.agents.entries()) {
      const c = cells[i];
      assert.equal(c.auth, a.auth || '', `${a.name}: data-auth`);
      assert.equal(c.text, a.auth ? AUTH_TEXT[a.auth] : '—', `${a.name}: report sender shown`);
      assert.equal(c.cls, a.auth == null ? '' : a.auth === 'ok' ? 'good' : 'warn', `${a.name}: report sender style`);
    }
  }
  await page.keyboard.press('Escape');
  await detail.waitFor({ state: 'hidden' });
  const warnColour = await page.evaluate(() => {
    const td = document.createElement('td');
    td.className = 'warn';
    document.body.append(td);
    const c = getComputedStyle(td).color;
    td.remove();
    return c;
  });
  assert.ok(HUE['sev-warn'](warnColour.match(/\d+/g).map(Number)), `an unverified sender is amber, got ${warnColour}`);
  log(`panels: report senders ${status.nodes.flatMap((n) => n.agents.filter((a) => a.auth !== 'ok').map((a) => `${a.name}=${a.auth ? AUTH_TEXT[a.auth] : '—'}`)).join(', ')}`);

  step = 'failing probes are highlighted; keyboard opens and closes the panel';
  const probeNode = status.nodes.find((n) => n.verdict === 'probe_failures');
  await tileOf(probeNode.node).focus();
  await page.keyboard.press('Enter');
  await until('the panel to show the probe-failure node', async () => (await detail.getAttribute('data-node')) === probeNode.node);
  const failing = probeNode.agents.flatMap((a) => a.probes.filter((p) => !p.ok).map((p) => p.url));
  assert.ok(failing.length > 0);
  const badProbes = await detail.locator('ul.probes li.bad').allTextContents();
  assert.equal(badProbes.length, failing.length);
  failing.forEach((url, i) => assert.ok(badProbes[i].includes(url), `failing probe ${url} highlighted`));
  assert.equal(await detail.locator('ul.probes li:not(.bad)').count(),
    probeNode.agents.flatMap((a) => a.probes.filter((p) => p.ok)).length, 'passing probes are not highlighted');
  await page.keyboard.press('Escape');
  await detail.waitFor({ state: 'hidden' });
  await tileOf(podDown.node).click();
  await detail.waitFor({ state: 'visible' });

  step = 'the filter box';
  await page.locator('#filter').fill(podDown.node);
  assert.deepEqual(await tiles.evaluateAll((els) => els.map((e) => e.dataset.node)),
    status.nodes.filter((n) => n.node.includes(podDown.node)).map((n) => n.node));
  await page.locator('#filter').fill('no token');
  assert.deepEqual(await tiles.evaluateAll((els) => els.map((e) => e.dataset.node).sort()),
    status.nodes.filter((n) => n.agents.some((a) => a.auth === 'missing')).map((n) => n.node).sort(),
    'the filter finds the nodes whose agents sent no token');
  await page.locator('#filter').fill('');
  assert.equal(await tiles.count(), status.nodes.length);

  step = 'the mesh section lists the failing pairs of the API';
  const mesh = status.mesh;
  const meshBox = page.locator('#mesh');
  assert.equal(await meshBox.isVisible(), true);
  assert.equal(await meshBox.getAttribute('data-state'), 'on');
  const pairRows = () => page.locator('#pairs tbody tr').evaluateAll((els) => els.map((e) => ({
    from: e.dataset.from, to: e.dataset.to, network: e.dataset.network, kind: e.dataset.kind,
    fromText: e.querySelector('.from').textContent, toText: e.querySelector('.to').textContent,
    kindText: e.children[2].textContent, kindColor: getComputedStyle(e.children[2]).color, text: e.textContent,
  })));
  const shownPairs = await pairRows();
  assert.deepEqual(shownPairs.map(pairKey).sort(), mesh.failing_pairs.map(pairKey).sort(), 'one row per failing pair');
  const sinceOf = Object.fromEntries(mesh.failing_pairs.map((p) => [pairKey(p), timeOf(p.since)]));
  const reasonOf = Object.fromEntries(mesh.failing_pairs.map((p) => [pairKey(p), p]));
  for (const [i, r] of shownPairs.entries()) {
    assert.equal(r.fromText, r.from, 'from as text');
    assert.equal(r.toText, r.to, 'to as text');
    assert.equal(r.kindText, KIND_TEXT[r.kind], `kind of ${pairKey(r)}`);
    const p = reasonOf[pairKey(r)];
    assert.ok(r.text.includes(p.reason), `the row of ${pairKey(r)} shows its reason`);
    if (p.error) assert.ok(r.text.includes(`last error: ${p.error}`), `the row of ${pairKey(r)} shows the prober's error`);
    if (i === 0) continue;
    const q = shownPairs[i - 1];
    assert.ok(KIND_RANK[q.kind] < KIND_RANK[r.kind] || (KIND_RANK[q.kind] === KIND_RANK[r.kind]
      && sinceOf[pairKey(q)] <= sinceOf[pairKey(r)]), `worst and oldest first: ${shownPairs.map(pairKey)}`);
  }
  assert.ok(HUE['sev-crit'](rgbOf(shownPairs[0].kindColor)), `"unreachable" in red, got ${shownPairs[0].kindColor}`);
  const hostile = shownPairs.find((r) => r.to.includes('<img'));
  assert.ok(hostile, 'a failing pair names the node whose name contains markup');
  assert.equal(await page.locator('img').count(), 0, 'no element was injected from the mesh');
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no injected handler ran');
  assert.equal(await page.locator('#no-pairs').count(), 0);
  assert.equal(await page.locator('#mesh-peers b').textContent(), String(mesh.peers));
  assert.equal(await page.locator('#mesh-failing b').textContent(), String(mesh.failing_pairs.length));
  assert.equal(await page.locator('#mesh-chip').textContent(), `${mesh.failing_pairs.length} failing pairs`);
  for (const net of mesh.networks) {
    const chip = await page.locator(`#mesh-facts [data-network="${net.network}"]`).textContent();
    assert.ok(chip.includes(`${net.members} members`) && chip.includes(`within ${net.cover_rounds} round`), chip);
  }
  assert.doesNotMatch(await meshBox.innerText(), /undefined|null|NaN/);
  log(`mesh: ${shownPairs.length} failing pairs, worst first: ${shownPairs.map((r) => `${r.from} -> ${r.to} ${r.network} ${r.kind}`).join('; ')}`);

  step = 'the matrix: a cell per pair, coloured by its last result';
  const mx = mesh.matrix;
  const n = mx.nodes.length;
  assert.ok(n >= 6 && mx.nodes.some((x) => x.includes('<img')), `the matrix covers the staged mesh: ${mx.nodes}`);
  const matrixCells = () => page.locator('#matrix .cell').evaluateAll((els) => els.map((e) => ({
    cls: e.className.split(' '), title: e.title, bg: getComputedStyle(e).backgroundColor,
  })));
  const checkMatrix = async (net) => {
    await until(`the ${net} matrix`, async () => (await page.locator('#matrix').getAttribute('data-network')) === net);
    assert.equal(await page.locator(`#matrix-${net}`).getAttribute('aria-pressed'), 'true');
    const cells = await matrixCells();
    assert.equal(cells.length, n * n, `${n}×${n} cells`);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const c = cells[i * n + j];
        const want = CELL_CLASS[mx[net][i][j]];
        assert.ok(c.cls.includes(want), `${net} ${mx.nodes[i]} -> ${mx.nodes[j]}: class ${c.cls}, want ${want}`);
        assert.ok(c.title.startsWith(`${mx.nodes[i]} → ${mx.nodes[j]} on the ${net} network: `), c.title);
      }
    }
    return cells;
  };
  let cells = await checkMatrix('pod');
  const failedAt = mx.pod.join('').indexOf('u');
  const okAt = mx.pod.join('').indexOf('o');
  assert.ok(failedAt >= 0 && okAt >= 0);
  const failedBg = cells[failedAt].bg;
  assert.ok(HUE['sev-crit'](rgbOf(failedBg)), `a failed cell is red, got ${failedBg}`);
  assert.ok(HUE['sev-ok'](rgbOf(cells[okAt].bg)), `an ok cell is green, got ${cells[okAt].bg}`);
  assert.match(cells[failedAt].title, /: unreachable \(failing\)$/);
  const labels = await page.locator('#matrix .lab').allTextContents();
  assert.deepEqual(labels.slice(1), mx.nodes.map((x, i) => `${i + 1} ${x}`), 'rows labelled with the node names, as text');
  await page.locator('#matrix .cell').nth(failedAt).hover();
  assert.equal(await page.locator('#matrix-readout').textContent(), cells[failedAt].title, 'pointing at a cell names it');
  const legend = await page.locator('#matrix-legend [data-cell]').evaluateAll((els) =>
    Object.fromEntries(els.map((e) => [e.dataset.cell, e.querySelector('b').textContent])));
  assert.equal(legend.u, String([...mx.pod.join('')].filter((c) => c === 'u').length), 'the legend counts the unreachable cells');
  await page.locator('#matrix-host').click();
  cells = await checkMatrix('host');
  const slowAt = mx.host.join('').indexOf('s');
  assert.ok(slowAt >= 0 && cells[slowAt].cls.includes('m-slow'), 'the slow host pair');
  await page.locator('#matrix-pod').click();
  await checkMatrix('pod');
  log(`matrix: ${n}×${n} cells per network, classes match the API; a failed cell is ${failedBg}`);

  step = 'a node\'s panel shows its part of the mesh';
  const partitioned = status.nodes.find((x) => x.verdict === 'mesh_partition' && !x.node.includes('<'));
  await tileOf(partitioned.node).click();
  await until(`the panel of ${partitioned.node}`, async () => (await detail.getAttribute('data-node')) === partitioned.node);
  assert.equal(await detail.locator('#detail-mesh').textContent(), 'Mesh: partition');
  const itsPairs = mesh.failing_pairs.filter((p) => p.from === partitioned.node || p.to === partitioned.node);
  assert.deepEqual((await detail.locator('ul.mesh-pairs li').allTextContents()).length, itsPairs.length);
  const nets = await detail.locator('ul.mesh-nets li').evaluateAll((els) => els.map((e) => [e.dataset.network, e.dataset.membership]));
  assert.deepEqual(nets, mesh.nodes.find((x) => x.node === partitioned.node).networks.map((x) => [x.network, x.membership]));
  await tileOf(podDown.node).click();
  await until(`the panel of ${podDown.node}`, async () => (await detail.getAttribute('data-node')) === podDown.node);
  assert.equal(mesh.nodes.find((x) => x.node === podDown.node).verdict, 'no_mesh', `${podDown.node} runs agents without the mesh`);
  assert.equal(await detail.locator('#detail-mesh').textContent(), 'Mesh: no mesh');
  assert.ok((await tileOf(podDown.node).getAttribute('title')).includes('mesh: no mesh'));
  log(`panels: ${partitioned.node} lists ${itsPairs.length} failing pairs; ${podDown.node} has no mesh`);

  await page.locator('#mesh').screenshot({ path: SCREENSHOT_MESH });
  log(`screenshot: ${SCREENSHOT_MESH}`);

  step = 'the page refreshes itself';
  const res = await fetch(new URL(`api/v1/agents/${EXTRA.podname}`, BASE), {
    method: 'POST', body: JSON.stringify(EXTRA), headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 200, 'posting the extra report');
  assert.equal(await tileOf(EXTRA.nodename).count(), 0);
  await page.clock.runFor(REFRESH_MS);
  await tileOf(EXTRA.nodename).waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await tiles.count(), status.nodes.length + 1);
  assert.equal(await detail.getAttribute('data-node'), podDown.node, 'the open panel survives a refresh');
  assert.equal(await page.locator('#unauth b').textContent(), String(s.unauthenticated + 1),
    'the extra report, sent without a token, counts as unauthenticated');
  log(`refresh: ${EXTRA.nodename} appeared after ${REFRESH_MS} ms of page time`);

  step = 'pod view freshness and the startup grace in the summary';
  // A cluster answer the local server cannot produce (no Kubernetes): the real answer, restamped.
  const restarted = await apiStatus();
  restarted.summary.in_startup_grace = true;
  restarted.summary.pod_view = { source: 'kubernetes', synced: true, stale: true, age_seconds: 75 };
  // With Kubernetes, a valid ServiceAccount token of another pod: "forbidden"; the rest verified.
  const podDownAgents = restarted.nodes.find((n) => n.node === podDown.node).agents;
  for (const n of restarted.nodes) for (const a of n.agents) a.auth = a.auth == null ? null : 'ok';
  podDownAgents[0].auth = 'forbidden';
  restarted.summary.unauthenticated = 1;
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: restarted }));
  await page.clock.runFor(REFRESH_MS);
  await page.locator('#grace').waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await page.locator('#grace').textContent(), 'pending since restart');
  assert.equal(await page.locator('#podview').textContent(), 'kubernetes: stale for 75 s');
  assert.equal(await unauth.textContent(), '1 agent did not prove who sent its reports');
  assert.deepEqual((await senderCells()).map((c) => [c.agent, c.text, c.cls]),
    podDownAgents.map((a, i) => [a.name, i === 0 ? 'token of another pod' : 'verified', i === 0 ? 'warn' : 'good']));
  await page.unroute('**/api/v2/status');
  log('summary shows "pending since restart", a stale pod view with its age, one unverified sender (token of another pod)');

  step = 'nothing about report senders when the server does not check them';
  const unchecked = structuredClone(restarted);
  for (const n of unchecked.nodes) for (const a of n.agents) a.auth = null;
  unchecked.summary.unauthenticated = 0;
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: unchecked }));
  await page.clock.runFor(REFRESH_MS);
  await unauth.waitFor({ state: 'detached', timeout: 5000 });
  assert.ok(!(await detail.locator('thead').textContent()).includes('report sender'), 'no report sender column');
  assert.ok(!(await tileOf(podDown.node).getAttribute('title')).includes('report sender'));
  assert.doesNotMatch(await page.locator('#summary').innerText(), /null|undefined|report senders/i);
  // Checked and all verified: said so, without a warning.
  const verified = structuredClone(restarted);
  for (const n of verified.nodes) for (const a of n.agents) a.auth = a.last_report_age_seconds == null ? null : 'ok';
  verified.summary.unauthenticated = 0;
  await page.unroute('**/api/v2/status');
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: verified }));
  await page.clock.runFor(REFRESH_MS);
  await unauth.waitFor({ state: 'attached', timeout: 5000 });
  assert.equal(await unauth.textContent(), 'all verified');
  assert.ok((await unauth.getAttribute('class')).split(' ').includes('sev-ok'));
  await page.unroute('**/api/v2/status');
  log('unchecked: no report sender column or summary entry; all verified: "all verified"');

  step = 'a mesh of 300 nodes: the whole matrix in small cells, in its own scroll box';
  // Crafted (the local server cannot stage 300 agents quickly): node 100 is cut off, so
  // every other node fails to reach it (a red column); each node probed its 16 ring
  // successors lately, the rest is not probed lately; one MTU, one slow and one
  // unconfirmed cell.
  const big = bigMesh(await apiStatus(), 300);
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: big }));
  const started = Date.now();
  await page.clock.runFor(REFRESH_MS);
  await until('the 300-node matrix', async () => (await page.locator('#matrix').getAttribute('data-nodes')) === '300'
    || (await page.locator('#matrix').getAttribute('data-nodes')), 20000);
  const bigCells = page.locator('#matrix .cell');
  assert.equal(await bigCells.count(), 300 * 300);
  log(`300 nodes: ${300 * 300} cells on screen ${Date.now() - started} ms after the poll`);
  const layout = await page.evaluate(() => {
    const box = document.querySelector('.matrix-box');
    const cell = document.querySelector('#matrix .cell').getBoundingClientRect();
    return { cell: [cell.width, cell.height], client: [box.clientWidth, box.clientHeight],
      scroll: [box.scrollWidth, box.scrollHeight], view: [innerWidth, innerHeight],
      labels: document.querySelectorAll('#matrix .lab, #matrix .col').length };
  });
  assert.ok(layout.cell[0] <= 5 && layout.cell[0] >= 3 && layout.cell[1] === layout.cell[0], `small square cells: ${layout.cell}`);
  assert.ok(layout.client[0] <= layout.view[0] && layout.client[1] <= layout.view[1], `the box fits the window: ${JSON.stringify(layout)}`);
  assert.ok(layout.scroll[1] > layout.client[1], 'the rest scrolls inside the box');
  assert.equal(layout.labels, 0, 'no labels at this size: the tooltip names the pair');
  const column = await page.evaluate(() => {
    const all = document.querySelectorAll('#matrix .cell');
    return Array.from({ length: 300 }, (_, i) => all[i * 300 + 99].className);
  });
  assert.deepEqual(column.filter((c, i) => i !== 99 && !c.includes('m-unreachable')), [], 'the red column of the node cut off');
  assert.equal(await bigCells.nth(10 * 300 + 13).getAttribute('class'), 'cell m-mtu');
  assert.equal(await bigCells.nth(30 * 300 + 37).getAttribute('class'), 'cell m-once');
  assert.equal(await bigCells.nth(30 * 300 + 37).getAttribute('title'), 'worker-031 → worker-038 on the pod network: failed once, not confirmed yet');
  assert.equal(await page.locator('#matrix-legend [data-cell="u"] b').textContent(), '299');

  step = 'a mesh of 300 nodes: the failing pairs, worst and oldest first, the first ones until asked for all';
  const bigPairs = page.locator('#pairs tbody tr');
  assert.equal(await bigPairs.count(), PAIRS_SHOWN);
  assert.equal(await page.locator('#pairs-count').textContent(), `(${big.mesh.failing_pairs.length})`);
  assert.equal(await page.locator('#pairs-more').textContent(), `show all ${big.mesh.failing_pairs.length} failing pairs`);
  await page.locator('#pairs-more').click();
  assert.equal(await bigPairs.count(), big.mesh.failing_pairs.length);
  const order = await pairRows();
  assert.deepEqual(order.slice(0, 2).map((r) => r.from), ['worker-001', 'worker-002'], 'the oldest unreachable pair first');
  assert.deepEqual(order.slice(-2).map((r) => r.kind), ['mtu', 'slow'], 'MTU, then slow, after every unreachable pair');
  assert.deepEqual(await page.locator('#pairs tbody tr[data-family="ipv6"] td:nth-child(2)').allTextContents(),
    ['pod over IPv6'], 'a pair failing over IPv6 (of a dual-stack mesh) says so');
  await page.locator('#pairs-more').click();
  assert.equal(await bigPairs.count(), PAIRS_SHOWN);

  step = 'a mesh of 300 nodes: a poll changes only the cells that changed';
  await page.evaluate(() => { window.__cell = document.querySelectorAll('#matrix .cell')[1]; });
  const healed = structuredClone(big);
  healed.mesh.matrix.pod[0] = `-u${healed.mesh.matrix.pod[0].slice(2)}`;
  await page.unroute('**/api/v2/status');
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: healed }));
  await page.clock.runFor(REFRESH_MS);
  await until('the changed cell', async () => (await bigCells.nth(1).getAttribute('class')) === 'cell m-unreachable'
    || (await bigCells.nth(1).getAttribute('class')));
  assert.ok(await page.evaluate(() => window.__cell === document.querySelectorAll('#matrix .cell')[1]), 'the same cell, patched');
  log('300 nodes: small cells in a scroll box, a red column, 20 failing pairs until "show all"; a poll patches the cells');

  step = 'a mesh of 301 nodes: no matrix, the note says why';
  await page.unroute('**/api/v2/status');
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: bigMesh(big, 301) }));
  await page.clock.runFor(REFRESH_MS);
  await page.locator('#matrix-note').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await page.locator('#matrix-note').textContent(),
    'The matrix is shown up to 300 nodes; 301 take part in this mesh. The failing pairs above list every problem.');
  assert.equal(await page.locator('#matrix-view').isVisible(), false);
  assert.equal(await bigCells.count(), 0);
  assert.equal(await bigPairs.count(), PAIRS_SHOWN, 'the failing pairs are listed at any size');

  step = 'a mesh without failing pairs, and a server without the mesh';
  const calm = await apiStatus();
  calm.mesh.failing_pairs = [];
  calm.mesh.matrix.pod = calm.mesh.matrix.pod.map((r) => r.replace(/[umsx]/g, 'o'));
  calm.mesh.matrix.host = calm.mesh.matrix.host.map((r) => r.replace(/[umsx]/g, 'o'));
  await page.unroute('**/api/v2/status');
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: calm }));
  await page.clock.runFor(REFRESH_MS);
  await page.locator('#no-pairs').waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await page.locator('#no-pairs').textContent(), /^No failing pairs/);
  assert.equal(await page.locator('#mesh-chip').textContent(), '0 failing pairs');
  assert.equal(await page.locator('#matrix .m-unreachable').count(), 0);
  const old = await apiStatus();
  delete old.mesh;
  await page.unroute('**/api/v2/status');
  await page.route('**/api/v2/status', (route) => route.fulfill({ json: old }));
  await page.clock.runFor(REFRESH_MS);
  await until('the mesh section of a server without the mesh', async () => (await meshBox.getAttribute('data-state')) === 'absent');
  assert.equal(await page.locator('#mesh-off').textContent(), 'This server does not report a node-to-node mesh (a version without it).');
  assert.equal(await page.locator('#mesh-on').isVisible(), false);
  assert.equal(await page.locator('#mesh-chip').textContent(), 'not reported by this server');
  assert.equal(await page.locator('#matrix .cell').count(), 0);
  await page.unroute('**/api/v2/status');
  await page.clock.runFor(REFRESH_MS);
  await until('the mesh of the server again', async () => (await meshBox.getAttribute('data-state')) === 'on'
    && (await page.locator('#matrix .cell').count()) === n * n);
  log('no failing pairs: "No failing pairs"; without the mesh: said so; the real mesh is back');

  step = 'dark mode';
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await page.evaluate(() => [getComputedStyle(document.body).backgroundColor,
    getComputedStyle(document.querySelector('#grid .sev-crit')).borderLeftColor,
    getComputedStyle(document.querySelector('#matrix .m-unreachable')).backgroundColor]);
  const [bg, crit, failedCell] = dark.map((c) => c.match(/\d+/g).map(Number));
  assert.ok(bg.every((v) => v < 60), `dark background, got ${dark[0]}`);
  assert.ok(HUE['sev-crit'](crit), `red stays red in dark mode, got ${dark[1]}`);
  assert.ok(HUE['sev-crit'](failedCell), `a failed matrix cell stays red in dark mode, got ${dark[2]}`);
  await page.emulateMedia({ colorScheme: 'light' });

  step = '503: the page says why and keeps the last data';
  const notSynced = 'the pod view has not synced with the Kubernetes API';
  await page.route('**/api/v2/status', (route) =>
    route.fulfill({ status: 503, contentType: 'text/plain; charset=utf-8', body: `${notSynced}\n` }));
  await page.clock.runFor(REFRESH_MS);
  const banner = page.locator('#banner');
  await banner.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await banner.getAttribute('data-kind'), 'unsynced');
  assert.ok((await banner.textContent()).includes(notSynced), await banner.textContent());
  assert.equal(await tiles.count(), status.nodes.length + 1);
  log(`503: banner "${await banner.textContent()}"`);
  await page.unroute('**/api/v2/status');
  await page.clock.runFor(REFRESH_MS);
  await banner.waitFor({ state: 'hidden', timeout: 5000 });
  assert.equal(await page.locator('#grid.stale').count(), 0);

  step = '503 with Retry-After (busy): transient, the data stays as it is';
  const busy = 'another status answer is being sent; retry';
  await page.route('**/api/v2/status', (route) => route.fulfill({
    status: 503, headers: { 'retry-after': '1' }, contentType: 'text/plain; charset=utf-8', body: `${busy}\n`,
  }));
  await page.clock.runFor(REFRESH_MS);
  await banner.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await banner.getAttribute('data-kind'), 'busy', 'a busy server is not reported as down or unsynced');
  assert.ok((await banner.textContent()).includes(busy), await banner.textContent());
  assert.equal(await tiles.count(), status.nodes.length + 1, 'the last data stays');
  assert.equal(await page.locator('#grid.stale').count(), 0, 'one busy answer does not fade the data');
  assert.equal(await page.locator('#summary').isVisible(), true);
  log(`busy: banner "${await banner.textContent()}"`);
  await page.unroute('**/api/v2/status');
  await page.clock.runFor(REFRESH_MS);
  await banner.waitFor({ state: 'hidden', timeout: 5000 });

  step = 'server stopped: error banner, last data kept';
  process.kill(SERVER_PID, 'SIGTERM');
  await until('the server to stop answering', async () => {
    try { await fetch(new URL('healthz', BASE)); return 'still answering'; } catch { return true; }
  }, 20000);
  await page.clock.runFor(REFRESH_MS);
  await banner.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await banner.getAttribute('data-kind'), 'error');
  assert.match(await banner.textContent(), /Cannot load api\/v2\/status/);
  assert.equal(await tiles.count(), status.nodes.length + 1, 'the last data stays on screen');
  assert.ok(await page.locator('#grid.stale').count(), 'the kept data is marked stale');
  assert.ok(await page.locator('#mesh.stale').count(), 'the kept mesh is marked stale');
  log(`server stopped: banner "${await banner.textContent()}"`);

  assert.deepEqual(problems, [], 'no script errors, CSP refusals or dialogs');
  await page.close();
}

// The second server, started with --read-token-file: the page asks for the token.
async function readTokenPhases(ctx) {
  const bearer = { authorization: `Bearer ${READ_TOKEN}` };
  step = 'the second server wants the read token';
  const open = await fetch(new URL('api/v2/status', LOCKED));
  assert.equal(open.status, 401);
  assert.match(open.headers.get('www-authenticate') || '', /^Bearer realm="netchecker"/);
  const index = await fetch(LOCKED);
  assert.equal(index.status, 200, 'the page itself needs no token');
  const status = await apiStatus(LOCKED, bearer);
  assert.ok(status.nodes.length > 0);

  const page = await ctx.newPage();
  const problems = [];
  const consoled = [];
  const sent = []; // the Authorization header of each status request, '' for none
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    consoled.push(m.text());
    // 401s are expected here; script errors and CSP refusals are not.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  page.on('dialog', (d) => { problems.push(`dialog opened: ${d.message()}`); d.dismiss(); });
  page.on('request', (r) => { if (r.url().endsWith('/api/v2/status')) sent.push(r.headers().authorization || ''); });
  const login = page.locator('#login');
  const loginError = page.locator('#login-error');
  const input = page.locator('#token');
  const tiles = page.locator('#grid [data-node]');
  const stored = () => page.evaluate(() => ({
    session: Object.keys(sessionStorage).map((k) => [k, sessionStorage.getItem(k)]),
    local: localStorage.length,
  }));
  const tokenNowhere = async (what) => {
    const seen = await page.evaluate((t) => ({
      text: document.body.innerText.includes(t),
      html: document.documentElement.outerHTML.includes(t),
      input: document.getElementById('token').value.includes(t),
      title: document.title.includes(t),
    }), READ_TOKEN);
    assert.deepEqual(seen, { text: false, html: false, input: false, title: false }, `${what}: the token is not in the DOM`);
    assert.ok(!page.url().includes(READ_TOKEN) && page.url() === LOCKED, `${what}: the URL is ${page.url()}`);
    assert.ok(!consoled.some((m) => m.includes(READ_TOKEN)), `${what}: the token is not in the console`);
  };

  step = 'read token: the page asks for it on 401';
  await page.goto(LOCKED);
  await login.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await login.textContent(), /--read-token-file/);
  assert.equal(await input.getAttribute('type'), 'password');
  assert.equal(await input.getAttribute('name'), null, 'the input has no name: no submission can carry it');
  assert.equal(await loginError.isVisible(), false, 'no error before a token was tried');
  assert.equal(await tiles.count(), 0);
  assert.equal(await page.locator('#summary').isVisible(), false);
  assert.equal(await page.locator('#forget').isVisible(), false);
  assert.equal(await page.locator('#banner').isVisible(), false, 'a 401 is not shown as the server being down');
  assert.equal(await page.locator('#generated').textContent(), 'read token needed');
  assert.deepEqual(sent, [''], 'the first request carries no token');
  log('401: the page asks for the read token');

  step = 'read token: a wrong one shows an error and the form again';
  await input.fill('not-the-read-token');
  await input.press('Enter');
  await loginError.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await loginError.textContent(), /refused this token \(HTTP 401\)/);
  assert.equal(await login.isVisible(), true);
  assert.equal(await input.inputValue(), '', 'the input is emptied');
  assert.equal(sent.at(-1), 'Bearer not-the-read-token');
  assert.deepEqual((await stored()).session, [], 'a refused token is not kept');
  assert.ok(!(await page.evaluate(() => document.documentElement.outerHTML.includes('not-the-read-token'))));
  assert.equal(page.url(), LOCKED, 'submitting did not navigate');
  log(`wrong token: "${await loginError.textContent()}"`);

  step = 'read token: the right one shows the grid with the counts of the API';
  await input.fill(READ_TOKEN);
  await page.locator('#login button[type=submit]').click();
  await until('one tile per node', async () => (await tiles.count()) === status.nodes.length || (await tiles.count()));
  assert.equal(await login.isVisible(), false);
  assert.equal(await page.locator('#forget').isVisible(), true);
  assert.equal(sent.at(-1), `Bearer ${READ_TOKEN}`);
  assert.deepEqual(Object.fromEntries(await tiles.evaluateAll((els) => els.map((e) => [e.dataset.node, e.dataset.verdict]))),
    verdictsOf(status));
  assertCounts(await summaryCounts(page), status.summary);
  assert.equal(await page.locator('#unauth').count(), 0, 'this server does not check report senders');
  assert.equal(await page.locator('#mesh').getAttribute('data-state'), 'off', 'this server runs --mesh-peers 0');
  assert.equal(await page.locator('#mesh-off').textContent(),
    'The node-to-node mesh is off: the server runs with --mesh-peers 0, so agents probe only the server.');
  assert.equal(await page.locator('#mesh-on').isVisible(), false);
  assert.equal(await page.locator('#mesh-chip').textContent(), 'off');
  assert.doesNotMatch(await page.locator('#summary').innerText(), /null|undefined|report senders/i);
  const kept = await stored();
  assert.equal(kept.local, 0, 'nothing in localStorage');
  assert.equal(kept.session.length, 1);
  assert.equal(kept.session[0][1], READ_TOKEN, 'the token is in sessionStorage');
  await tokenNowhere('after the right token');
  log(`right token: ${await tiles.count()} tiles, counts match the API; kept in sessionStorage only`);

  step = 'read token: every poll sends it';
  const before = sent.length;
  await page.clock.runFor(REFRESH_MS);
  await until('the next poll', async () => sent.length > before || sent.length);
  assert.equal(sent.at(-1), `Bearer ${READ_TOKEN}`);

  step = 'read token: a reload keeps it (same tab, same session)';
  await page.reload();
  await until('the grid after the reload', async () => (await tiles.count()) === status.nodes.length || (await tiles.count()));
  assert.equal(await login.isVisible(), false);
  assert.equal(sent.at(-1), `Bearer ${READ_TOKEN}`);
  await tokenNowhere('after the reload');

  step = 'read token: another tab asks again (sessionStorage is per tab)';
  const other = await ctx.newPage();
  await other.goto(LOCKED);
  await other.locator('#login').waitFor({ state: 'visible', timeout: 5000 });
  await other.close();
  log('reload keeps the token; a new tab asks for it');

  step = 'read token: a 401 that is not netchecker\'s drops the token and says so';
  await page.route('**/api/v2/status', (route) => route.fulfill({ status: 401, contentType: 'text/plain', body: 'Unauthorized\n' }));
  await page.clock.runFor(REFRESH_MS);
  await loginError.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await loginError.textContent(), /not from netchecker/);
  assert.equal(await tiles.count(), 0, 'no data is left on screen without a token');
  assert.deepEqual((await stored()).session, []);
  await page.unroute('**/api/v2/status');
  await input.fill(READ_TOKEN);
  await input.press('Enter');
  await until('the grid again', async () => (await tiles.count()) === status.nodes.length || (await tiles.count()));

  step = 'read token: a token removed on the way (as kubectl proxy does) is told from a wrong one';
  await page.route('**/api/v2/status', (route) => {
    const headers = { ...route.request().headers() };
    delete headers.authorization;
    return route.continue({ headers });
  });
  await page.clock.runFor(REFRESH_MS);
  await loginError.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await loginError.textContent(), /did not reach the server/);
  assert.equal(await tiles.count(), 0);
  await page.unroute('**/api/v2/status');
  await input.fill(READ_TOKEN);
  await input.press('Enter');
  await until('the grid again', async () => (await tiles.count()) === status.nodes.length || (await tiles.count()));
  log('a 401 from elsewhere and a token that did not arrive each get their own message');

  step = 'read token: "forget token" brings the prompt back';
  await page.locator('#forget').click();
  await login.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await tiles.count(), 0);
  assert.equal(await page.locator('#summary').isVisible(), false);
  assert.equal(await page.locator('#forget').isVisible(), false);
  assert.equal(await loginError.isVisible(), false);
  assert.equal(await page.locator('#mesh').isVisible(), false, 'no mesh without a token');
  assert.deepEqual((await stored()).session, [], 'forgotten: nothing in sessionStorage');
  await until('a request without the token', async () => sent.at(-1) === '' || sent.at(-1));
  await page.reload();
  await login.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(sent.at(-1), '', 'after a reload the token stays forgotten');
  await tokenNowhere('after forgetting');
  assert.ok(consoled.some((m) => m.includes('401')), 'the console was listened to (it reports the 401s)');
  log('forget: the prompt is back, nothing stored');

  assert.deepEqual(problems, [], 'no script errors, CSP refusals or dialogs');
  await page.close();
}

main().then(() => log('all status page checks passed'), (err) => {
  console.error(`test-ui: FAILED at "${step}": ${err.stack || err}`);
  process.exit(1);
});
