//! `netchecker-server`: parse arguments, set up logging, run.

use std::process::ExitCode;

fn main() -> ExitCode {
    let config = match netchecker_server::Config::try_parse_args(std::env::args_os()) {
        Ok(config) => config,
        Err(e) => e.exit(),
    };
    netchecker_cli::init_logging(config.log_format, config.verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = netchecker_cli::shutdown_on_signal();
        match netchecker_server::run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "netchecker server failed");
                eprintln!("netchecker-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
