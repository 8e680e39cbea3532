//! The interactive docs at `/docs` are served entirely from the binary and render with no
//! network: headless Chromium loads them inside the daemon's throwaway namespace, which has no
//! route anywhere, and the rendered page lists the API's operations.

mod common;

use std::process::Command;

use common::Daemon;

#[test]
fn docs_are_served_from_the_binary() {
    let d = Daemon::start();
    let moved = d.get("/docs");
    assert_eq!(moved.status, 303, "{moved:?}");
    assert_eq!(moved.header("location"), Some("/docs/"));
    let page = d.get("/docs/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("swagger-ui"), "{}", page.body);
    // Every asset the page names is ours, and served.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for piece in page.body.split(attr).skip(1) {
            let target = piece.split('"').next().unwrap_or_default();
            assert!(
                !target.contains("://") && !target.starts_with("//"),
                "the docs page loads {target} from elsewhere"
            );
            assets.push(target.trim_start_matches("./").to_string());
        }
    }
    assert!(!assets.is_empty());
    for a in &assets {
        let r = d.get(&format!("/docs/{a}"));
        assert_eq!(r.status, 200, "asset {a}");
        assert!(!r.body.is_empty(), "asset {a} is empty");
    }
    let init = d.get("/docs/swagger-initializer.js");
    assert_eq!(init.status, 200);
    assert!(init.body.contains("/openapi.json"), "{}", init.body);
    let doc = d.get("/openapi.json").json();
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1")
    );
}

#[test]
fn docs_render_in_a_browser_without_network() {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("headless Chromium is needed (apt-get install chromium; .ci/install-deps does it)");
    let d = Daemon::start_with(&["--tcp", "127.0.0.1:2375", "--insecure-tcp"]);
    let profile = d.dir.join("chromium-profile");
    let netns = format!("--net=/run/netns/{}", d.ns.name);
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let out = Command::new("nsenter")
        .args([
            netns.as_str(),
            "--",
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &profile_arg,
            "--virtual-time-budget=15000",
            "--dump-dom",
            "http://127.0.0.1:2375/docs/",
        ])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    for path in [
        "data-path=\"/networks/create\"",
        "data-path=\"/networks/{id}/connect\"",
        "data-path=\"/containers/create\"",
    ] {
        assert!(
            dom.contains(path),
            "the rendered docs lack {path}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dom.contains("netbridge"), "no title in the rendered docs");
}
