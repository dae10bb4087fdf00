//! `licentia serve`: the server until SIGTERM or SIGINT.
use anyhow::Context;

use licentia::config::Config;
use licentia::service::demo;

pub async fn serve(config: Config, with_demo: bool) -> anyhow::Result<()> {
    without_huge_pages();
    init_logging(&config);
    let signals = licentia::app::StopSignals::watch()?;
    let listen = config.listen.clone();
    let running = licentia::app::start(config)
        .await
        .context("starting the server")?;
    if with_demo {
        print_demo(demo::seed(&running.core).await?);
    }
    tracing::info!(addr = %running.addr, requested = %listen, "licentia listening");
    running.until_signal(signals).await.context("server")?;
    Ok(())
}

/// Asks the kernel for no transparent huge pages for this process. The allocator asks for
/// them on its arenas, and each one given makes 2 MiB resident however little of it is in
/// use: the server held about 30 MiB more while it sent a large report (87-97 MiB against
/// 58-64 MiB, README "At scale").
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes a flag by value and no pointer.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LICENTIA_LOG")
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn print_demo(o: demo::DemoOutcome) {
    if !o.items_created.is_empty() {
        println!("demo catalog: {}", o.items_created.join(", "));
    }
    match o.admin_password {
        Some(p) => println!("admin user: admin\nadmin password (shown once): {p}"),
        None => println!("admin user exists already; its password is unchanged"),
    }
}
