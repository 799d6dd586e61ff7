//! The report on the wire against the original Go agent's: the same keys in
//! the same order, the same JSON types, exactly N zeros of padding, and a
//! `hostdate` that Go's `time.RFC3339Nano` parses.

mod common;

use std::time::Duration;

use common::{Recorder, config};
use netchecker_agent::Agent;
use netchecker_wire::AgentReport;
use serde_json::Value;

const GO_REPORT: &str = include_str!("../../wire/tests/fixtures/go-agent-report.json");
const GO_KEY_ORDER: [&str; 9] = [
    "report_interval",
    "nodename",
    "podname",
    "hostdate",
    "uptime",
    "nslookup",
    "ips",
    "network_probes",
    "zero_extender",
];

/// One report body as the recorder received it, sent to `localhost:PORT`.
async fn one_report(padding: usize, extra: &[&str]) -> (String, Recorder) {
    let rec = Recorder::start().await;
    let endpoint = format!("localhost:{}", rec.addr().port());
    let padding = format!("-zeroextenderlength={padding}");
    let mut args = vec!["-serverendpoint", &endpoint, "-reportinterval=15", &padding];
    args.extend_from_slice(extra);
    let agent = Agent::new(config(&args, "netchecker-agent-x7k2p", Some("node-1"))).unwrap();
    agent.round().await.unwrap();
    let req = rec
        .wait_for("/api/v1/agents/", 1, Duration::from_secs(1))
        .await;
    (String::from_utf8(req[0].body.clone()).unwrap(), rec)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[tokio::test]
async fn same_keys_order_and_types_as_the_go_agent() {
    let (body, rec) = one_report(1500, &[]).await;
    let ours: Value = serde_json::from_str(&body).unwrap();
    let go: Value = serde_json::from_str(GO_REPORT).unwrap();

    // Top-level keys: the same set, in the Go agent's order.
    let mut keys: Vec<&str> = ours
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut go_keys: Vec<&str> = go.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    go_keys.sort_unstable();
    assert_eq!(keys, go_keys);
    let positions: Vec<usize> = GO_KEY_ORDER
        .iter()
        .map(|k| body.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(
        positions.is_sorted(),
        "key order differs from Go's: {body:.300}"
    );

    // Every value has the JSON type the Go agent sent.
    for (k, v) in go.as_object().unwrap() {
        assert_eq!(kind(&ours[k]), kind(v), "type of {k}");
    }
    for (name, addrs) in ours["ips"].as_object().unwrap() {
        assert!(
            addrs.as_array().unwrap().iter().all(Value::is_string),
            "{name}"
        );
    }

    // Probes: the Go struct's PascalCase keys, integers everywhere but URL.
    let go_probe = go["network_probes"][0].as_object().unwrap();
    for p in ours["network_probes"].as_array().unwrap() {
        let p = p.as_object().unwrap();
        let mut a: Vec<&String> = p.keys().collect();
        let mut b: Vec<&String> = go_probe.keys().collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        for (k, v) in go_probe {
            assert_eq!(kind(&p[k]), kind(v), "type of probe field {k}");
        }
    }

    // Content.
    assert_eq!(ours["report_interval"], 15);
    assert_eq!(ours["podname"], "netchecker-agent-x7k2p");
    assert_eq!(ours["nodename"], "node-1");
    assert!(ours["uptime"].as_u64().unwrap() > 0);
    let lo = ours["ips"]["lo"].as_array().expect("lo listed");
    assert!(lo.contains(&Value::from("127.0.0.1/8")), "{lo:?}");
    let resolved = ours["nslookup"]["localhost"]
        .as_array()
        .expect("server host looked up");
    assert!(resolved.contains(&Value::from("127.0.0.1")), "{resolved:?}");
    let ping = &ours["network_probes"][0];
    assert_eq!(
        ping["URL"],
        format!("http://localhost:{}/api/v1/ping", rec.addr().port())
    );
    assert_eq!(
        (ping["ConnectionResult"].as_i64(), ping["HTTPCode"].as_i64()),
        (Some(1), Some(200))
    );

    // Padding: exactly N zeros, last.
    let zeros = ours["zero_extender"].as_array().unwrap();
    assert_eq!(zeros.len(), 1500);
    assert!(zeros.iter().all(|z| z == 0));
    assert!(body.ends_with(",0]}"), "padding is not last");

    // And the server side of the wire types reads it.
    let parsed: AgentReport = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed.podname, "netchecker-agent-x7k2p");
    assert_eq!(parsed.network_probes.len(), 1);
}

#[tokio::test]
async fn hostdate_is_rfc3339_with_nanoseconds() {
    let before = jiff::Timestamp::now();
    let (body, _rec) = one_report(0, &[]).await;
    let after = jiff::Timestamp::now();
    let ours: Value = serde_json::from_str(&body).unwrap();
    let text = ours["hostdate"].as_str().unwrap();
    // The layout of Go's time.RFC3339Nano, which time.Time's UnmarshalJSON
    // accepts: date, 'T', time, fraction of up to 9 digits, Z or offset.
    let bytes = text.as_bytes();
    assert_eq!(text.len(), "2026-11-21T10:11:12.123456789Z".len(), "{text}");
    for (i, b) in bytes.iter().enumerate() {
        let ok = match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            29 => *b == b'Z',
            _ => b.is_ascii_digit(),
        };
        assert!(ok, "byte {i} of {text}");
    }
    let at: jiff::Timestamp = text.parse().unwrap();
    assert!(before <= at && at <= after, "{at} not within the round");
}

#[tokio::test]
async fn padding_is_exactly_the_configured_length() {
    for n in [0usize, 1, 7, 4000] {
        let (body, _rec) = one_report(n, &[]).await;
        let ours: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ours["zero_extender"].as_array().unwrap().len(), n);
    }
}

#[tokio::test]
async fn a_report_with_default_padding_is_larger_than_an_ethernet_mtu() {
    let (body, _rec) = one_report(1500, &[]).await;
    assert!(body.len() > 3000, "{} bytes", body.len());
}

#[tokio::test]
async fn nodename_is_empty_without_my_node_name() {
    let rec = Recorder::start().await;
    let endpoint = rec.addr().to_string();
    let agent = Agent::new(config(
        &["-serverendpoint", &endpoint, "-reportinterval=5"],
        "p",
        None,
    ))
    .unwrap();
    agent.round().await.unwrap();
    let report = rec
        .wait_for("/api/v1/agents/", 1, Duration::from_secs(1))
        .await[0]
        .json();
    assert_eq!(report["nodename"], "");
}
