//! The server binary as a child process, shared by the test files that run
//! it: started on a free loopback port with its log in a temporary
//! directory, killed and reaped when dropped. Each test file uses what it
//! needs of it.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_netchecker-server");

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
    /// Holds the log and anything else of this server's until it is dropped.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Start the binary; `configure` adds its arguments and environment
    /// given the address it is to listen on. Standard error goes to the log,
    /// and no Kubernetes configuration leaks in from the environment or the
    /// home directory.
    pub fn start(configure: impl FnOnce(&mut Command, SocketAddr, &std::path::Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let addr = free_addr();
        let mut cmd = Command::new(BIN);
        cmd.env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            // No ~/.kube/config of the machine's either.
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        configure(&mut cmd, addr, dir.path());
        Server {
            child: cmd.spawn().unwrap(),
            addr,
            log,
            _dir: dir,
        }
    }

    /// The server's resident memory and its peak, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server process is alive");
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

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address nobody listens on right now.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
