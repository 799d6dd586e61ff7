//! One-time `tracing` set-up shared by both binaries.
//!
//! `RUST_LOG` wins when set. Otherwise the glog verbosity `-v N` of the
//! original maps onto levels for the netchecker crates (0-2 info, 3-5 debug,
//! 6+ trace) while dependencies stay at `warn`, so `-v 5` from an old
//! manifest gives useful detail without a flood from HTTP internals.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// The filter directive a glog verbosity stands for.
pub fn directive_for_verbosity(v: u8) -> String {
    let level = match v {
        0..=2 => "info",
        3..=5 => "debug",
        _ => "trace",
    };
    format!(
        "warn,netchecker={level},netchecker_server={level},netchecker_agent={level},netchecker_wire={level},netchecker_cli={level}"
    )
}

/// Install the global subscriber, writing to stderr. Safe to call once.
pub fn init_logging(format: LogFormat, verbosity: u8) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(directive_for_verbosity(verbosity)));
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(e) = result {
        eprintln!("logging was already initialised: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_levels() {
        assert!(directive_for_verbosity(0).contains("netchecker_server=info"));
        assert!(directive_for_verbosity(5).contains("netchecker_server=debug"));
        assert!(directive_for_verbosity(9).contains("netchecker_agent=trace"));
        assert!(directive_for_verbosity(5).starts_with("warn,"));
        EnvFilter::try_new(directive_for_verbosity(5)).unwrap();
    }
}
