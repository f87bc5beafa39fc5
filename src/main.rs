//! `ccr`: the command line over the library (see `ccr::cli`).

fn main() -> std::process::ExitCode {
    ccr::cli::main(std::env::args_os())
}
