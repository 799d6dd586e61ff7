//! Cost of one agent round with the mesh on, for K = 0, 8 and 32 peers on
//! loopback: the agent's CPU time per round, its peak resident memory, and
//! the TCP payload it sends and receives per round.
//!
//! `cargo run --release -p netchecker-agent --example mesh_round_cost -- --rounds 300`
//!
//! For each K two child processes run (this binary again, in another
//! mode): a *server* process holding a fake netchecker server that answers
//! every report with a round of K peers, and the K peers (one probe
//! listener of the agent's own code behind K ports); and an *agent*
//! process running the agent's rounds back to back (as
//! `examples/round_cost.rs` does, so that the figure is the agent's own
//! work and not what a virtual machine charges for waking from idle), with
//! its own probe listener. After answering each report the server process
//! also probes the agent K times, so the agent answers as many probes as it
//! sends, as it does on average in a mesh where each agent probes K peers.
//! Every connection of the agent passes through a counting relay in the
//! server process: the bytes are TCP payload (HTTP heads and bodies), both
//! directions, reports, pings and probes alike.
//!
//! CPU is the on-CPU time of all threads of the agent process
//! (`/proc/self/task/*/schedstat`) over the measured rounds, after a
//! warm-up of 10; memory is its `VmHWM`. Padding 1500 (the default).

#[path = "common/proc_self.rs"]
mod proc_self;
use proc_self::{on_cpu_ns, status_kib};

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use netchecker_agent::mesh::{Listener, probe};
use netchecker_agent::{Agent, Args, Config};
use netchecker_wire::AgentReport;
use netchecker_wire::mesh::{MeshAnswer, MeshRound, Peer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const WARM_UP: u32 = 10;
const PADDING: usize = 1500;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let rounds: u32 = arg("--rounds").map_or(300, |n| n.parse().expect("--rounds N"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(k) = arg("--serve") {
        runtime.block_on(serve(k.parse().expect("--serve K")));
    } else if let Some(server) = arg("--agent") {
        runtime.block_on(agent(&server, rounds));
    } else {
        for k in [0, 8, 32] {
            orchestrate(k, rounds);
        }
    }
}

/// One K: start the server process, then the agent process, and print.
fn orchestrate(k: usize, rounds: u32) {
    let me = std::env::current_exe().expect("own path");
    let mut server = Command::new(&me)
        .args(["--serve", &k.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server process");
    let mut server_out = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = server_out.next().unwrap().unwrap();
    let agent = Command::new(&me)
        .args(["--agent", &addr, "--rounds", &rounds.to_string()])
        .env("MY_POD_NAME", "netchecker-agent-mesh-cost")
        .output()
        .expect("agent process");
    assert!(agent.status.success(), "{agent:?}");
    let figures = String::from_utf8(agent.stdout).unwrap();
    let f: Vec<f64> = figures
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (all_rounds, cpu_ms, rss_mib, probes, failed) = (f[0], f[1], f[2], f[3], f[4]);
    // Closing its stdin asks the server process for its counts.
    drop(server.stdin.take());
    let counts = server_out.next().unwrap().unwrap();
    let c: Vec<f64> = counts
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    server.wait().unwrap();
    let per_round = |v: f64| v / all_rounds / 1024.0;
    println!(
        "K={k:<2}: CPU {cpu_ms:.2} ms per round, peak RSS {rss_mib:.1} MiB, per round \
         {:.1} KiB out / {:.1} KiB in (report and ping {:.1}/{:.1}, probing peers \
         {:.1}/{:.1}, answering peers {:.1}/{:.1}); {probes:.0} probes, {failed:.0} failed",
        per_round(c[0] + c[2] + c[4]),
        per_round(c[1] + c[3] + c[5]),
        per_round(c[0]),
        per_round(c[1]),
        per_round(c[2]),
        per_round(c[3]),
        per_round(c[4]),
        per_round(c[5]),
    );
}

/// Bytes through relays: from the agent, to the agent.
#[derive(Default)]
struct Flow {
    from_agent: AtomicU64,
    to_agent: AtomicU64,
}

/// Accept on `listener` and pipe each connection to `target`, counting;
/// `agent_dials` says which end is the agent.
async fn relay(listener: TcpListener, target: SocketAddr, flow: Arc<Flow>, agent_dials: bool) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let flow = flow.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            inbound.set_nodelay(true).ok();
            outbound.set_nodelay(true).ok();
            if let Ok((there, back)) =
                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await
            {
                let (from, to) = if agent_dials {
                    (there, back)
                } else {
                    (back, there)
                };
                flow.from_agent.fetch_add(from, Ordering::Relaxed);
                flow.to_agent.fetch_add(to, Ordering::Relaxed);
            }
        });
    }
}

async fn relayed(target: SocketAddr, flow: &Arc<Flow>, agent_dials: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(relay(listener, target, flow.clone(), agent_dials));
    addr
}

/// The server process: a fake netchecker server and K peers, all behind
/// counting relays; prints the server's address, then (at stdin EOF) the
/// byte counts.
async fn serve(k: usize) {
    let (reports, probes_out, probes_in): (Arc<Flow>, Arc<Flow>, Arc<Flow>) = Default::default();
    let peer_listener = Listener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peer_addr = peer_listener.local_addrs()[0];
    tokio::spawn(peer_listener.serve(CancellationToken::new()));
    let mut peers = Vec::new();
    for i in 0..k {
        let addr = relayed(peer_addr, &probes_out, true).await;
        peers.push(Peer {
            node: format!("node-{i}"),
            address: addr.ip().to_string(),
            port: addr.port(),
        });
    }
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let public = relayed(server_addr, &reports, true).await;
    println!("{public}");
    std::io::stdout().flush().unwrap();
    let answer = Arc::new(peers);
    let inbound = Arc::new(tokio::sync::OnceCell::new());
    let probes_in2 = Arc::clone(&probes_in);
    tokio::spawn(async move {
        let mut round = 0u64;
        while let Ok((stream, _)) = server.accept().await {
            round += 1;
            let (answer, inbound, probes_in) =
                (answer.clone(), inbound.clone(), probes_in2.clone());
            tokio::spawn(report_server(stream, round, answer, inbound, probes_in));
        }
    });
    // Until the orchestrator closes stdin.
    tokio::task::spawn_blocking(|| std::io::stdin().lines().count())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let count = |f: &Arc<Flow>| {
        format!(
            "{} {}",
            f.from_agent.load(Ordering::Relaxed),
            f.to_agent.load(Ordering::Relaxed)
        )
    };
    println!(
        "{} {} {}",
        count(&reports),
        count(&probes_out),
        count(&probes_in)
    );
}

/// One connection to the fake server: a ping (200, empty) or a report
/// (200 and a mesh round of all the peers, then as many probes of the
/// agent's own listener, through a relay).
async fn report_server(
    stream: TcpStream,
    round: u64,
    peers: Arc<Vec<Peer>>,
    inbound: Arc<tokio::sync::OnceCell<Peer>>,
    probes_in: Arc<Flow>,
) {
    let mut reader = BufReader::new(stream);
    let (mut request_line, mut len) = (String::new(), 0usize);
    reader.read_line(&mut request_line).await.unwrap_or(0);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).await.is_err() {
        return;
    }
    let mut stream = reader.into_inner();
    let report = request_line
        .starts_with("POST /api/v1/agents/")
        .then(|| serde_json::from_slice::<AgentReport>(&body).ok())
        .flatten();
    let answer = match &report {
        Some(_) => serde_json::to_string(&MeshAnswer {
            mesh: MeshRound {
                round,
                timeout_ms: 2000,
                peers: peers.to_vec(),
            },
        })
        .unwrap(),
        None => String::new(),
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(answer.as_bytes()).await;
    drop(stream);
    let Some(port) = report.and_then(|r| r.mesh).map(|m| m.port) else {
        return;
    };
    let me = inbound
        .get_or_init(|| async {
            let agent = SocketAddr::from(([127, 0, 0, 1], port));
            let addr = relayed(agent, &probes_in, false).await;
            Peer {
                node: "agent".into(),
                address: addr.ip().to_string(),
                port: addr.port(),
            }
        })
        .await;
    let probes = (0..peers.len()).map(|_| probe(me, PADDING, Duration::from_secs(2)));
    futures::future::join_all(probes).await;
}

/// The agent process: its own probe listener, then rounds back to back;
/// prints rounds, CPU per measured round (ms), peak RSS (MiB), probes and
/// failed probes.
async fn agent(server: &str, rounds: u32) {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = listener.port();
    tokio::spawn(listener.serve(CancellationToken::new()));
    let argv = [
        "netchecker-agent".to_owned(),
        format!("-serverendpoint={server}"),
        "-reportinterval=10".to_owned(),
        format!("-zeroextenderlength={PADDING}"),
        format!("-mesh-port={port}"),
        "-mesh-address=127.0.0.1".to_owned(),
    ];
    let args = Args::try_parse_go(argv).unwrap_or_else(|e| e.exit());
    let config = Config::from_args(args, |k| std::env::var(k).ok()).expect("configuration");
    let agent = Agent::new(config).expect("agent");
    for _ in 0..WARM_UP {
        agent.round().await.expect("warm-up round accepted");
    }
    let cpu0 = on_cpu_ns();
    for _ in 0..rounds {
        agent.round().await.expect("round accepted");
    }
    let cpu = on_cpu_ns() - cpu0;
    // Let the last probes of this agent's listener finish.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mesh = agent.mesh().unwrap();
    println!(
        "{} {:.4} {:.2} {} {}",
        WARM_UP + rounds,
        cpu as f64 / 1e6 / f64::from(rounds),
        status_kib("VmHWM:") as f64 / 1024.0,
        mesh.probes(),
        mesh.failed()
    );
}
