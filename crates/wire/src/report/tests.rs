use super::*;

#[test]
fn hostdate_is_rfc3339_only() {
    for ok in [
        "2026-11-21T10:11:12Z",
        "2026-11-21T10:11:12.123456789+02:00",
        "2026-11-21t10:11:12.5z",
        "2026-11-21T10:11:12-07:30",
        "0001-01-01T00:00:00Z",
    ] {
        assert!(ok.parse::<HostDate>().is_ok(), "{ok}");
    }
    for bad in [
        "2026-11-21T10:11Z",
        "2026-11-21 10:11:12Z",
        "2026-11-21T10:11:12+0200",
        "20261121T101112Z",
        "2026-11-21T10:11:12Z[UTC]",
        "2026-11-21T10:11:12,5Z",
        "2026-11-21T10:11:12.Z",
        "2026-11-21T10:11:12",
        "2026-11-21T10Z",
        "",
    ] {
        assert!(bad.parse::<HostDate>().is_err(), "{bad}");
    }
}

#[test]
fn a_report_or_probe_is_an_object_never_an_array() {
    for bad in [
        r#"[15]"#,
        r#"[15, "node-1", "pod"]"#,
        r#"{"report_interval":15,"network_probes":[["http://x",1,200]]}"#,
    ] {
        let err = serde_json::from_str::<AgentReport>(bad).unwrap_err();
        assert!(err.is_data(), "{bad}: {err}");
    }
}

const GO_REPORT: &str = include_str!("../../tests/fixtures/go-agent-report.json");
const GO_REPORT_HOSTNET: &str = include_str!("../../tests/fixtures/go-agent-report-hostnet.json");

#[test]
fn parses_the_go_agent_fixtures() {
    for (text, pod) in [
        (GO_REPORT, "netchecker-agent-x7k2p"),
        (GO_REPORT_HOSTNET, "netchecker-agent-hostnet-q8w3z"),
    ] {
        let r: AgentReport = serde_json::from_str(text).unwrap();
        assert_eq!(r.podname, pod);
        assert_eq!(r.report_interval, 15);
        assert_eq!(r.nodename, "node-1");
        assert_eq!(r.uptime, 123456);
        assert_eq!(r.hostdate.as_str(), "2026-11-21T10:11:12.123456789+02:00");
        assert_eq!(
            r.hostdate.timestamp().to_string(),
            "2026-11-21T08:11:12.123456789Z"
        );
        assert_eq!(r.nslookup["netchecker-service"], vec!["10.233.0.10"]);
        assert_eq!(r.ips["lo"], vec!["127.0.0.1/8", "::1/128"]);
        let p = &r.network_probes[0];
        assert_eq!(p.url, "http://netchecker-service:8081/api/v1/ping");
        assert_eq!((p.connection_result, p.http_code, p.total), (1, 200, 3));
        assert_eq!(
            (
                p.tcp_connection,
                p.dns_lookup,
                p.connect,
                p.server_processing
            ),
            (1, 1, 1, 1)
        );
    }
}

#[test]
fn reserialises_without_padding_and_with_original_keys() {
    let r: AgentReport = serde_json::from_str(GO_REPORT).unwrap();
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    let mut want = vec![
        "hostdate",
        "ips",
        "network_probes",
        "nodename",
        "nslookup",
        "podname",
        "report_interval",
        "uptime",
    ];
    want.sort();
    let mut got = keys.clone();
    got.sort();
    assert_eq!(got, want);
    let probe = v["network_probes"][0].as_object().unwrap();
    let mut probe_keys: Vec<_> = probe.keys().map(String::as_str).collect();
    probe_keys.sort();
    assert_eq!(
        probe_keys,
        [
            "Connect",
            "ConnectionResult",
            "ContentTransfer",
            "DNSLookup",
            "HTTPCode",
            "ServerProcessing",
            "TCPConnection",
            "Total",
            "URL"
        ]
    );
}

#[test]
fn outgoing_report_matches_the_go_shape_and_order() {
    let r: AgentReport = serde_json::from_str(GO_REPORT).unwrap();
    let out = serde_json::to_string(&OutgoingReport::new(&r, 1500)).unwrap();
    // Same keys in the same order as the Go agent, padding last.
    let order: Vec<usize> = [
        "\"report_interval\"",
        "\"nodename\"",
        "\"podname\"",
        "\"hostdate\"",
        "\"uptime\"",
        "\"nslookup\"",
        "\"ips\"",
        "\"network_probes\"",
        "\"zero_extender\"",
    ]
    .iter()
    .map(|k| out.find(k).unwrap_or_else(|| panic!("{k} missing")))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "key order differs: {order:?}"
    );
    // Same document as the fixture, byte for byte apart from map order.
    let ours: serde_json::Value = serde_json::from_str(&out).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(GO_REPORT).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(ours["zero_extender"].as_array().unwrap().len(), 1500);
}

#[test]
fn zero_padding_lengths() {
    assert_eq!(serde_json::to_string(&Zeros(0)).unwrap(), "[]");
    assert_eq!(serde_json::to_string(&Zeros(3)).unwrap(), "[0,0,0]");
}

#[test]
fn accepts_go_nulls_and_missing_fields() {
    let r: AgentReport = serde_json::from_str(
        r#"{"report_interval":60,"podname":"p","nslookup":{"netchecker-service":null},
            "ips":null,"network_probes":null,"uptime":12.7,"extra":{"x":[1,2]}}"#,
    )
    .unwrap();
    assert_eq!(r.nslookup["netchecker-service"], Vec::<String>::new());
    assert!(r.ips.is_empty() && r.network_probes.is_empty());
    assert_eq!(r.uptime, 12);
    assert_eq!(r.hostdate.as_str(), "0001-01-01T00:00:00Z");
    assert_eq!(r.nodename, "");
}

#[test]
fn parsed_lists_hold_no_spare_room() {
    let r: AgentReport = serde_json::from_str(GO_REPORT).unwrap();
    assert_eq!(r.network_probes.capacity(), r.network_probes.len());
    for list in r.ips.values().chain(r.nslookup.values()) {
        assert_eq!(list.capacity(), list.len());
    }
    assert_eq!(r.ips["eth0"].len(), 2);
}

#[test]
fn rejects_a_hostdate_that_is_not_rfc3339() {
    let err = serde_json::from_str::<AgentReport>(r#"{"hostdate":"yesterday"}"#).unwrap_err();
    assert!(
        err.to_string().contains("hostdate is not an RFC 3339 time"),
        "{err}"
    );
}

#[test]
fn hostdate_from_timestamp_has_nanoseconds() {
    let at: jiff::Timestamp = "2026-11-21T10:11:12.5Z".parse().unwrap();
    assert_eq!(
        HostDate::from_timestamp(at).as_str(),
        "2026-11-21T10:11:12.500000000Z"
    );
}

#[test]
fn stored_report_adds_last_updated() {
    let report: AgentReport = serde_json::from_str(GO_REPORT).unwrap();
    let stored = StoredReport {
        report,
        last_updated: "2026-11-21T08:11:13Z".parse().unwrap(),
    };
    let v = serde_json::to_value(&stored).unwrap();
    assert_eq!(v["last_updated"], "2026-11-21T08:11:13Z");
    assert!(v.get("zero_extender").is_none());
    let back: StoredReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, stored);
}

#[test]
fn report_attempts_are_absent_unless_set_and_read_apart_from_the_report() {
    use crate::{AttemptCounts, ReportAttempts};
    // The fixtures reserialise without the field.
    let r: AgentReport = serde_json::from_str(GO_REPORT).unwrap();
    let out = serde_json::to_string(&OutgoingReport::new(&r, 3)).unwrap();
    assert!(!out.contains("report_attempts"), "{out}");
    let out = serde_json::to_string(&OutgoingReport::new(&r, 3).with_attempts(None)).unwrap();
    assert!(!out.contains("report_attempts"), "{out}");

    let attempts = ReportAttempts {
        attempt: 2,
        previous: Some(AttemptCounts {
            attempts: 3,
            connects: 4,
            raced: 1,
            race_won: 1,
            failed: 2,
            taken: true,
            first_try: false,
        }),
    };
    let out =
        serde_json::to_string(&OutgoingReport::new(&r, 3).with_attempts(Some(&attempts))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["report_attempts"],
        serde_json::json!({"attempt": 2, "previous": {"attempts": 3, "connects": 4,
            "raced": 1, "race_won": 1, "failed": 2, "taken": true, "first_try": false}})
    );
    // After everything the Go agent sent, just before the padding.
    let at = out.find("\"report_attempts\"").unwrap();
    assert!(at > out.find("\"network_probes\"").unwrap());
    assert!(at < out.find("\"zero_extender\"").unwrap());
    // A server parsing the report reads it in the same pass; taken out,
    // what it stores is what the Go agent sent.
    let mut back: AgentReport = serde_json::from_str(&out).unwrap();
    assert_eq!(back.report_attempts.take(), Some(attempts));
    assert_eq!(back, r);
    assert_eq!(
        serde_json::to_value(&back).unwrap().get("report_attempts"),
        None
    );

    // No previous report: the key is left out; missing counts read as 0.
    let first: ReportAttempts = serde_json::from_str(r#"{"attempt":1}"#).unwrap();
    assert_eq!(first.previous, None);
    assert_eq!(serde_json::to_string(&first).unwrap(), r#"{"attempt":1}"#);
    let partial: AttemptCounts = serde_json::from_str(r#"{"attempts":1,"taken":true}"#).unwrap();
    assert_eq!(
        (partial.attempts, partial.connects, partial.taken),
        (1, 0, true)
    );
}
