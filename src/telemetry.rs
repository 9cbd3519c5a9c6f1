//! Logging: human-readable by default, one JSON object per line with `LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Installs the global subscriber; `RUST_LOG` narrows or widens it (default `info`).
pub fn init(format: LogFormat) {
    install(format, "info,sqlx=warn,hyper=warn,reqwest=warn");
}

/// For commands that print their own progress and report: only warnings and errors, unless
/// `RUST_LOG` says otherwise.
pub fn init_quiet(format: LogFormat) {
    install(format, "warn");
}

fn install(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
