//! `netchecker-agent`: parse the command line, set up logging and a
//! single-threaded runtime (one agent does little at a time; one thread keeps
//! its memory small), and run the agent until SIGTERM/SIGINT.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use netchecker_agent::{Args, Config};

fn main() -> ExitCode {
    let args = match Args::try_parse_go(std::env::args_os()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    netchecker_cli::init_logging(args.log_format, args.verbosity);
    let config = match Config::from_args(args, |k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // getaddrinfo runs on blocking threads, created on demand (one per
        // lookup running at the same time) and gone after 10 s idle. The cap
        // keeps a hanging resolver from piling up threads; it is high enough
        // that lookups of a round do not queue (which would inflate DNSLookup).
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = netchecker_cli::shutdown_on_signal();
        netchecker_agent::run(config, shutdown).await
    });
    // A DNS lookup stuck in getaddrinfo cannot be cancelled: do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
