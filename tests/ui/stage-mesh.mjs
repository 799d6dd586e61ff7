// Stages the node-to-node mesh on a real netchecker-server for the status
// page test: plays the agents' side of the mesh protocol (crates/wire/src/mesh.rs)
// until the server has confirmed exactly the planned failing pairs.
//
// hack/test-ui.sh runs it with:
//   BASE_URL      http://127.0.0.1:PORT/ (a server started with --mesh-peers and --mesh-round 1)
//   REPORT_TOKEN  the agents' bearer token (empty: none)
//   MESH_PLAN     {"agents": [{"name": POD, "node": NODE}, ...],
//                  "fail": [{"from": NODE, "to": NODE, "network": "pod"|"host",
//                            "outcome": "connect_failed"|"transfer_failed"|"slow", "error": TEXT}, ...]}
// Every agent reports (interval 600 s, so it stays on time for the whole test)
// with the header netchecker-mesh: 1 and the results of the peers the server
// handed it in the answer to its previous report: the planned outcome for a
// planned pair, a fast success otherwise. A pod whose name contains "hostnet"
// is on the host network. It stops once the planned pairs, and only they, are
// failing, and every ordered pair had the time to be probed (the cover rounds
// of the larger network, plus one). Prints the failing pairs.
const env = (name) => {
  const v = process.env[name];
  if (v == null) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('BASE_URL');
const TOKEN = env('REPORT_TOKEN');
const PLAN = JSON.parse(env('MESH_PLAN'));
const TIMEOUT_MS = 60000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const networkOf = (pod) => (pod.includes('hostnet') ? 'host' : 'pod');
const key = (from, to, network) => JSON.stringify([from, to, network]);
const planned = new Map(PLAN.fail.map((f) => [key(f.from, f.to, f.network), f]));
// The kind the server must confirm for each planned outcome.
const KIND = { connect_failed: 'unreachable', bad_answer: 'unreachable', transfer_failed: 'mtu', slow: 'slow' };

function result(agent, peer) {
  const f = planned.get(key(agent.node, peer.node, networkOf(agent.name)));
  const base = { node: peer.node, address: peer.address, padding: 1500 };
  if (!f) return { ...base, outcome: 'ok', connect_us: 150, transfer_us: 300, total_us: 450 };
  switch (f.outcome) {
    case 'slow':
      return { ...base, outcome: 'ok', connect_us: 900000, transfer_us: 600000, total_us: 1500000 };
    case 'transfer_failed':
      return { ...base, outcome: 'transfer_failed', connect_us: 200, transfer_us: 0, total_us: 2000000, error: f.error };
    default:
      return { ...base, outcome: f.outcome, connect_us: 0, transfer_us: 0, total_us: 2000000, error: f.error };
  }
}

// One report as the agent sends it, with the mesh part.
function report(agent, i, last) {
  return {
    report_interval: 600,
    nodename: agent.node,
    podname: agent.name,
    hostdate: new Date().toISOString(),
    uptime: 1000,
    nslookup: { 'netchecker-service': ['10.233.0.10'] },
    ips: { eth0: ['10.233.64.5/24'] },
    network_probes: [{
      URL: 'http://netchecker-service:8081/api/v1/ping', ConnectionResult: 1, HTTPCode: 200, Total: 3,
      ContentTransfer: 0, TCPConnection: 1, DNSLookup: 1, Connect: 1, ServerProcessing: 1,
    }],
    mesh: {
      port: 8083,
      addresses: [`198.18.${networkOf(agent.name) === 'host' ? 1 : 0}.${i + 1}`],
      round: last ? last.round : 0,
      results: last ? last.peers.map((p) => result(agent, p)) : [],
    },
  };
}

async function post(agent, body) {
  const headers = { 'content-type': 'application/json', 'netchecker-mesh': '1' };
  if (TOKEN) headers.authorization = `Bearer ${TOKEN}`;
  const res = await fetch(new URL(`api/v1/agents/${encodeURIComponent(agent.name)}`, BASE), {
    method: 'POST', headers, body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST report of ${agent.name}: HTTP ${res.status}: ${text}`);
  if (!text) throw new Error(`POST report of ${agent.name}: no mesh answer (is the mesh on?)`);
  return JSON.parse(text).mesh;
}

async function main() {
  const last = new Map();
  const rounds = new Set();
  const deadline = Date.now() + TIMEOUT_MS;
  let status;
  for (;;) {
    for (const [i, agent] of PLAN.agents.entries()) {
      const answer = await post(agent, report(agent, i, last.get(agent.name)));
      last.set(agent.name, answer);
      if (answer.peers.length) rounds.add(answer.round);
    }
    const res = await fetch(new URL('api/v2/status', BASE));
    status = await res.json();
    const mesh = status.mesh || {};
    const failing = (mesh.failing_pairs || []).map((p) => `${key(p.from, p.to, p.network)} ${p.kind}`).sort();
    const want = PLAN.fail.map((f) => `${key(f.from, f.to, f.network)} ${KIND[f.outcome]}`).sort();
    const cover = Math.max(0, ...(mesh.networks || []).map((n) => n.cover_rounds || 0));
    if (JSON.stringify(failing) === JSON.stringify(want) && cover > 0 && rounds.size > cover) break;
    if (Date.now() > deadline) {
      throw new Error(`the planned failing pairs were not confirmed within ${TIMEOUT_MS} ms: want ${want}, `
        + `have ${failing} after ${rounds.size} rounds (cover ${cover})`);
    }
    await sleep(250);
  }
  for (const p of status.mesh.failing_pairs) {
    console.log(`stage-mesh: failing ${p.network}: ${JSON.stringify(p.from)} -> ${JSON.stringify(p.to)} ${p.kind}`);
  }
  console.log(`stage-mesh: ${rounds.size} rounds; members ${status.mesh.networks.map((n) => `${n.network} ${n.members}`).join(', ')}`);
}

main().catch((err) => {
  console.error(`stage-mesh: FAILED: ${err.stack || err}`);
  process.exit(1);
});
