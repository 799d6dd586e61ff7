//! `--token-file`: every report carries `Authorization: Bearer <token>` as
//! the file holds it at that moment (the kubelet rotates projected tokens
//! in place), the probes never do, a missing file costs the header and one
//! warning, and without the flag the requests are what they always were.

mod common;

use std::path::Path;

use common::logs::Logs;
use common::{REPORTS, Recorded, Recorder, config};
use netchecker_agent::{Agent, Config};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5jIn0.eyJhdWQiOlsibmV0Y2hlY2tlciJdfQ.c2lnLW9uZQ";
const ROTATED: &str =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6Im5jIn0.eyJhdWQiOlsibmV0Y2hlY2tlciJdfQ.c2lnLXR3bw";

fn agent_config(rec: &Recorder, token_file: Option<&Path>) -> Config {
    let endpoint = rec.addr().to_string();
    let mut args = vec!["-serverendpoint", &endpoint, "-reportinterval=15"];
    let path;
    if let Some(p) = token_file {
        path = p.display().to_string();
        args.extend(["-token-file", &path]);
    }
    config(&args, "netchecker-agent-x7k2p", Some("node-1"))
}

/// The `Authorization` header of the last report.
fn last_authorization(rec: &Recorder) -> Option<String> {
    let reports = rec.requests_to(REPORTS);
    let last: &Recorded = reports.last().expect("a report arrived");
    last.header("authorization").map(str::to_owned)
}

/// Write `token` to a new file beside `path` and rename it over `path`:
/// readers see the old file or the new one, never a mix.
fn replace(path: &Path, token: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, token).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn each_report_carries_the_token_and_the_probes_do_not() {
    let rec = Recorder::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    // As a shared secret might be written by hand: with a newline.
    std::fs::write(&path, format!("  {TOKEN}\n")).unwrap();
    let agent = Agent::new(agent_config(&rec, Some(&path))).unwrap();
    agent.round().await.unwrap();
    agent.round().await.unwrap();

    let reports = rec.requests_to(REPORTS);
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    let pings = rec.requests_to("/api/v1/ping");
    assert_eq!(pings.len(), 2);
    assert!(pings.iter().all(|p| p.header("authorization").is_none()));
    assert_eq!(agent.reports_without_token(), 0);
}

#[tokio::test]
async fn a_token_file_replaced_by_rename_is_read_again_for_the_next_report() {
    let rec = Recorder::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, TOKEN).unwrap();
    let agent = Agent::new(agent_config(&rec, Some(&path))).unwrap();
    agent.round().await.unwrap();
    assert_eq!(last_authorization(&rec), Some(format!("Bearer {TOKEN}")));

    replace(&path, ROTATED);
    agent.round().await.unwrap();
    assert_eq!(last_authorization(&rec), Some(format!("Bearer {ROTATED}")));
}

#[tokio::test]
async fn the_kubelets_symlink_swap_is_followed() {
    // The projected volume's layout: token -> ..data/token, ..data -> a
    // timestamped directory; a rotation writes a new directory and renames
    // a new ..data symlink over the old one, then removes the old directory.
    let rec = Recorder::start().await;
    let volume = tempfile::tempdir().unwrap();
    let v = volume.path();
    std::fs::create_dir(v.join("..2026_01_01_00_00_00.1")).unwrap();
    std::fs::write(v.join("..2026_01_01_00_00_00.1/token"), TOKEN).unwrap();
    std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", v.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/token", v.join("token")).unwrap();
    let agent = Agent::new(agent_config(&rec, Some(&v.join("token")))).unwrap();
    agent.round().await.unwrap();
    assert_eq!(last_authorization(&rec), Some(format!("Bearer {TOKEN}")));

    std::fs::create_dir(v.join("..2026_01_01_00_48_00.2")).unwrap();
    std::fs::write(v.join("..2026_01_01_00_48_00.2/token"), ROTATED).unwrap();
    std::os::unix::fs::symlink("..2026_01_01_00_48_00.2", v.join("..data_tmp")).unwrap();
    std::fs::rename(v.join("..data_tmp"), v.join("..data")).unwrap();
    std::fs::remove_dir_all(v.join("..2026_01_01_00_00_00.1")).unwrap();
    agent.round().await.unwrap();
    assert_eq!(last_authorization(&rec), Some(format!("Bearer {ROTATED}")));
}

#[tokio::test]
async fn without_a_usable_file_reports_go_without_the_header_and_one_warning() {
    let (logs, _guard) = Logs::capture();
    let rec = Recorder::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let cfg = agent_config(&rec, Some(&path));
    let agent = Agent::new(cfg.clone()).unwrap();
    let warned = |logs: &Logs| logs.lines_with("cannot use the token file").len();

    // Missing: three reports, all sent (the server decides), one warning.
    for _ in 0..3 {
        agent.round().await.unwrap();
        assert_eq!(last_authorization(&rec), None);
    }
    assert_eq!(warned(&logs), 1, "{}", logs.text());
    assert_eq!(agent.reports_without_token(), 3);

    // The file appears: the next report carries it, and that is logged.
    std::fs::write(&path, TOKEN).unwrap();
    agent.round().await.unwrap();
    assert_eq!(last_authorization(&rec), Some(format!("Bearer {TOKEN}")));
    assert_eq!(logs.lines_with("token file usable again").len(), 1);
    replace(&path, ROTATED);
    agent.round().await.unwrap();
    assert_eq!(
        logs.lines_with("token file holds a new token").len(),
        1,
        "{}",
        logs.text()
    );

    // Emptied, then removed: each new problem is logged once.
    std::fs::write(&path, "\n").unwrap();
    agent.round().await.unwrap();
    agent.round().await.unwrap();
    std::fs::remove_file(&path).unwrap();
    agent.round().await.unwrap();
    assert_eq!(last_authorization(&rec), None);
    assert_eq!(warned(&logs), 3, "{}", logs.text());
    assert_eq!(logs.lines_with("it is empty").len(), 1);
    assert_eq!(agent.reports_without_token(), 6);

    // Nothing printed or logged ever shows a token, at any level.
    let text = logs.text();
    assert!(text.contains("netchecker_agent::token"), "{text}");
    assert!(text.contains("TRACE") || text.contains("DEBUG"), "{text}");
    let debug = format!("{cfg:?}");
    assert!(debug.contains("token_file: Some("), "{debug}");
    for shown in [text, debug] {
        assert!(
            !shown.contains(TOKEN) && !shown.contains(ROTATED),
            "{shown}"
        );
        assert!(!shown.contains("c2lnLW9uZQ") && !shown.contains("c2lnLXR3bw"));
    }
}

#[tokio::test]
async fn without_the_flag_a_report_is_the_request_it_always_was() {
    let rec = Recorder::start().await;
    let cfg = agent_config(&rec, None);
    assert_eq!(cfg.token_file, None);
    let agent = Agent::new(cfg).unwrap();
    agent.round().await.unwrap();
    let reports = rec.requests_to(REPORTS);
    let r = &reports[0];
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "host",
            "user-agent",
            "connection",
            "content-type",
            "content-length"
        ]
    );
    assert_eq!(r.header("host"), Some(rec.addr().to_string().as_str()));
    assert_eq!(
        r.header("user-agent"),
        Some(concat!("netchecker-agent/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(agent.reports_without_token(), 0);
}
