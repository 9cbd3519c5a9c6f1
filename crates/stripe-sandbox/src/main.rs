fn main() -> std::process::ExitCode {
    stripe_sandbox::cli::main()
}
