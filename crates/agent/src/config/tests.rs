use std::collections::HashMap;
use std::net::IpAddr;

use super::*;

fn parse(args: &[&str]) -> Args {
    Args::try_parse_go(std::iter::once("netchecker-agent").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn env_with_pod(name: &str) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = HashMap::from([(POD_NAME_ENV.to_owned(), name.to_owned())]);
    move |k| map.get(k).cloned()
}

#[test]
fn command_is_well_formed() {
    Args::go_command().debug_assert();
}

#[test]
fn defaults_are_the_originals() {
    let a = parse(&[]);
    assert_eq!(a.server_endpoint, "netchecker-service:8081");
    assert_eq!(a.report_interval, 60);
    assert_eq!(a.zero_extender_length, 1500);
    assert_eq!(a.probe_urls, "");
    assert_eq!(a.verbosity, 0);
    assert_eq!(a.log_format, LogFormat::Plain);
    assert_eq!(a.proc_uptime_path, PathBuf::from("/proc/uptime"));
}

#[test]
fn every_go_spelling_of_the_value_flags() {
    for (flag, alias) in [
        ("serverendpoint", "server-endpoint"),
        ("reportinterval", "report-interval"),
        ("probeurls", "probe-urls"),
        ("zeroextenderlength", "zero-extender-length"),
    ] {
        let value = match flag {
            "serverendpoint" => "10.0.0.1:9000",
            "probeurls" => "http://a.example;https://b.example",
            _ => "42",
        };
        let joined_single = format!("-{flag}={value}");
        let joined_double = format!("--{flag}={value}");
        let joined_alias = format!("--{alias}={value}");
        let single = format!("-{flag}");
        let double = format!("--{flag}");
        let kebab = format!("--{alias}");
        for argv in [
            vec![single.as_str(), value],
            vec![joined_single.as_str()],
            vec![double.as_str(), value],
            vec![joined_double.as_str()],
            vec![kebab.as_str(), value],
            vec![joined_alias.as_str()],
        ] {
            let a = parse(&argv);
            let got = match flag {
                "serverendpoint" => a.server_endpoint,
                "reportinterval" => a.report_interval.to_string(),
                "probeurls" => a.probe_urls,
                _ => a.zero_extender_length.to_string(),
            };
            assert_eq!(got, value, "{argv:?}");
        }
    }
}

#[test]
fn the_originals_manifest_line_parses() {
    let a = parse(&[
        "-v=5",
        "-alsologtostderr=true",
        "-serverendpoint=netchecker-service:8081",
        "-reportinterval=60",
        "-probeurls=http://ipinfo.io",
    ]);
    assert_eq!(a.verbosity, 5);
    assert_eq!(a.alsologtostderr, Some(true));
    assert_eq!(a.report_interval, 60);
    assert_eq!(a.probe_urls, "http://ipinfo.io");
}

#[test]
fn glog_flags() {
    for argv in [
        &["-v", "5"][..],
        &["-v=5"],
        &["--v=5"],
        &["-v5"],
        &["--v", "5"],
    ] {
        assert_eq!(parse(argv).verbosity, 5, "{argv:?}");
    }
    assert_eq!(parse(&["-logtostderr"]).logtostderr, Some(true));
    assert_eq!(parse(&["-logtostderr=false"]).logtostderr, Some(false));
    assert_eq!(parse(&["--alsologtostderr"]).alsologtostderr, Some(true));
    assert_eq!(
        parse(&["-alsologtostderr=true"]).alsologtostderr,
        Some(true)
    );
    assert_eq!(parse(&["-alsologtostderr=0"]).alsologtostderr, Some(false));
    // A Go boolean never swallows the next word.
    let a = parse(&["-logtostderr", "-reportinterval", "7"]);
    assert_eq!((a.logtostderr, a.report_interval), (Some(true), 7));
    assert_eq!(parse(&["--log-format", "json"]).log_format, LogFormat::Json);
}

#[test]
fn the_last_of_repeated_flags_wins_as_in_go() {
    let a = parse(&["-reportinterval=5", "-reportinterval", "9"]);
    assert_eq!(a.report_interval, 9);
}

#[test]
fn bad_values_are_refused() {
    for argv in [
        &["-reportinterval=0"][..],
        &["-reportinterval=abc"],
        &["-zeroextenderlength=-1"],
        &["--log-format=xml"],
        &["--probe-timeout=0"],
        &["--no-such-flag"],
    ] {
        let argv = std::iter::once("netchecker-agent").chain(argv.iter().copied());
        assert!(Args::try_parse_go(argv).is_err());
    }
}

#[test]
fn probe_urls_split_on_commas_and_semicolons() {
    assert_eq!(
        split_probe_urls("http://a, https://b/x;http://c:81/;;"),
        ["http://a", "https://b/x", "http://c:81/"]
    );
    assert!(split_probe_urls("").is_empty());
}

#[test]
fn config_from_args_and_env() {
    let a = parse(&[
        "-serverendpoint=127.0.0.1:8081",
        "-reportinterval=15",
        "-probeurls=http://127.0.0.1:1/;https://localhost:2/x",
    ]);
    let map = HashMap::from([
        (POD_NAME_ENV.to_owned(), "netchecker-agent-x7k2p".to_owned()),
        (NODE_NAME_ENV.to_owned(), "node-1".to_owned()),
    ]);
    let c = Config::from_args(a, |k| map.get(k).cloned()).unwrap();
    assert_eq!(c.pod_name, "netchecker-agent-x7k2p");
    assert_eq!(c.node_name, "node-1");
    assert_eq!(c.report_interval, Duration::from_secs(15));
    assert_eq!(
        c.probe_urls,
        ["http://127.0.0.1:1/", "https://localhost:2/x"]
    );
    assert_eq!(c.probe_timeout, Duration::from_secs(6));
    assert_eq!(c.report_timeout, Duration::from_millis(7500));
}

#[test]
fn derived_timeouts_stay_inside_the_interval() {
    for secs in [1u64, 2, 5, 60, 3600] {
        let a = parse(&[&format!("-reportinterval={secs}")]);
        let c = Config::from_args(a, env_with_pod("p")).unwrap();
        assert!(
            c.probe_timeout + c.report_timeout < c.report_interval,
            "{secs}"
        );
        assert!(c.probe_timeout <= MAX_DERIVED_TIMEOUT);
        assert!(c.report_timeout <= MAX_DERIVED_TIMEOUT);
    }
}

#[test]
fn explicit_timeouts_must_fit_the_interval() {
    let a = parse(&[
        "-reportinterval=2",
        "--probe-timeout=0.5",
        "--report-timeout",
        "1",
    ]);
    let c = Config::from_args(a, env_with_pod("p")).unwrap();
    assert_eq!(
        (c.probe_timeout, c.report_timeout),
        (Duration::from_millis(500), Duration::from_secs(1))
    );
    let a = parse(&[
        "-reportinterval=2",
        "--probe-timeout=1",
        "--report-timeout=1",
    ]);
    let err = Config::from_args(a, env_with_pod("p")).unwrap_err();
    assert!(
        err.to_string().contains("shorter than the report interval"),
        "{err}"
    );
}

#[test]
fn missing_pod_name_names_the_variable() {
    for env in [None, Some(""), Some("  ")] {
        let err = Config::from_args(parse(&[]), |k| {
            (k == POD_NAME_ENV)
                .then(|| env.map(str::to_owned))
                .flatten()
        })
        .unwrap_err();
        assert!(err.to_string().contains("MY_POD_NAME"), "{err}");
    }
}

#[test]
fn a_pod_name_that_cannot_be_a_path_segment_is_refused() {
    let err = Config::from_args(parse(&[]), env_with_pod("a/b")).unwrap_err();
    assert!(err.to_string().contains("MY_POD_NAME"), "{err}");
}

#[test]
fn missing_node_name_is_empty() {
    let c = Config::from_args(parse(&[]), env_with_pod("p")).unwrap();
    assert_eq!(c.node_name, "");
}

#[test]
fn unusable_urls_are_refused_at_start() {
    for argv in [
        &["-probeurls=ftp://example.org/"][..],
        &["-probeurls=not a url"],
        &["-probeurls=http://"],
        &["-serverendpoint=a b"],
        &["-serverendpoint="],
    ] {
        let err = Config::from_args(parse(argv), env_with_pod("p")).unwrap_err();
        assert!(err.to_string().contains("invalid URL"), "{argv:?}: {err}");
    }
}

#[test]
fn token_file_in_every_spelling() {
    for argv in [
        &["-token-file", "/var/run/secrets/tokens/netchecker"][..],
        &["-token-file=/var/run/secrets/tokens/netchecker"],
        &["--token-file", "/var/run/secrets/tokens/netchecker"],
        &["--token-file=/var/run/secrets/tokens/netchecker"],
    ] {
        let c = Config::from_args(parse(argv), env_with_pod("p")).unwrap();
        assert_eq!(
            c.token_file,
            Some(PathBuf::from("/var/run/secrets/tokens/netchecker")),
            "{argv:?}"
        );
    }
    let c = Config::from_args(parse(&[]), env_with_pod("p")).unwrap();
    assert_eq!(c.token_file, None);
    // An empty path is refused at start rather than taken as "no token".
    let argv = ["netchecker-agent", "--token-file="];
    let err = Args::try_parse_go(argv).unwrap_err().to_string();
    assert!(err.contains("--token-file"), "{err}");
}

#[test]
fn the_mesh_is_off_by_default() {
    let c = Config::from_args(parse(&[]), env_with_pod("p")).unwrap();
    assert_eq!(c.mesh, None);
    let c = Config::from_args(parse(&["--mesh-port=0"]), env_with_pod("p")).unwrap();
    assert_eq!(c.mesh, None);
}

#[test]
fn mesh_port_and_addresses_in_every_spelling() {
    let port = |argv: &[&str], env: &[(&str, &str)]| {
        let map: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([(POD_NAME_ENV.to_owned(), "p".to_owned())])
            .collect();
        Config::from_args(parse(argv), |k| map.get(k).cloned())
            .unwrap()
            .mesh
            .unwrap()
    };
    for argv in [
        &["-mesh-port", "8083"][..],
        &["-mesh-port=8083"],
        &["--mesh-port", "8083"],
        &["--mesh-port=8083"],
    ] {
        let m = port(argv, &[]);
        assert_eq!((m.port, m.addresses.len()), (8083, 0), "{argv:?}");
    }
    // MY_POD_IP (one address, or status.podIPs' list) is announced...
    let m = port(&["-mesh-port=8083"], &[(POD_IP_ENV, "10.233.64.5,fd00::5")]);
    let want: Vec<IpAddr> = vec!["10.233.64.5".parse().unwrap(), "fd00::5".parse().unwrap()];
    assert_eq!(m.addresses, want);
    // ... unless --mesh-address says otherwise.
    let m = port(
        &["-mesh-port=8083", "-mesh-address=192.0.2.7"],
        &[(POD_IP_ENV, "10.233.64.5")],
    );
    assert_eq!(m.addresses, ["192.0.2.7".parse::<IpAddr>().unwrap()]);
    // A blank list is no list.
    let m = port(&["-mesh-port=8083", "--mesh-address= "], &[]);
    assert!(m.addresses.is_empty());
}

#[test]
fn mesh_mistakes_are_refused_at_start() {
    for (argv, needle) in [
        (
            &["-mesh-port=8083", "-mesh-address=node-1.example"][..],
            "not an IP address",
        ),
        (&["-mesh-address=10.0.0.1"], "needs --mesh-port"),
    ] {
        let err = Config::from_args(parse(argv), env_with_pod("p")).unwrap_err();
        assert!(err.to_string().contains(needle), "{argv:?}: {err}");
    }
    let env = |k: &str| match k {
        POD_NAME_ENV => Some("p".to_owned()),
        POD_IP_ENV => Some("not-an-ip".to_owned()),
        _ => None,
    };
    let err = Config::from_args(parse(&["-mesh-port=8083"]), env).unwrap_err();
    assert!(err.to_string().contains("MY_POD_IP"), "{err}");
    for bad in ["-mesh-port=65536", "-mesh-port=-1", "-mesh-port=x"] {
        let argv = ["netchecker-agent", bad];
        assert!(Args::try_parse_go(argv).is_err(), "{bad}");
    }
}

#[test]
fn report_to_all_addresses_is_a_go_boolean_off_by_default() {
    assert!(!parse(&[]).report_to_all_addresses);
    for (argv, on) in [
        (&["-report-to-all-addresses"][..], true),
        (&["--report-to-all-addresses"], true),
        (&["-report-to-all-addresses=true"], true),
        (&["--report-to-all-addresses=false"], false),
        (&["-report-to-all-addresses=0"], false),
        // A bare flag does not swallow the next argument.
        (&["-report-to-all-addresses", "-reportinterval=5"], true),
    ] {
        let c = Config::from_args(parse(argv), env_with_pod("p")).unwrap();
        assert_eq!(c.report_to_all_addresses, on, "{argv:?}");
    }
    assert!(Args::try_parse_go(["netchecker-agent", "-report-to-all-addresses=maybe"]).is_err());
}

#[test]
fn one_server_endpoint_is_a_list_of_one() {
    let c = Config::from_args(
        parse(&["-serverendpoint=netchecker-service:8081"]),
        env_with_pod("p"),
    )
    .unwrap();
    assert_eq!(c.server_endpoint, "netchecker-service:8081");
    assert_eq!(c.server_endpoints, ["netchecker-service:8081"]);
    assert!(!c.report_to_all_addresses);
}

#[test]
fn server_endpoints_are_a_comma_list() {
    let c = Config::from_args(
        parse(&["-serverendpoint", " a:8081, b:8081,a:8081 ,[fd00::1]:8081"]),
        env_with_pod("p"),
    )
    .unwrap();
    assert_eq!(c.server_endpoints, ["a:8081", "b:8081", "[fd00::1]:8081"]);
}

#[test]
fn server_endpoint_lists_that_cannot_work_are_refused_at_start() {
    let seventeen = (0..17)
        .map(|i| format!("s{i}:8081"))
        .collect::<Vec<_>>()
        .join(",");
    for (list, says) in [
        (" , ", "invalid URL"),
        (seventeen.as_str(), "17 servers; at most 16"),
        ("a:8081,:8081", "invalid URL"),
    ] {
        let argv = ["-serverendpoint", list];
        let err = Config::from_args(parse(&argv), env_with_pod("p")).unwrap_err();
        assert!(err.to_string().contains(says), "{list:?}: {err}");
    }
}
