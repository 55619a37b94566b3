//! The `box` executable: everything lives in the library; this only hands over.
fn main() -> std::process::ExitCode {
    boxctr::cli::main()
}
