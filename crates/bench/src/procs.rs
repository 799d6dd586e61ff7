//! Child processes of the benchmark: started here, stopped here by PID,
//! also when the benchmark fails or panics.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// PIDs of the children still running, for the panic hook.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kill every child still running when the benchmark panics (the release
/// profile aborts on panic, so no destructor would run).
pub fn kill_children_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let pids = RUNNING.lock().map(|p| p.clone()).unwrap_or_default();
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        default(info);
    }));
}

/// A child process, killed (by PID) and reaped when dropped.
pub struct Child {
    pub name: String,
    inner: std::process::Child,
}

impl Child {
    pub fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Self> {
        let inner = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?}); build it with `make release`"))?;
        if let Ok(mut p) = RUNNING.lock() {
            p.push(inner.id());
        }
        Ok(Self {
            name: name.to_owned(),
            inner,
        })
    }

    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    /// Read stdout until a line `listening on ADDR`; the rest is discarded.
    pub fn wait_listening(&mut self) -> anyhow::Result<SocketAddr> {
        let out = self
            .inner
            .stdout
            .take()
            .context("child started without a stdout pipe")?;
        let mut lines = BufReader::new(out).lines();
        while let Some(line) = lines.next().transpose()? {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let addr = addr.trim().parse()?;
                // Keep draining so the child never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return Ok(addr);
            }
        }
        bail!("{} exited before listening", self.name)
    }

    /// `VmRSS` and `VmHWM` in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// user+system CPU seconds of the whole process so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = [11, 12]
            .iter()
            .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
            .sum();
        ticks / 100.0
    }

    /// Threads of the process right now.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Fail if the process has already exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.inner.try_wait()? {
            bail!("{} exited early: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.inner.kill();
        let _ = self.inner.wait();
        if let Ok(mut p) = RUNNING.lock() {
            p.retain(|&pid| pid != self.inner.id());
        }
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The allocator settings the server's image sets (`Dockerfile.server`):
/// servers and the ceiling run with them, as deployed.
pub const IMAGE_ENV: [(&str, &str); 2] = [
    ("MALLOC_ARENA_MAX", "2"),
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
];

/// Start `bin` with `args` (and `env`) listening on a free loopback port;
/// wait until `GET ready_path` answers 200. Returns the child and its address.
pub async fn start_http(
    name: &str,
    bin: &Path,
    args: &[String],
    env: &[(&str, String)],
    ready_path: &str,
) -> anyhow::Result<(Child, SocketAddr)> {
    let port = free_port()?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(bin);
    cmd.args(["--endpoint".to_owned(), addr.to_string()])
        .args(args)
        .env("RUST_LOG", "warn")
        .envs(IMAGE_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Child::spawn(name, &mut cmd)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        child.ensure_running()?;
        if crate::http::get(addr, ready_path)
            .await
            .is_ok_and(|(status, _)| status == 200)
        {
            return Ok((child, addr));
        }
        if Instant::now() > deadline {
            bail!("{name} did not answer 200 on {ready_path} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
