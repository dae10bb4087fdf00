//! The client runtime as a vendor embeds it: `examples/embed.rs`, built with the client
//! feature alone in CI, run here against a real server.
use std::process::Command;

use crate::activation::ticket_with;
use crate::harness::TestApp;

/// `target/<profile>/examples/embed`, next to this test binary's folder.
fn example() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = profile_dir.join("examples").join("embed");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --examples` (scripts/test.sh does)",
        path.display()
    );
    path
}

#[test]
fn the_embedding_example_activates_and_checks_a_license() {
    let app = TestApp::start();
    let (ticket, ids) = ticket_with(&app, "EMBED-1", "SNP-SINGLE", 1);
    let dir = app.db.dir.join("embedded");
    let out = Command::new(example())
        .args([&app.base, &ticket, dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("activated [{}]", ids[0])), "{text}");
    assert!(text.contains("licensed"), "{text}");
    // The server believes it: the receipt made the license activated in that container.
    let (state, serial) = crate::activation::license(&app, ids[0]);
    assert_eq!(state, "activated");
    assert!(text.contains(&serial.unwrap()), "{text}");
    assert!(dir.join("container.json").exists());

    // Bad input: a ticket with a typo is refused, with the server's reason.
    let first = ticket.chars().next().unwrap();
    let typo = format!("{}{}", if first == 'B' { 'C' } else { 'B' }, &ticket[1..]);
    let out = Command::new(example())
        .args([&app.base, &typo, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid_ticket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
