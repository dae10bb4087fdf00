//! The `licentia` binary: the command line (`cli`) on a runtime of its own.
mod cli;

use std::process::ExitCode;

use clap::Parser;

// Many small, short-lived allocations on many threads (requests, JSON, statements):
// mimalloc spends measurably less time on them than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = rt.block_on(cli::run(cli));
    // Everything that held the database is gone with the runtime; let its writers close.
    // A blocking task still running (an SMTP send a stopped worker abandoned) would hold a
    // plain drop of the runtime until it ends (up to smtp_timeout_secs per step of the SMTP
    // dialogue): it is left behind. Writes are not blocking tasks: the writer thread ends
    // with the last handle to the database and `finish_writers` waits for it.
    rt.shutdown_timeout(std::time::Duration::from_millis(250));
    licentia::store::finish_writers(std::time::Duration::from_secs(5));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
