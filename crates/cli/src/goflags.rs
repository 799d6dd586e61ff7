//! Accept Go `flag`-package spellings on top of clap.
//!
//! Go's `flag` treats `-name` and `--name` alike, and boolean flags take their
//! value only as `-name=false`. Rather than teach clap a second syntax, the
//! arguments are rewritten before parsing: a single-dash token whose name is a
//! long option of the command (or a glog short like `-v`) gains a second dash.
//! Anything else (values, `--`, unknown tokens) is left for clap to judge.

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};

/// Rewrite `-name`, `-name=value` into `--name`, `--name=value` for every
/// `name` that `cmd` knows as a long option or alias. Tokens after `--` and
/// tokens that are values of a preceding option are left untouched.
pub fn normalize_args<I, T>(cmd: &Command, args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let longs: Vec<String> = cmd
        .get_arguments()
        .flat_map(|a| {
            a.get_long()
                .into_iter()
                .chain(a.get_all_aliases().unwrap_or_default())
                .map(str::to_owned)
        })
        .collect();
    let mut out = Vec::new();
    let mut rest_verbatim = false;
    for (i, arg) in args.into_iter().map(Into::into).enumerate() {
        if i == 0 || rest_verbatim {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest_verbatim = true;
            out.push(arg);
            continue;
        }
        let is_single_dash = text.starts_with('-') && !text.starts_with("--") && text.len() > 1;
        if is_single_dash {
            let name = text[1..].split('=').next().unwrap_or_default();
            if longs.iter().any(|l| l == name) {
                out.push(format!("-{text}").into());
                continue;
            }
        }
        out.push(arg);
    }
    out
}

/// Make `arg` a Go-style boolean: `--name` means true, `--name=false` false,
/// and a following word is never taken as its value.
pub fn go_bool(arg: Arg) -> Arg {
    arg.action(ArgAction::Set)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .value_parser(clap::builder::BoolishValueParser::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("t")
            .arg(
                Arg::new("endpoint")
                    .long("endpoint")
                    .default_value("0.0.0.0:8081"),
            )
            .arg(
                go_bool(
                    Arg::new("kubeproxyinit")
                        .long("kubeproxyinit")
                        .alias("kube"),
                )
                .default_value("true"),
            )
            .arg(
                Arg::new("v")
                    .long("v")
                    .short('v')
                    .value_parser(clap::value_parser!(u8)),
            )
            .arg(Arg::new("pos").num_args(0..))
    }

    fn parse(args: &[&str]) -> clap::ArgMatches {
        let c = cmd();
        let argv = normalize_args(&c, std::iter::once("t").chain(args.iter().copied()));
        c.try_get_matches_from(argv).unwrap()
    }

    #[test]
    fn go_spellings_parse_like_kebab_ones() {
        for args in [
            &["-endpoint", "1.2.3.4:5"][..],
            &["-endpoint=1.2.3.4:5"],
            &["--endpoint", "1.2.3.4:5"],
            &["--endpoint=1.2.3.4:5"],
        ] {
            let m = parse(args);
            assert_eq!(
                m.get_one::<String>("endpoint").unwrap(),
                "1.2.3.4:5",
                "{args:?}"
            );
        }
    }

    #[test]
    fn go_booleans() {
        let get = |args: &[&str]| *parse(args).get_one::<bool>("kubeproxyinit").unwrap();
        assert!(get(&[]));
        assert!(get(&["-kubeproxyinit"]));
        assert!(get(&["-kubeproxyinit=true"]));
        assert!(!get(&["-kubeproxyinit=false"]));
        assert!(!get(&["--kube=false"]));
        assert!(!get(&["-kube=0"]));
    }

    #[test]
    fn glog_verbosity() {
        for args in [&["-v", "5"][..], &["-v=5"], &["--v=5"], &["-v5"]] {
            assert_eq!(*parse(args).get_one::<u8>("v").unwrap(), 5, "{args:?}");
        }
    }

    #[test]
    fn values_and_unknown_tokens_are_left_alone() {
        let c = cmd();
        let argv = normalize_args(&c, ["t", "-endpoint", "-weird", "--", "-endpoint"]);
        assert_eq!(
            argv,
            ["t", "--endpoint", "-weird", "--", "-endpoint"].map(OsString::from)
        );
    }
}
