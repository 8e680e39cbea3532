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
    let suffix = rand_hex(6);
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
        .env("SUFFIX", &suffix)
        .env("SE_OFFLINE", "true")
        .output()
        .expect("run python3 (selenium: .ci/install-deps installs it)");
    let _ = std::fs::remove_dir_all(&scratch);
    // The scenario removes its sandboxes by clicking; if it failed half-way, they go here
    // (they live under /run/netns, beyond the daemon's namespace).
    for name in [format!("ui1{suffix}"), format!("ui2{suffix}")] {
        d.delete(&format!("/containers/{name}?force=1"));
    }
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

/// Sandboxes the benchmark made under /run/netns, deleted when it ends however it ends (after
/// the daemon, whose namespace takes the bridges and veths with it).
struct Sandboxes(Vec<String>);

impl Drop for Sandboxes {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// Runs `work` for 0..count on four threads.
fn in_parallel(count: usize, work: impl Fn(usize) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    work(i);
                }
            });
        }
    });
}

fn must_post(d: &Daemon, path: &str, body: &serde_json::Value, want: u16) {
    let r = d.post(path, body);
    assert_eq!(r.status, want, "{path} {body}: {}", r.body);
}

/// The dashboard's speed (issue 16, figures in BENCHMARKS.md): 1,000 networks and 5,000
/// endpoints (1,000 sandboxes on five networks each), then, in headless Chromium, navigation →
/// networks table drawn, and an API connect → the page showing it. Takes a few minutes:
/// `cargo test --release --test dashboard_browser dashboard_benchmark -- --ignored --nocapture`
/// (`NETBRIDGE_UI_BENCH_NETWORKS`, `…_CONTAINERS` scale it down).
#[test]
#[ignore]
fn dashboard_benchmark() {
    let count = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let networks = count("NETBRIDGE_UI_BENCH_NETWORKS", 1000);
    let containers = count("NETBRIDGE_UI_BENCH_CONTAINERS", 1000);
    let tag = rand_hex(6);
    let mut names: Vec<String> = (0..containers)
        .map(|j| format!("nbt-uib{tag}-{j}"))
        .collect();
    names.push(format!("nbt-uib{tag}-spare"));
    let _sandboxes = Sandboxes(names.clone());
    let scratch = std::env::temp_dir().join(format!("nbt-uib-{tag}"));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let tokens = scratch.join("tokens");
    std::fs::write(&tokens, format!("tok-{}\n", rand_hex(24))).expect("token file");
    let d = Daemon::start_with(&[
        "--tcp",
        "127.0.0.1:2375",
        "--token-file",
        &tokens.display().to_string(),
    ]);
    let started = std::time::Instant::now();
    in_parallel(networks, |i| {
        let subnet = format!("10.{}.{}.0/24", i / 256, i % 256);
        let body =
            serde_json::json!({"Name": format!("bn{i}"), "IPAM": {"Config": [{"Subnet": subnet}]}});
        must_post(&d, "/networks/create", &body, 201);
    });
    in_parallel(names.len(), |j| {
        let r = d.raw(
            "POST",
            &format!("/containers/create?name={}", names[j]),
            None,
            None,
        );
        assert_eq!(r.status, 201, "{}", r.body);
    });
    in_parallel(containers * 5, |k| {
        let (j, n) = (k / 5, (k / 5 * 5 + k % 5) % networks.max(1));
        let body = serde_json::json!({"Container": names[j]});
        must_post(&d, &format!("/networks/bn{n}/connect"), &body, 200);
    });
    println!(
        "filled {networks} networks and {} endpoints in {:.0} s",
        containers * 5,
        started.elapsed().as_secs_f64()
    );
    let out = d.run_cli(&["login-url", "--socket", &d.socket.display().to_string()]);
    let login = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/bench.py");
    let run = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", d.ns.name))
        .args(["--", "python3", script])
        .env("BASE", "http://127.0.0.1:2375")
        .env("LOGIN_URL", &login)
        .env("SOCKET", &d.socket)
        .env("NETWORK", "bn0")
        .env(
            "SHOTS",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/dashboard-screenshots"
            ),
        )
        .env("CONTAINER", names.last().expect("spare"))
        .env("RUNS", "5")
        .output()
        .expect("run python3");
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{}", String::from_utf8_lossy(&run.stdout));
    assert!(
        run.status.success(),
        "the benchmark failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
