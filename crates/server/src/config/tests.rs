use super::*;

fn parse(args: &[&str]) -> Config {
    Config::try_parse_args(std::iter::once("netchecker-server").chain(args.iter().copied()))
        .unwrap()
}

#[test]
fn defaults() {
    let c = parse(&[]);
    assert_eq!(c.endpoint, "0.0.0.0:8081");
    assert!(c.kube);
    assert_eq!(c.check_interval, 10);
    assert_eq!(c.outdated_factor, 2.0);
    assert_eq!(c.max_report_bytes, 65_536);
    assert_eq!(c.report_auth, Mode::Warn);
    assert_eq!(c.report_auth_audience, "netchecker");
    assert_eq!((c.max_connections, c.write_timeout), (512, 10));
    assert!(c.read_token_file.is_none() && c.report_token_file.is_none());
    assert_eq!(c.max_agents, 50_000);
    assert_eq!(
        c.agent_selector,
        "app in (netchecker-agent,netchecker-agent-hostnet)"
    );
    assert!(c.ignored.is_empty());
}

#[test]
fn the_original_command_line_parses() {
    let c = parse(&[
        "-v",
        "5",
        "-logtostderr",
        "-kubeproxyinit",
        "-endpoint",
        "0.0.0.0:8081",
    ]);
    assert_eq!((c.verbosity, c.logtostderr, c.kube), (5, true, true));
    assert_eq!(c.endpoint, "0.0.0.0:8081");
}

#[test]
fn kubesprays_command_line_keeps_kubernetes_on() {
    // -kubeproxyinit chose the original's storage (TPR or etcd); it
    // listed the agent pods through the API either way.
    let c = parse(&[
        "-v=5",
        "-logtostderr",
        "-kubeproxyinit=false",
        "-endpoint=0.0.0.0:8081",
        "-etcd-endpoints=http://127.0.0.1:2379",
    ]);
    assert!(c.kube, "only --kube=false turns Kubernetes off");
    assert_eq!(c.kubeproxyinit, Some(false));
    assert_eq!(c.ignored, ["etcd-endpoints"]);
    assert_eq!(c.report_ttl, None);
    assert_eq!(c.settings().policy.report_ttl, None);
}

#[test]
fn every_original_spelling() {
    assert_eq!(parse(&["-endpoint=1.2.3.4:9"]).endpoint, "1.2.3.4:9");
    assert_eq!(parse(&["--endpoint", "1.2.3.4:9"]).endpoint, "1.2.3.4:9");
    assert_eq!(parse(&["-kubeproxyinit=false"]).kubeproxyinit, Some(false));
    assert_eq!(parse(&["--kubeproxyinit=false"]).kubeproxyinit, Some(false));
    assert_eq!(parse(&["-kubeproxyinit"]).kubeproxyinit, Some(true));
    assert_eq!(parse(&["-kubeproxyinit=true"]).kubeproxyinit, Some(true));
    assert!(parse(&["-kubeproxyinit=false"]).kube);
    assert!(!parse(&["--kube=false"]).kube);
    assert!(!parse(&["-kube=false"]).kube);
    assert_eq!(parse(&["-report-ttl", "300"]).report_ttl, Some(300));
    assert_eq!(parse(&["-report-ttl=60"]).report_ttl, Some(60));
    assert_eq!(parse(&["-v=5"]).verbosity, 5);
    assert_eq!(parse(&["-v", "3"]).verbosity, 3);
    assert!(parse(&["-alsologtostderr"]).alsologtostderr);
    assert!(parse(&["-alsologtostderr=true"]).alsologtostderr);
    assert!(!parse(&["-logtostderr=false"]).logtostderr);
    assert_eq!(parse(&["-check-interval", "3"]).check_interval, 3);
    assert_eq!(parse(&["-check-interval=4"]).check_interval, 4);
}

#[test]
fn webhook_urls_repeat_and_are_checked() {
    let c = parse(&[
        "--webhook-url",
        "https://hooks.example.com/a",
        "--webhook-url=http://10.0.0.1:9000/b",
    ]);
    let urls: Vec<String> = c.webhook_urls.iter().map(ToString::to_string).collect();
    assert_eq!(
        urls,
        ["https://hooks.example.com/a", "http://10.0.0.1:9000/b"]
    );
    let w = c.webhook_settings();
    assert_eq!((w.timeout, w.max_attempts), (Duration::from_secs(10), 6));
    for bad in ["ftp://x/", "hooks.example.com", "https://u:p@x/"] {
        let err = Config::try_parse_args(["netchecker-server", "--webhook-url", bad])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--webhook-url"), "{bad}: {err}");
    }
}

#[test]
fn etcd_era_flags_are_accepted_and_reported_as_ignored() {
    let c = parse(&[
        "-etcd-endpoints",
        "http://etcd:2379",
        "-etcd-tree=/netchecker",
        "-etcd-key",
        "k",
        "-etcd-cert",
        "c",
        "-etcd-ca",
        "ca",
        "-ping-timeout=5",
    ]);
    let mut ignored = c.ignored.clone();
    ignored.sort();
    let mut want: Vec<String> = IGNORED_FLAGS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(ignored, want);
}

#[test]
fn kebab_flags_and_lists() {
    let c = parse(&[
        "--kube=false",
        "--expected-agents",
        "a,b,",
        "--outdated-factor",
        "1.5",
        "--namespace",
        "nc",
    ]);
    assert_eq!(c.expected_agents, ["a", "b"]);
    assert_eq!(c.outdated_factor, 1.5);
    assert_eq!(c.namespace.as_deref(), Some("nc"));
}

#[test]
fn go_listen_shorthand() {
    assert_eq!(
        parse(&["-endpoint", ":8081"]).listen_address(),
        "0.0.0.0:8081"
    );
}

#[test]
fn bad_values_are_refused() {
    for args in [
        &["--outdated-factor", "0"][..],
        &["--check-interval", "0"],
        &["--kube=maybe"],
        &["-kubeproxyinit=maybe"],
        &["-report-ttl", "0"],
        &["--report-auth", "strict"],
        &["--max-connections", "0"],
        &["--max-agents", "-1"],
    ] {
        let argv = std::iter::once("netchecker-server").chain(args.iter().copied());
        assert!(Config::try_parse_args(argv).is_err(), "{args:?}");
    }
}

#[test]
fn leader_election_flags() {
    let c = parse(&[]);
    assert!(!c.leader_election && !c.node_conditions);
    assert_eq!(c.leader_election_lease, "netchecker-server");
    assert_eq!(
        (
            c.lease_duration,
            c.lease_renew_deadline,
            c.lease_retry_period
        ),
        (15, 10, 2)
    );
    let c = parse(&[
        "--leader-election",
        "--node-conditions=true",
        "--leader-election-lease",
        "ha",
        "--leader-election-namespace",
        "netchecker",
        "--leader-election-identity",
        "server-0",
        "--lease-duration",
        "3",
        "--lease-renew-deadline",
        "2",
        "--lease-retry-period",
        "1",
    ]);
    assert!(c.leader_election && c.node_conditions);
    assert_eq!(c.leader_identity(), "server-0");
    assert_eq!(c.leader_namespace("default"), "netchecker");
    assert_eq!(c.election_timings().retry_period, Duration::from_secs(1));
    for bad in [
        &["--lease-duration", "10"][..],
        &["--lease-renew-deadline", "2", "--lease-retry-period", "2"],
        &["--lease-retry-period", "0"],
    ] {
        let args = std::iter::once("netchecker-server").chain(bad.iter().copied());
        assert!(Config::try_parse_args(args).is_err(), "{bad:?}");
    }
}

#[test]
fn ready_when_warm_reads_bare_or_with_a_value() {
    for (args, want) in [
        (&["netchecker-server"][..], false),
        (&["netchecker-server", "--ready-when-warm"][..], true),
        (
            &["netchecker-server", "--ready-when-warm", "--kube=false"][..],
            true,
        ),
        (&["netchecker-server", "--ready-when-warm=false"][..], false),
        (&["netchecker-server", "-ready-when-warm=true"][..], true),
    ] {
        assert_eq!(
            Config::try_parse_args(args).unwrap().ready_when_warm,
            want,
            "{args:?}"
        );
    }
}
