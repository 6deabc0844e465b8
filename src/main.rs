//! The `custvalue` command: a thin shell over the library. It parses flags, calls the
//! library, prints and maps errors to exit codes (0 ok, 1 internal failure, 2 bad input
//! or usage).

mod cli;

fn main() {
    std::process::exit(cli::main());
}
