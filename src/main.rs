fn main() -> std::process::ExitCode {
    tmt_payments::cli::main()
}
