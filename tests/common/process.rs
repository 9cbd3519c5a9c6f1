//! Running the real `tmt-payments` binary as a child process.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tmt-payments");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command with a clean environment: only what the test sets reaches the binary.
pub fn command(db_url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn");
    c
}

pub fn run(db_url: &str, args: &[&str]) -> Output {
    command(db_url).args(args).output().unwrap()
}

pub struct Server {
    pub child: Child,
    pub address: String,
}

impl Server {
    /// Starts `serve` on a free port and waits until it answers.
    pub fn start(db_url: &str, envs: &[(&str, &str)]) -> Server {
        Self::start_logging(db_url, envs, None)
    }

    /// Like `start`, with standard error (the log) written to `log`.
    pub fn start_logging(db_url: &str, envs: &[(&str, &str)], log: Option<&Path>) -> Server {
        let port = free_port();
        let mut c = command(db_url);
        c.env("PORT", port.to_string())
            .env("BIND", "127.0.0.1")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::null(),
            });
        let child = c.spawn().unwrap();
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&address).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            address: format!("http://{address}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("ledger.db").display())
}
