//! The client examples under `client-examples/` (issue 6), each run as a subprocess with its one
//! command against a daemon of its own, as a user would run it: the whole experiment (two
//! sandboxes, a network with an explicit subnet, connect both, one with a static IP, inspect,
//! ping between them, disconnect, clean up). Also: the OpenAPI document validates as 3.1, and the
//! 3.0 form the Rust example hands progenitor validates as 3.0.
//!
//! A missing tool fails the test, naming what `.ci/install-deps` installs. The sandboxes and the
//! network of an example (`nbt-<random>-<example>-a/-b/-net`) are removed even when it fails.

mod common;

use common::{Daemon, rand_hex, run};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn example(name: &str) -> PathBuf {
    repo().join("client-examples").join(name)
}

/// Fails the test unless `tool` is on PATH.
fn require(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "`{tool}` not found: {hint} (.ci/install-deps)");
}

/// One example run: its names, and the removal of whatever it left, also on failure.
struct Experiment<'a> {
    d: &'a Daemon,
    prefix: String,
}

impl<'a> Experiment<'a> {
    fn new(d: &'a Daemon, example: &str) -> Experiment<'a> {
        Experiment {
            d,
            prefix: format!("nbt-{}-{example}", rand_hex(6)),
        }
    }

    fn sandboxes(&self) -> [String; 2] {
        [format!("{}-a", self.prefix), format!("{}-b", self.prefix)]
    }

    fn network(&self) -> String {
        format!("{}-net", self.prefix)
    }

    /// The example's command with the env vars pointing at this daemon, under `timeout`.
    fn command(&self, secs: u32, program: &Path) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "10", &secs.to_string()])
            .arg(program)
            .env("NETBRIDGE_SOCKET", &self.d.socket)
            .env("NETBRIDGE_PREFIX", &self.prefix)
            .env_remove("NETBRIDGE_TCP");
        c
    }

    /// Runs the command; it must exit 0 and leave nothing behind.
    fn must_pass(&self, what: &str, mut cmd: Command) -> String {
        let out: Output = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{what} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("== done"),
            "{what} did not finish:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("== ping {}-a", self.prefix)),
            "{what} did not ping between the sandboxes:\n{stdout}"
        );
        self.assert_clean(what);
        stdout
    }

    /// The example removed its sandboxes (and their namespaces) and its network.
    fn assert_clean(&self, what: &str) {
        let listed = self.d.get("/containers/json?all=1").body;
        for s in self.sandboxes() {
            assert!(!listed.contains(&s), "{what} left sandbox {s}: {listed}");
            assert!(
                !Path::new("/run/netns").join(&s).exists(),
                "{what} left namespace /run/netns/{s}"
            );
        }
        let net = self.d.get(&format!("/networks/{}", self.network()));
        assert_eq!(net.status, 404, "{what} left its network: {}", net.body);
    }
}

impl Drop for Experiment<'_> {
    fn drop(&mut self) {
        // curl rather than the harness's client, which panics on I/O errors
        let socket = self.d.socket.display().to_string();
        let delete = |path: String| {
            let _ = run(
                "curl",
                &[
                    "-s",
                    "-o",
                    "/dev/null",
                    "--max-time",
                    "10",
                    "--unix-socket",
                    &socket,
                    "-X",
                    "DELETE",
                    &format!("http://localhost{path}"),
                ],
            );
        };
        for s in self.sandboxes() {
            delete(format!("/containers/{s}?force=1"));
            if Path::new("/run/netns").join(&s).exists() {
                let _ = run("ip", &["netns", "del", &s]);
            }
        }
        delete(format!("/networks/{}", self.network()));
    }
}

/// A daemon also serving TCP on 127.0.0.1:2375 (inside its namespace), with one bearer token.
struct TcpDaemon {
    d: Daemon,
    token: String,
    token_file: PathBuf,
}

impl TcpDaemon {
    fn start() -> TcpDaemon {
        let token = rand_hex(32);
        let token_file = std::env::temp_dir().join(format!("nbt-token-{}", rand_hex(8)));
        std::fs::write(&token_file, format!("{token}\n")).expect("token file");
        let file = token_file.display().to_string();
        let d = Daemon::start_with(&["--tcp", "127.0.0.1:2375", "--token-file", &file]);
        TcpDaemon {
            d,
            token,
            token_file,
        }
    }

    /// The example's command run inside the daemon's namespace, where its TCP listener is.
    fn command(&self, e: &Experiment, secs: u32, program: &Path) -> Command {
        let mut cmd = e.command(secs, Path::new("nsenter"));
        cmd.arg(format!("--net=/run/netns/{}", self.d.ns.name))
            .arg(program)
            .env("NETBRIDGE_TCP", "127.0.0.1:2375")
            .env("NETBRIDGE_TOKEN", &self.token);
        cmd
    }
}

impl Drop for TcpDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.token_file);
    }
}

#[test]
fn curl_example_over_the_unix_socket() {
    require("curl", "apt-get install curl");
    let d = Daemon::start();
    let e = Experiment::new(&d, "curl");
    let out = e.must_pass(
        "client-examples/curl/run",
        e.command(120, &example("curl/run")),
    );
    assert!(out.contains("talking to unix://"), "{out}");
}

#[test]
fn curl_example_over_tcp() {
    require("curl", "apt-get install curl");
    let t = TcpDaemon::start();
    let e = Experiment::new(&t.d, "curltcp");
    let cmd = t.command(&e, 120, &example("curl/run"));
    let out = e.must_pass("client-examples/curl/run over TCP", cmd);
    assert!(out.contains("talking to http://127.0.0.1:2375"), "{out}");
}

#[test]
fn python_example_with_a_generated_client() {
    require(
        "openapi-python-client",
        "pip install -r client-examples/python/requirements.txt",
    );
    let d = Daemon::start();
    let e = Experiment::new(&d, "python");
    e.must_pass(
        "client-examples/python/run",
        e.command(300, &example("python/run")),
    );
}

#[test]
fn typescript_example_with_openapi_fetch() {
    require("node", "Node.js 20 (>= 20.18.1)");
    require("npm", "Node.js 20 (>= 20.18.1) with npm");
    let d = Daemon::start();
    let e = Experiment::new(&d, "ts");
    e.must_pass(
        "client-examples/typescript/run",
        e.command(600, &example("typescript/run")),
    );
}

#[test]
fn rust_example_with_a_progenitor_client_over_unix_socket_and_tcp() {
    require("cargo", "the Rust toolchain");
    let t = TcpDaemon::start();
    // the first run builds the example (progenitor, reqwest): minutes on a cold cache
    let e = Experiment::new(&t.d, "rust");
    let out = e.must_pass(
        "client-examples/rust/run",
        e.command(1500, &example("rust/run")),
    );
    assert!(out.contains("talking to unix://"), "{out}");

    let e = Experiment::new(&t.d, "rusttcp");
    let cmd = t.command(&e, 300, &example("rust/run"));
    let out = e.must_pass("client-examples/rust/run over TCP", cmd);
    assert!(out.contains("talking to http://127.0.0.1:2375"), "{out}");
}

#[test]
fn docker_py_example() {
    require("python3", "Python 3");
    let d = Daemon::start();
    let e = Experiment::new(&d, "dockerpy");
    e.must_pass(
        "client-examples/docker-py/run",
        e.command(120, &example("docker-py/run")),
    );
}

fn validate(path: &Path) {
    require(
        "openapi-spec-validator",
        "pip install openapi-spec-validator",
    );
    let out = Command::new("openapi-spec-validator")
        .arg(path)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "{} is not a valid OpenAPI document:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openapi_document_validates_as_openapi_3_1() {
    let path = repo().join("openapi/netbridge.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    validate(&path);
}

/// The converter of the Rust example turns the 3.1 document into a valid 3.0 one.
#[test]
fn openapi_3_0_form_for_progenitor_validates() {
    require("cargo", "the Rust toolchain");
    let dir = example("rust");
    let out = Command::new("cargo")
        .args([
            "run",
            "-q",
            "--locked",
            "--bin",
            "to-openapi30",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .arg("--")
        .arg(repo().join("openapi/netbridge.json"))
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "to-openapi30 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let path = std::env::temp_dir().join(format!("nbt-openapi30-{}.json", rand_hex(8)));
    std::fs::write(&path, &out.stdout).expect("write");
    let validated = std::panic::catch_unwind(|| validate(&path));
    let _ = std::fs::remove_file(&path);
    if let Err(e) = validated {
        std::panic::resume_unwind(e);
    }
}
