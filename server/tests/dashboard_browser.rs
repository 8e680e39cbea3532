//! The dashboard in a real browser (issue 16): headless Chromium, driven by Selenium through
//! the system chromedriver, inside the daemon's throwaway namespace with no route anywhere.
//! The scenario itself is `tests/browser/dashboard.py`: a wrong token, the one-time login, the
//! seed's experiment by clicking and by keyboard, the topology, diagnose, a live update from
//! the docker CLI, same-origin requests only. Screenshots go to `target/dashboard-screenshots/`.

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_seed_experiment_by_clicking() {
    let token = format!("tok-{}", rand_hex(24));
    let scratch = std::env::temp_dir().join(format!("nbt-ui-{}", rand_hex(8)));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let tokens = scratch.join("tokens");
    std::fs::write(&tokens, format!("{token}\n")).expect("token file");
    let d = Daemon::start_with(&[
        "--tcp",
        "127.0.0.1:2375",
        "--token-file",
        &tokens.display().to_string(),
    ]);
    let out = d.run_cli(&["login-url", "--socket", &d.socket.display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let login = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let shots = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/dashboard-screenshots"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.py");
    let run = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", d.ns.name))
        .args(["--", "python3", script])
        .env("BASE", "http://127.0.0.1:2375")
        .env("LOGIN_URL", &login)
        .env("SOCKET", &d.socket)
        .env("SHOTS", shots)
        .env("SUFFIX", rand_hex(6))
        .env("SE_OFFLINE", "true")
        .output()
        .expect("run python3 (selenium: .ci/install-deps installs it)");
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{}", String::from_utf8_lossy(&run.stdout));
    assert!(
        run.status.success(),
        "the browser scenario failed:\n{}\n{}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        d.log()
    );
    assert!(
        !d.log().contains(&token),
        "the token is in the daemon's log"
    );
}
