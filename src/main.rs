// The service allocates many small, short-lived objects per request (JSON trees, headers);
// mimalloc serves them faster than glibc's allocator under concurrency (BENCHMARKS.md). Its
// arenas are committed lazily: see .cargo/config.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tmt_payments::cli::main()
}
