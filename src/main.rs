fn main() -> std::process::ExitCode {
    ecoupon::cli::main()
}
