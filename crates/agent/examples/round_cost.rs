//! CPU cost of one agent round (gather, encode, POST) with rounds run back
//! to back, so that the figure is the agent's own work and not the cost a
//! virtual machine charges for waking an idle process once per interval.
//!
//! `cargo run --release -p netchecker-agent --example round_cost -- \
//!     --rounds 300 -- -serverendpoint=localhost:8081 -probeurls=...`
//!
//! Everything after `--` is the agent's own command line; `MY_POD_NAME`
//! defaults to `netchecker-agent-round-cost`. CPU is the on-CPU time of all
//! threads of this process (`/proc/self/task/*/schedstat`), including the
//! resolver threads, measured after a warm-up of 10 rounds.

#[path = "common/proc_self.rs"]
mod proc_self;
use proc_self::{on_cpu_ns, status_kib};

use std::time::Instant;

use netchecker_agent::{Agent, Args, Config};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let split = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    let mut rounds = 300u32;
    let mut own = argv[1..split].iter();
    while let Some(a) = own.next() {
        if a == "--rounds" {
            rounds = own.next().and_then(|n| n.parse().ok()).expect("--rounds N");
        }
    }
    let agent_argv =
        std::iter::once("netchecker-agent".to_owned()).chain(argv.iter().skip(split + 1).cloned());
    let args = Args::try_parse_go(agent_argv).unwrap_or_else(|e| e.exit());
    let config = Config::from_args(args, |k| match k {
        "MY_POD_NAME" => {
            Some(std::env::var(k).unwrap_or_else(|_| "netchecker-agent-round-cost".to_owned()))
        }
        _ => std::env::var(k).ok(),
    })
    .expect("valid configuration");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let agent = Agent::new(config).expect("agent");
        for _ in 0..10 {
            agent.round().await.expect("warm-up round accepted");
        }
        let cpu0 = on_cpu_ns();
        let t0 = Instant::now();
        let mut failed = 0;
        for _ in 0..rounds {
            if agent.round().await.is_err() {
                failed += 1;
            }
        }
        let cpu = on_cpu_ns() - cpu0;
        let wall = t0.elapsed();
        println!(
            "back-to-back rounds: {rounds} ({failed} failed) in {:.0} ms wall; \
             CPU per round {:.3} ms; peak RSS {:.1} MiB",
            wall.as_secs_f64() * 1000.0,
            cpu as f64 / 1e6 / f64::from(rounds),
            status_kib("VmHWM:") as f64 / 1024.0
        );
    });
}
