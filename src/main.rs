//! The `flagramp` command: parses arguments and hands everything else to the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
