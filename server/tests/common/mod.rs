//! Test harness: the real `netbridge` binary, started inside a throwaway network namespace
//! (`ip netns add nbt-<random>`), driven over its real Unix socket with raw HTTP/1.1, the docker
//! CLI and docker-py. Everything a test makes is removed on drop, also when the test panics.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub mod consistency;

#[allow(unused_imports)]
pub use serde_json::{Value, json};

/// A random suffix for names: namespaces, networks, sandboxes.
pub fn rand_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

/// Runs a command, returning its output; panics only if it cannot be started.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a command that must succeed, returning its stdout.
pub fn must(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace made for one test, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = format!("{prefix}-{}", rand_hex(8));
        must("ip", &["netns", "add", &name]);
        must("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `ip -n <ns> …`, which must succeed; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        must("ip", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// An HTTP response as read off the socket.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} (status {})", self.body, self.status))
    }

    /// The `message` of a Docker error body, checking it is served as exactly application/json.
    pub fn message(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "error without JSON content type: {self:?}"
        );
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {:?}", self.body))
            .to_string()
    }
}

/// The daemon under test: a namespace of its own, a temp dir with its socket and database.
pub struct Daemon {
    pub ns: Netns,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub db: PathBuf,
    extra: Vec<String>,
    /// Environment variables set on every (re)start, e.g. `NETBRIDGE_CRASH_AT`.
    env: Vec<(String, String)>,
    child: Option<Child>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_netbridge")
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// Starts with extra `serve` arguments.
    pub fn start_with(extra: &[&str]) -> Daemon {
        Daemon::start_with_args_env(extra, &[])
    }

    /// Starts with extra environment variables (kept for restarts until [`Daemon::set_env`]).
    pub fn start_with_env(env: &[(&str, &str)]) -> Daemon {
        Daemon::start_with_args_env(&[], env)
    }

    /// Starts with extra `serve` arguments and environment variables.
    pub fn start_with_args_env(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let ns = Netns::new("nbt");
        let dir = std::env::temp_dir().join(format!("netbridge-test-{}", ns.name));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut d = Daemon {
            socket: dir.join("netbridge.sock"),
            db: dir.join("state/netbridge.db"),
            dir,
            ns,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))
            .expect("log file");
        let socket = self.socket.display().to_string();
        let db = self.db.display().to_string();
        // nsenter enters only the network namespace: `ip netns exec` would also give the
        // daemon a private mount namespace, hiding the sandboxes it mounts under /run/netns.
        let netns_file = format!("--net=/run/netns/{}", self.ns.name);
        let mut args: Vec<&str> = vec![
            &netns_file,
            "--",
            binary(),
            "serve",
            "--socket",
            &socket,
            "--db",
            &db,
            "--log-level",
            "debug",
        ];
        args.extend(self.extra.iter().map(String::as_str));
        let child = Command::new("nsenter")
            .args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn netbridge");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("netbridge exited early ({status}):\n{}", self.log());
            }
            if UnixStream::connect(&self.socket).is_ok()
                && let Ok(r) = self.try_request("GET", "/_ping", None, None)
                && r.status == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "netbridge did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // nsenter execs the binary (no --fork), so the child PID is the daemon's.
        let _ = run("kill", &["-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("netbridge did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Replaces the environment used from the next (re)start on.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Stops (SIGTERM, if still running) and starts again with this environment instead;
    /// `restart_with_env(&[])` restarts without any extra variables.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.stop();
        self.set_env(env);
        self.spawn();
    }

    /// Waits up to `secs` seconds for the daemon to exit by itself (e.g. an abort at a crash
    /// point); returns its exit status, or None if it is still running.
    pub fn wait_exit(&mut self, secs: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the daemon process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `netbridge <args…>` as a one-off command inside the daemon's namespace (e.g. the offline
    /// `reconcile` against this daemon's database and socket).
    pub fn run_cli(&self, args: &[&str]) -> Output {
        let netns_file = format!("--net=/run/netns/{}", self.ns.name);
        let mut all: Vec<&str> = vec![&netns_file, "--", binary()];
        all.extend_from_slice(args);
        Command::new("nsenter")
            .args(&all)
            .output()
            .expect("run netbridge")
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A raw HTTP request that reports connection errors (a killed daemon) instead of
    /// panicking. A daemon that dies mid-request gives `Ok` with status 0 or an `Err`.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<Response> {
        request_at(&self.socket, method, path, content_type, body)
    }

    /// [`Daemon::try_request`] of a JSON body.
    pub fn try_post(&self, path: &str, body: &Value) -> std::io::Result<Response> {
        self.try_request(
            "POST",
            path,
            Some("application/json"),
            Some(&body.to_string()),
        )
    }

    /// A raw HTTP request with an optional Content-Type and body.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> Response {
        self.try_request(method, path, content_type, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    pub fn get(&self, path: &str) -> Response {
        self.raw("GET", path, None, None)
    }

    pub fn delete(&self, path: &str) -> Response {
        self.raw("DELETE", path, None, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.raw(
            "POST",
            path,
            Some("application/json"),
            Some(&body.to_string()),
        )
    }

    /// Creates a network that must succeed; returns its ID.
    pub fn create_network(&self, body: &Value) -> String {
        let r = self.post("/networks/create", body);
        assert_eq!(r.status, 201, "create {body}: {}", r.body);
        r.json()["Id"].as_str().expect("Id").to_string()
    }

    /// `docker …` against this daemon's socket.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .output()
            .expect("run docker (is the docker CLI installed?)")
    }

    /// `docker …` that must succeed; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed:\n{}{}\n--- daemon log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a Python script with `SOCKET` set to the daemon's socket path (docker-py tests).
    pub fn python(&self, script: &str) -> Output {
        Command::new("python3")
            .args(["-c", script])
            .env("SOCKET", &self.socket)
            .output()
            .expect("run python3")
    }

    /// `ip …` inside the daemon's namespace; must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        self.ns.ip(args)
    }

    /// Whether a link of that name exists in the daemon's namespace.
    pub fn has_link(&self, name: &str) -> bool {
        run("ip", &["-n", &self.ns.name, "link", "show", "dev", name])
            .status
            .success()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- netbridge log ({}) ---\n{}", self.ns.name, self.log());
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 request over a Unix socket (`Connection: close`); connection errors are returned.
pub fn request_at(
    socket: &Path,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<Response> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    Ok(parse_response(&raw, method == "HEAD"))
}

/// Parses a raw HTTP/1.1 response (status line, headers, a plain or chunked body), e.g. one
/// read off a TCP connection a test drove by hand.
pub fn parse_http(raw: &[u8]) -> Response {
    parse_response(raw, false)
}

fn parse_response(raw: &[u8], head: bool) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = raw.get(split + 4..).unwrap_or_default();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if head {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or_default();
    }
    out
}

/// The IPv4 addresses (with prefix) on `dev` in the daemon's namespace.
pub fn inet(d: &Daemon, dev: &str) -> Vec<String> {
    d.ip(&["-4", "addr", "show", "dev", dev])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("inet "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Docker's ID form: 64 lowercase hex characters.
pub fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Waits until `f` holds, up to `secs` seconds.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// A small xorshift generator for workloads: seeded from /dev/urandom unless `NETBRIDGE_SEED`
/// is set, and printed by the tests so a failing run can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// `NETBRIDGE_SEED` if set, else a random seed; the seed is returned to be printed.
    pub fn seeded() -> (Rng, u64) {
        let seed = std::env::var("NETBRIDGE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| u64::from_str_radix(&rand_hex(16), 16).unwrap_or(0x9e37_79b9));
        (Rng::new(seed), seed)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Names of namespaces a test had the daemon make under /run/netns (sandboxes). Every name is
/// `nbt-…`; on drop, any of them still present is deleted, also when the test panicked or the
/// daemon was killed before it could remove them.
#[derive(Default)]
pub struct SandboxNames(std::sync::Mutex<Vec<String>>);

impl SandboxNames {
    pub fn new() -> SandboxNames {
        SandboxNames::default()
    }

    /// A fresh `nbt-<random>` name, registered for clean-up.
    pub fn fresh(&self) -> String {
        let name = format!("nbt-{}", rand_hex(10));
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.clone());
        name
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Removes every registered sandbox through the API (`DELETE /containers/<name>?force=1`,
    /// which must answer 204 or 404), while the daemon runs.
    pub fn remove_all(&self, d: &Daemon) {
        for name in self.all() {
            let r = d.delete(&format!("/containers/{name}?force=1"));
            assert!(
                r.status == 204 || r.status == 404,
                "remove sandbox {name}: {} {}",
                r.status,
                r.body
            );
        }
    }
}

impl Drop for SandboxNames {
    fn drop(&mut self) {
        for name in self.all() {
            if name.starts_with("nbt-") && Path::new("/run/netns").join(&name).exists() {
                let _ = run("ip", &["netns", "del", &name]);
            }
            // The resolv.conf the daemon writes for a sandbox (removed with it through the API).
            if name.starts_with("nbt-") {
                let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&name));
            }
        }
    }
}

/// A process sleeping inside a named namespace (a container reached by PID), killed on drop.
pub struct Sleeper(Child);

impl Sleeper {
    /// Starts `sleep` in `/run/netns/<ns>` and waits until it sits there (nsenter execs it).
    pub fn in_netns(ns: &str) -> Sleeper {
        let path = format!("/run/netns/{ns}");
        let child = Command::new("nsenter")
            .args([&format!("--net={path}"), "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let sleeper = Sleeper(child);
        let inode = |p: &str| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).map(|m| m.ino()).ok()
        };
        let want = inode(&path);
        assert!(
            want.is_some()
                && eventually(5, || inode(&format!("/proc/{}/ns/net", sleeper.0.id()))
                    == want),
            "sleep did not enter {path}"
        );
        sleeper
    }

    pub fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
