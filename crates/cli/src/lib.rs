//! Command-line plumbing shared by `netchecker-server` and `netchecker-agent`.
//!
//! Both binaries accept the original Go spellings (`-endpoint x`,
//! `-endpoint=x`, `-kubeproxyinit=false`, `-v 5`) beside idiomatic
//! `--kebab-case` flags; log through `tracing` in plain or JSON form; and
//! drain on the first SIGTERM/SIGINT, aborting on the second.

pub mod goflags;
pub mod logging;
pub mod signals;

pub use goflags::{go_bool, normalize_args};
pub use logging::{LogFormat, init_logging};
pub use signals::shutdown_on_signal;
