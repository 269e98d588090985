//! The `ferrowg` binary: see [`ferrowg::cli`].

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(ferrowg::cli::main(args));
}
