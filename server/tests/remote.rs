//! Remote access (issue 7): TCP with TLS and bearer tokens, client certificates, token reload,
//! limits (body size, slow clients, concurrency), CORS, the Unix socket's mode and group, and
//! observability (request IDs, metrics, audit log). Every refused request is also shown to have
//! changed nothing.
//!
//! The TCP listener lives inside the daemon's throwaway network namespace, so every TCP client
//! runs there too: curl and the docker CLI through `nsenter --net=…`, raw sockets from a thread
//! that joined the namespace with setns(2). All traffic goes to 127.0.0.1 in that namespace.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Port of the TLS listener (each daemon has a namespace of its own, so ports never clash).
const TLS_PORT: u16 = 2376;
/// Port of the plain (loopback) TCP listener.
const TCP_PORT: u16 = 2375;

// ---------------------------------------------------------------------------------------------
// Scratch files, certificates, tokens
// ---------------------------------------------------------------------------------------------

/// A `nbt-remote-<random>` directory under the temp dir, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("nbt-remote-{}", rand_hex(10)));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write scratch file");
        p.display().to_string()
    }

    /// A docker config directory whose config.json sends `headers` on every request.
    fn docker_config(&self, name: &str, token: Option<&str>) -> String {
        let config = match token {
            Some(t) => json!({ "HttpHeaders": { "Authorization": format!("Bearer {t}") } }),
            None => json!({}),
        };
        self.write(&format!("{name}/config.json"), &config.to_string());
        self.arg(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign CA");
    (cert.pem(), Issuer::new(params, key))
}

/// A leaf certificate signed by `issuer`: (cert PEM, key PEM). `expired` makes it valid only
/// on 2020-01-01.
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> (String, String) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<String>>())
            .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 2);
    } else {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    }
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    (cert.pem(), key.serialize_pem())
}

/// The certificates of every TLS test, as files in `scratch`:
/// * `ca.pem`, `server-cert.pem`, `server-key.pem`: the CA and a server cert for 127.0.0.1;
/// * `expired-server-cert.pem`, `expired-server-key.pem`: the same, expired;
/// * `client/`, `other-ca/`, `expired/`: docker cert paths (ca.pem, cert.pem, key.pem) with a
///   good client cert, one signed by another CA, and an expired one signed by the right CA.
fn make_pki(scratch: &Scratch) {
    let (ca_pem, issuer) = ca("nbt test CA");
    let (_, other) = ca("nbt other CA");
    scratch.write("ca.pem", &ca_pem);
    let server = ExtendedKeyUsagePurpose::ServerAuth;
    let client = ExtendedKeyUsagePurpose::ClientAuth;
    let (c, k) = leaf(&issuer, "netbridge", &["127.0.0.1"], server.clone(), false);
    scratch.write("server-cert.pem", &c);
    scratch.write("server-key.pem", &k);
    let (c, k) = leaf(&issuer, "netbridge", &["127.0.0.1"], server, true);
    scratch.write("expired-server-cert.pem", &c);
    scratch.write("expired-server-key.pem", &k);
    for (dir, signer, expired) in [
        ("client", &issuer, false),
        ("other-ca", &other, false),
        ("expired", &issuer, true),
    ] {
        let (c, k) = leaf(signer, "nbt-client", &[], client.clone(), expired);
        scratch.write(&format!("{dir}/ca.pem"), &ca_pem);
        scratch.write(&format!("{dir}/cert.pem"), &c);
        scratch.write(&format!("{dir}/key.pem"), &k);
    }
}

fn token() -> String {
    format!("nbt-token-{}", rand_hex(24))
}

/// A daemon serving TLS with client certificates and tokens on 127.0.0.1:TLS_PORT.
fn tls_daemon(scratch: &Scratch, tokens: &str, extra: &[&str]) -> Daemon {
    let token_file = scratch.write("tokens", tokens);
    let listen = format!("127.0.0.1:{TLS_PORT}");
    let (cert, key, ca) = (
        scratch.arg("server-cert.pem"),
        scratch.arg("server-key.pem"),
        scratch.arg("ca.pem"),
    );
    let mut args = vec![
        "--tcp",
        &listen,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
        "--token-file",
        &token_file,
    ];
    args.extend_from_slice(extra);
    let d = Daemon::start_with(&args);
    wait_tcp(&d, TLS_PORT);
    d
}

/// Waits until the TCP listener accepts: the harness waits only for the Unix socket, which
/// the daemon binds first.
fn wait_tcp(d: &Daemon, port: u16) {
    let ns = d.ns.name.clone();
    let up = in_netns(&ns, move || {
        eventually(10, || TcpStream::connect(("127.0.0.1", port)).is_ok())
    });
    assert!(up, "nothing listens on 127.0.0.1:{port}:\n{}", d.log());
}

/// A daemon serving plain TCP with tokens on 127.0.0.1:TCP_PORT.
fn tcp_daemon(scratch: &Scratch, tokens: &str, extra: &[&str]) -> Daemon {
    let token_file = scratch.write("tokens", tokens);
    let listen = format!("127.0.0.1:{TCP_PORT}");
    let mut args = vec!["--tcp", &listen, "--token-file", &token_file];
    args.extend_from_slice(extra);
    let d = Daemon::start_with(&args);
    wait_tcp(&d, TCP_PORT);
    d
}

// ---------------------------------------------------------------------------------------------
// Clients inside the daemon's namespace
// ---------------------------------------------------------------------------------------------

/// A command run inside the daemon's network namespace.
fn in_ns(d: &Daemon, program: &str) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{}", d.ns.name))
        .arg("--")
        .arg(program);
    c
}

/// The command failed, and its stderr says `needle` (a refusal with the daemon's reason).
fn assert_fails_saying(out: &Output, needle: &str, what: &str) {
    assert!(!out.status.success(), "{what} succeeded: {}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(needle),
        "{what}: no {needle:?} in {}",
        text(out)
    );
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `docker …` inside the namespace against the TLS listener, with the cert path and docker
/// config directory given.
fn docker_tls(d: &Daemon, cert_path: &str, config: &str, args: &[&str]) -> Output {
    in_ns(d, "docker")
        .args(args)
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{TLS_PORT}"))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", cert_path)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS")
        .output()
        .expect("run docker")
}

/// `curl -i …` inside the namespace; returns the parsed response, or the failed output.
fn curl(d: &Daemon, args: &[&str]) -> Result<Response, Output> {
    let out = in_ns(d, "curl")
        .args(["-sS", "-i", "--max-time", "30", "-H", "Expect:"])
        .args(args)
        .output()
        .expect("run curl");
    if !out.status.success() {
        return Err(out);
    }
    Ok(parse_curl(&out.stdout))
}

/// curl's `-i` output: headers as sent, the body already de-chunked.
fn parse_curl(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(raw.get(split + 4..).unwrap_or_default()).into_owned(),
    }
}

/// curl against the TLS listener with the client certificate in `cert_dir` (None: no client
/// certificate), the server checked against ca.pem.
fn curl_tls(
    d: &Daemon,
    scratch: &Scratch,
    cert_dir: Option<&str>,
    extra: &[&str],
    path: &str,
) -> Result<Response, Output> {
    let ca = scratch.arg("ca.pem");
    let url = format!("https://127.0.0.1:{TLS_PORT}{path}");
    let (cert, key);
    let mut args: Vec<&str> = vec!["--cacert", &ca];
    if let Some(dir) = cert_dir {
        cert = scratch.arg(&format!("{dir}/cert.pem"));
        key = scratch.arg(&format!("{dir}/key.pem"));
        args.extend_from_slice(&["--cert", &cert, "--key", &key]);
    }
    args.extend_from_slice(extra);
    args.push(&url);
    curl(d, &args)
}

/// Runs `f` on a thread that joined the namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn setns(fd: i32, nstype: i32) -> i32;
    }
    const CLONE_NEWNET: i32 = 0x4000_0000;
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on a valid namespace fd affects only this thread, which we own.
        let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

/// A raw HTTP/1.1 request (`Connection: close`); a body is sent as JSON with its length.
fn http(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    out
}

/// Writes `req` (from a second thread, so a server that answers before reading everything
/// cannot deadlock us) and reads until the server closes; keeps what arrived before a reset.
fn exchange<S: Read + Write + Send + 'static>(
    mut reader: S,
    mut writer: S,
    req: Vec<u8>,
) -> Vec<u8> {
    let w = std::thread::spawn(move || {
        let _ = writer.write_all(&req);
        let _ = writer.flush();
        writer
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    drop(w.join());
    raw
}

/// One raw request over TCP to 127.0.0.1:`port` in the daemon's namespace.
fn tcp(d: &Daemon, port: u16, req: Vec<u8>) -> Response {
    let raw = in_netns(&d.ns.name, move || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect over TCP");
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(40))).unwrap();
        let w = s.try_clone().unwrap();
        exchange(s, w, req)
    });
    parse_http(&raw)
}

/// One raw request over the daemon's Unix socket.
fn unix(d: &Daemon, req: Vec<u8>) -> Response {
    let s = UnixStream::connect(&d.socket).expect("connect to the socket");
    s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(40))).unwrap();
    let w = s.try_clone().unwrap();
    parse_http(&exchange(s, w, req))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn create_body(name: &str) -> Vec<u8> {
    json!({ "Name": name }).to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// State checks
// ---------------------------------------------------------------------------------------------

/// Names of the networks, read over the Unix socket.
fn network_names(d: &Daemon) -> Vec<String> {
    let r = d.get("/networks");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut names: Vec<String> = r
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|n| n["Name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

/// Asserts the networks are exactly `before` and no bridge for `name` appeared.
fn unchanged(d: &Daemon, before: &[String], name: &str, what: &str) {
    let now = network_names(d);
    assert_eq!(now, before, "{what}: the set of networks changed");
    assert_eq!(
        d.get(&format!("/networks/{name}")).status,
        404,
        "{what}: network {name} exists"
    );
}

fn fresh_name() -> String {
    format!("nbt-r{}", rand_hex(8))
}

/// The daemon log with ANSI colour codes removed.
fn plain_log(d: &Daemon) -> String {
    let log = d.log();
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The audit lines of the log (target "audit").
fn audit_lines(d: &Daemon) -> Vec<String> {
    plain_log(d)
        .lines()
        .filter(|l| l.contains("audit:") || l.contains("target=audit"))
        .map(str::to_string)
        .collect()
}

fn assert_refused_json(r: &Response, status: u16, what: &str) -> String {
    assert_eq!(r.status, status, "{what}: {r:?}");
    let m = r.message();
    assert!(!m.is_empty(), "{what}: empty message");
    m
}

// ---------------------------------------------------------------------------------------------
// 1. The docker CLI over TLS with a token
// ---------------------------------------------------------------------------------------------

#[test]
fn docker_cli_works_over_tls_with_a_token() {
    let s = Scratch::new();
    make_pki(&s);
    let tok = token();
    let d = tls_daemon(&s, &format!("# ops\n{tok}\n"), &[]);
    let config = s.docker_config("docker-config", Some(&tok));
    let certs = s.arg("client");

    let out = docker_tls(&d, &certs, &config, &["network", "ls"]);
    assert!(
        out.status.success(),
        "docker network ls over TLS: {}",
        text(&out)
    );
    let ls = String::from_utf8_lossy(&out.stdout);
    assert!(ls.contains("NETWORK ID"), "{ls}");
    assert!(
        ls.contains("bridge"),
        "the predefined network is listed: {ls}"
    );

    let name = fresh_name();
    let out = docker_tls(&d, &certs, &config, &["network", "create", &name]);
    assert!(
        out.status.success(),
        "docker network create over TLS: {}",
        text(&out)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let r = d.get(&format!("/networks/{name}"));
    assert_eq!(
        r.status, 200,
        "created over TLS, seen over the socket: {}",
        r.body
    );
    assert_eq!(r.json()["Id"], id.as_str());

    let out = docker_tls(
        &d,
        &certs,
        &config,
        &["network", "ls", "--format", "{{.Name}}"],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == name)
    );

    let out = docker_tls(&d, &certs, &config, &["network", "rm", &name]);
    assert!(
        out.status.success(),
        "docker network rm over TLS: {}",
        text(&out)
    );
    assert_eq!(d.get(&format!("/networks/{name}")).status, 404);
}

// ---------------------------------------------------------------------------------------------
// 2. Tokens: none, wrong, and the docker CLI without its header
// ---------------------------------------------------------------------------------------------

#[test]
fn tcp_requests_without_the_right_token_are_refused() {
    let s = Scratch::new();
    make_pki(&s);
    let tok = token();
    let d = tls_daemon(&s, &format!("{tok}\n"), &[]);
    let before = network_names(&d);
    let name = fresh_name();
    let body = json!({ "Name": name }).to_string();

    // The right token works (the control).
    let r = curl_tls(
        &d,
        &s,
        Some("client"),
        &["-H", &format!("Authorization: Bearer {tok}")],
        "/networks",
    )
    .unwrap_or_else(|o| panic!("curl with the token: {}", text(&o)));
    assert_eq!(r.status, 200, "{r:?}");

    for (what, auth) in [
        ("no token", None),
        ("wrong token", Some(format!("Bearer {}", token()))),
        ("token as Basic", Some(format!("Basic {tok}"))),
        (
            "token prefix",
            Some(format!("Bearer {}", &tok[..tok.len() - 1])),
        ),
    ] {
        for (method, path) in [
            ("GET", "/networks"),
            ("POST", "/networks/create"),
            ("GET", "/_ping"),
        ] {
            let header = auth.as_ref().map(|a| format!("Authorization: {a}"));
            let mut extra: Vec<&str> = vec!["-X", method];
            if let Some(h) = &header {
                extra.extend_from_slice(&["-H", h]);
            }
            if method == "POST" {
                extra.extend_from_slice(&["-H", "Content-Type: application/json", "--data", &body]);
            }
            let r = curl_tls(&d, &s, Some("client"), &extra, path)
                .unwrap_or_else(|o| panic!("curl {what}: {}", text(&o)));
            let m = assert_refused_json(&r, 401, &format!("{what} {method} {path}"));
            let www = r
                .header("www-authenticate")
                .unwrap_or_else(|| panic!("{what} {method} {path}: no WWW-Authenticate: {r:?}"));
            assert!(www.starts_with("Bearer"), "{what}: WWW-Authenticate {www}");
            if auth.is_none() {
                assert!(m.contains("authentication required"), "{what}: {m}");
            }
        }
        unchanged(&d, &before, &name, what);
    }

    // The docker CLI without the HttpHeaders config: refused, with the daemon's message.
    let bare = s.docker_config("docker-bare", None);
    let certs = s.arg("client");
    let out = docker_tls(&d, &certs, &bare, &["network", "ls"]);
    assert_fails_saying(&out, "authentication required", "docker without a token");
    let out = docker_tls(&d, &certs, &bare, &["network", "create", &name]);
    assert_fails_saying(
        &out,
        "authentication required",
        "docker create without a token",
    );
    // And with a wrong token in its config.
    let wrong = s.docker_config("docker-wrong", Some(&token()));
    let out = docker_tls(&d, &certs, &wrong, &["network", "create", &name]);
    assert_fails_saying(
        &out,
        "invalid bearer token",
        "docker create with a wrong token",
    );
    unchanged(&d, &before, &name, "docker CLI without a valid token");
}

// ---------------------------------------------------------------------------------------------
// 3. Client certificates; an expired server certificate
// ---------------------------------------------------------------------------------------------

#[test]
fn tls_refuses_missing_foreign_and_expired_client_certificates() {
    let s = Scratch::new();
    make_pki(&s);
    let tok = token();
    let d = tls_daemon(&s, &format!("{tok}\n"), &[]);
    let before = network_names(&d);
    let refusals_before = plain_log(&d).matches("TLS handshake refused").count();
    let name = fresh_name();
    let body = json!({ "Name": name }).to_string();
    let auth = format!("Authorization: Bearer {tok}");
    let post = [
        "-X",
        "POST",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "--data",
        &body,
    ];

    for (what, dir) in [
        ("no client certificate", None),
        ("client certificate from another CA", Some("other-ca")),
        ("expired client certificate", Some("expired")),
    ] {
        match curl_tls(&d, &s, dir, &post, "/networks/create") {
            Ok(r) => panic!("{what}: the request was served: {r:?}"),
            Err(out) => {
                assert!(
                    !String::from_utf8_lossy(&out.stdout).contains("HTTP/"),
                    "{what}: an HTTP response came back: {}",
                    text(&out)
                );
            }
        }
        unchanged(&d, &before, &name, what);
    }
    // Refusals are logged by the listener.
    assert!(
        eventually(5, || plain_log(&d).matches("TLS handshake refused").count()
            >= refusals_before + 3),
        "three refused handshakes logged:\n{}",
        plain_log(&d)
    );

    // The docker CLI with an expired client certificate fails as well.
    let config = s.docker_config("docker-config", Some(&tok));
    let out = docker_tls(
        &d,
        &s.arg("expired"),
        &config,
        &["network", "create", &name],
    );
    assert!(
        !out.status.success(),
        "docker with an expired cert: {}",
        text(&out)
    );
    let out = docker_tls(
        &d,
        &s.arg("other-ca"),
        &config,
        &["network", "create", &name],
    );
    assert!(
        !out.status.success(),
        "docker with a foreign cert: {}",
        text(&out)
    );
    unchanged(
        &d,
        &before,
        &name,
        "docker CLI with a bad client certificate",
    );

    // The control: the good certificate passes.
    let r = curl_tls(&d, &s, Some("client"), &post, "/networks/create")
        .unwrap_or_else(|o| panic!("good certificate: {}", text(&o)));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(d.get(&format!("/networks/{name}")).status, 200);
}

#[test]
fn an_expired_server_certificate_is_refused_by_clients() {
    let s = Scratch::new();
    make_pki(&s);
    let tok = token();
    let token_file = s.write("tokens", &format!("{tok}\n"));
    let listen = format!("127.0.0.1:{TLS_PORT}");
    let (cert, key) = (
        s.arg("expired-server-cert.pem"),
        s.arg("expired-server-key.pem"),
    );
    let d = Daemon::start_with(&[
        "--tcp",
        &listen,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--token-file",
        &token_file,
    ]);
    wait_tcp(&d, TLS_PORT);
    let before = network_names(&d);
    let name = fresh_name();
    let auth = format!("Authorization: Bearer {tok}");
    let body = json!({ "Name": name }).to_string();
    let err = curl_tls(
        &d,
        &s,
        None,
        &[
            "-X",
            "POST",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
        ],
        "/networks/create",
    )
    .expect_err("curl accepted an expired server certificate");
    assert_eq!(err.status.code(), Some(60), "curl: {}", text(&err));
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("expired"),
        "{}",
        text(&err)
    );
    let config = s.docker_config("docker-config", Some(&tok));
    let out = docker_tls(&d, &s.arg("client"), &config, &["network", "create", &name]);
    assert_fails_saying(&out, "expired", "docker accepted an expired server cert");
    unchanged(&d, &before, &name, "expired server certificate");
}

// ---------------------------------------------------------------------------------------------
// 4. SIGHUP re-reads the token file
// ---------------------------------------------------------------------------------------------

#[test]
fn sighup_reloads_the_token_file() {
    let s = Scratch::new();
    let (old, new) = (token(), token());
    let d = tcp_daemon(&s, &format!("{old}\n"), &[]);
    let get = |t: &str| {
        tcp(
            &d,
            TCP_PORT,
            http("GET", "/networks", &[("Authorization", &bearer(t))], None),
        )
    };
    assert_eq!(get(&old).status, 200);
    assert_eq!(get(&new).status, 401);

    // Replace the file (as an operator would, atomically) and signal.
    s.write("tokens.next", &format!("# rotated\n{new}\n"));
    std::fs::rename(s.path("tokens.next"), s.path("tokens")).unwrap();
    assert_eq!(
        get(&old).status,
        200,
        "the file alone changes nothing before SIGHUP"
    );
    let pid = d.pid().expect("pid").to_string();
    must("kill", &["-HUP", &pid]);
    assert!(
        eventually(10, || get(&new).status == 200),
        "new token accepted after SIGHUP:\n{}",
        plain_log(&d)
    );
    let r = get(&old);
    assert_refused_json(&r, 401, "old token after SIGHUP");
    assert!(r.header("www-authenticate").is_some());
    assert!(plain_log(&d).contains("token file re-read"));

    // A broken file on SIGHUP keeps the tokens in force.
    s.write("tokens", "\n# nothing\n");
    must("kill", &["-HUP", &pid]);
    assert!(eventually(10, || plain_log(&d).contains("token file not re-read")));
    assert_eq!(
        get(&new).status,
        200,
        "a bad reload keeps the tokens in force"
    );
    assert_eq!(get(&old).status, 401);
    let pid_alive = Path::new("/proc").join(&pid).exists();
    assert!(
        pid_alive && d.get("/_ping").status == 200,
        "the daemon survives SIGHUP"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Plain TCP on loopback; --insecure-tcp
// ---------------------------------------------------------------------------------------------

#[test]
fn plain_tcp_on_loopback_with_tokens_works_with_curl() {
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(&s, &format!("{tok}\n"), &[]);
    let auth = format!("Authorization: Bearer {tok}");
    let base = format!("http://127.0.0.1:{TCP_PORT}");
    let r = curl(&d, &["-H", &auth, &format!("{base}/v1.44/networks")])
        .unwrap_or_else(|o| panic!("{}", text(&o)));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.starts_with('['), "{}", r.body);

    let name = fresh_name();
    let body = json!({ "Name": name }).to_string();
    let r = curl(
        &d,
        &[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
            &format!("{base}/networks/create"),
        ],
    )
    .unwrap_or_else(|o| panic!("{}", text(&o)));
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(d.get(&format!("/networks/{name}")).status, 200);

    // Without the token: refused, nothing made.
    let before = network_names(&d);
    let other = fresh_name();
    let body = json!({ "Name": other }).to_string();
    let r = curl(
        &d,
        &[
            "-H",
            "Content-Type: application/json",
            "--data",
            &body,
            &format!("{base}/networks/create"),
        ],
    )
    .unwrap_or_else(|o| panic!("{}", text(&o)));
    assert_refused_json(&r, 401, "plain TCP without a token");
    unchanged(&d, &before, &other, "plain TCP without a token");
}

#[test]
fn insecure_tcp_on_a_non_loopback_address_starts_with_a_warning() {
    // Without --insecure-tcp, a non-loopback plain listener is refused at start.
    let s = Scratch::new();
    let tok = token();
    let token_file = s.write("tokens", &format!("{tok}\n"));
    let probe = Daemon::start();
    let (sock, db) = (s.arg("refused.sock"), s.arg("refused.db"));
    let out = probe.run_cli(&[
        "serve",
        "--socket",
        &sock,
        "--db",
        &db,
        "--tcp",
        "0.0.0.0:2377",
        "--token-file",
        &token_file,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to serve plain TCP"),
        "{}",
        text(&out)
    );
    assert!(!Path::new(&sock).exists(), "nothing served");
    drop(probe);

    let d = Daemon::start_with(&["--tcp", "0.0.0.0:2377", "--insecure-tcp"]);
    wait_tcp(&d, 2377);
    let log = plain_log(&d);
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.to_ascii_lowercase().contains("insecure"))
        .unwrap_or_else(|| panic!("no warning about --insecure-tcp:\n{log}"));
    assert!(warning.contains("--insecure-tcp"), "{warning}");
    // It serves (without tokens: that is what --insecure-tcp means) on 127.0.0.1 too.
    let r = tcp(&d, 2377, http("GET", "/_ping", &[], None));
    assert_eq!(r.status, 200, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// 6. Limits
// ---------------------------------------------------------------------------------------------

#[test]
fn an_oversized_body_is_refused_with_413() {
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(&s, &format!("{tok}\n"), &[]);
    let before = network_names(&d);
    let name = fresh_name();
    let auth = bearer(&tok);

    // A real 2 000 000-byte body: valid JSON naming a network, padded with spaces.
    let mut big = create_body(&name);
    big.resize(2_000_000, b' ');
    for (what, r) in [
        (
            "TCP, Content-Length 2000000",
            tcp(
                &d,
                TCP_PORT,
                http(
                    "POST",
                    "/networks/create",
                    &[("Authorization", &auth)],
                    Some(&big),
                ),
            ),
        ),
        (
            "Unix socket, Content-Length 2000000",
            unix(&d, http("POST", "/networks/create", &[], Some(&big))),
        ),
    ] {
        let m = assert_refused_json(&r, 413, what);
        assert!(
            m.contains("larger than") || m.contains("too large"),
            "{what}: {m}"
        );
        unchanged(&d, &before, &name, what);
    }

    // The same body chunked, with no Content-Length to check up front.
    let mut chunked = format!(
        "POST /networks/create HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: {auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for part in big.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = tcp(&d, TCP_PORT, chunked);
    assert_refused_json(&r, 413, "chunked 2 MB body");
    unchanged(&d, &before, &name, "chunked 2 MB body");

    // The control: the same request under the limit is served.
    let r = tcp(
        &d,
        TCP_PORT,
        http(
            "POST",
            "/networks/create",
            &[("Authorization", &auth)],
            Some(&create_body(&name)),
        ),
    );
    assert_eq!(r.status, 201, "{r:?}");
}

/// Connects over TCP in the namespace, sends `bytes`, then nothing; returns how long until the
/// server closed the connection (None: still open after `wait`) and what it sent.
fn hold_tcp(d: &Daemon, port: u16, bytes: Vec<u8>, wait: Duration) -> (Option<Duration>, Vec<u8>) {
    in_netns(&d.ns.name, move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(wait)).unwrap();
        let started = Instant::now();
        s.write_all(&bytes).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (Some(started.elapsed()), got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return (None, got);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return (Some(started.elapsed()), got),
            }
        }
    })
}

#[test]
fn a_slowloris_client_is_cut_off_at_the_header_timeout() {
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(&s, &format!("{tok}\n"), &["--header-timeout", "2"]);
    let before = network_names(&d);

    // A partial header line, then nothing.
    let (closed, got) = hold_tcp(
        &d,
        TCP_PORT,
        b"POST /networks/create HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaa".to_vec(),
        Duration::from_secs(10),
    );
    let took = closed.unwrap_or_else(|| {
        panic!(
            "a partial header held the connection for 10 s (--header-timeout 2); got {:?}",
            String::from_utf8_lossy(&got)
        )
    });
    assert!(
        took >= Duration::from_millis(1500),
        "closed before the timeout: {took:?}"
    );
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || got.starts_with("HTTP/1.1 408"),
        "after the header timeout: {got:?}"
    );

    // Headers trickled in byte by byte, each within the timeout, still end at the timeout.
    let trickle = in_netns(&d.ns.name, move || {
        let mut s = TcpStream::connect(("127.0.0.1", TCP_PORT)).expect("connect");
        let started = Instant::now();
        let line = b"GET /networks HTTP/1.1\r\nX-Slow: ".to_vec();
        let _ = s.write_all(&line);
        while started.elapsed() < Duration::from_secs(10) {
            if s.write_all(b"a").is_err() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    });
    let took = trickle.expect("a header trickled a byte at a time held the connection for 10 s");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // The Unix socket has the same timeout.
    let mut u = UnixStream::connect(&d.socket).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    u.write_all(b"GET /networks HTTP/1.1\r\nHost: x").unwrap();
    let mut buf = Vec::new();
    let read = u.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(
        read.is_ok() && took < Duration::from_secs(10),
        "a partial header on the Unix socket: {read:?} after {took:?}"
    );

    unchanged(&d, &before, "nbt-none", "slow header clients");
    // The daemon still serves.
    let r = tcp(
        &d,
        TCP_PORT,
        http("GET", "/_ping", &[("Authorization", &bearer(&tok))], None),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn an_idle_connection_is_cut_off_at_the_header_timeout() {
    // The slowloris variant that connects and sends nothing, or goes quiet between requests.
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(&s, &format!("{tok}\n"), &["--header-timeout", "2"]);
    let wait = Duration::from_secs(10);
    let mut open = Vec::new();

    // Three held at once, so the test takes one wait, not three.
    let ns = d.ns.name.clone();
    let tcp_idle = std::thread::spawn({
        let ns = ns.clone();
        move || {
            in_netns(&ns, move || {
                let mut s = TcpStream::connect(("127.0.0.1", TCP_PORT)).expect("connect");
                s.set_read_timeout(Some(wait)).unwrap();
                let mut buf = [0u8; 64];
                s.read(&mut buf).is_ok()
            })
        }
    });
    let keep_alive = std::thread::spawn({
        let auth = bearer(&tok);
        move || {
            in_netns(&ns, move || {
                let mut s = TcpStream::connect(("127.0.0.1", TCP_PORT)).expect("connect");
                write!(
                    s,
                    "GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\r\n"
                )
                .unwrap();
                s.set_read_timeout(Some(wait)).unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                // The answer ("…OK"), then the connection stays idle: is it closed?
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => return (got, true),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(_) => return (got, false),
                    }
                }
            })
        }
    });
    let mut u = UnixStream::connect(&d.socket).unwrap();
    u.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    if u.read(&mut buf).is_err() {
        open.push("a Unix socket connection that sent nothing");
    }
    if !tcp_idle.join().unwrap() {
        open.push("a TCP connection that sent nothing");
    }
    let (got, closed) = keep_alive.join().unwrap();
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"),
        "{got:?}"
    );
    if !closed {
        open.push("a keep-alive TCP connection idle after one request");
    }
    assert!(
        open.is_empty(),
        "still open after {wait:?} with --header-timeout 2: {open:?}"
    );
}

#[test]
fn a_slow_body_gets_408_and_changes_nothing() {
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(&s, &format!("{tok}\n"), &["--header-timeout", "2"]);
    let before = network_names(&d);
    let name = fresh_name();
    let auth = bearer(&tok);
    // Complete headers promising 100 bytes, then a few bytes of them, then nothing.
    let mut req = format!(
        "POST /networks/create HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    .into_bytes();
    req.extend_from_slice(format!("{{\"Name\":\"{name}\"").as_bytes());
    let (closed, got) = hold_tcp(&d, TCP_PORT, req, Duration::from_secs(30));
    let got = parse_http(&got);
    assert_eq!(got.status, 408, "slow body: {got:?}");
    assert!(!got.message().is_empty());
    let took = closed.expect("closed after the 408");
    assert!(took < Duration::from_secs(30), "{took:?}");
    unchanged(&d, &before, &name, "slow body");
}

#[test]
fn requests_beyond_max_requests_get_503_at_once() {
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(&s, &format!("{tok}\n"), &["--max-requests", "1"]);
    let before = network_names(&d);
    let name = fresh_name();

    // Hold the only slot: a create whose body never comes.
    let mut held = UnixStream::connect(&d.socket).unwrap();
    held.write_all(
        b"POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Others are answered 503 at once, on either listener.
    let auth = bearer(&tok);
    for (what, req) in [
        ("Unix GET /networks", None),
        (
            "TCP GET /networks",
            Some(http("GET", "/networks", &[("Authorization", &auth)], None)),
        ),
        (
            "TCP POST /networks/create",
            Some(http(
                "POST",
                "/networks/create",
                &[("Authorization", &auth)],
                Some(&create_body(&name)),
            )),
        ),
    ] {
        let started = Instant::now();
        let r = match req {
            None => unix(&d, http("GET", "/networks", &[], None)),
            Some(req) => tcp(&d, TCP_PORT, req),
        };
        let took = started.elapsed();
        assert_refused_json(&r, 503, what);
        assert!(
            took < Duration::from_secs(2),
            "{what}: the 503 took {took:?}"
        );
    }

    // Freed: served again, and nothing was made meanwhile.
    drop(held);
    assert!(
        eventually(20, || d.get("/networks").status == 200),
        "the slot is released when the held request ends"
    );
    unchanged(&d, &before, &name, "requests refused with 503");
}

// ---------------------------------------------------------------------------------------------
// 7. CORS
// ---------------------------------------------------------------------------------------------

#[test]
fn cors_refuses_every_origin_by_default() {
    let d = Daemon::start();
    let before = network_names(&d);
    let name = fresh_name();
    let origin = [("Origin", "http://evil.example")];
    let r = unix(&d, http("GET", "/networks", &origin, None));
    let m = assert_refused_json(&r, 403, "GET from a foreign origin");
    assert!(m.contains("http://evil.example"), "{m}");
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");

    let r = unix(
        &d,
        http(
            "POST",
            "/networks/create",
            &origin,
            Some(&create_body(&name)),
        ),
    );
    assert_refused_json(&r, 403, "POST from a foreign origin");
    let r = unix(
        &d,
        http(
            "OPTIONS",
            "/networks/create",
            &[
                ("Origin", "http://evil.example"),
                ("Access-Control-Request-Method", "POST"),
            ],
            None,
        ),
    );
    assert_refused_json(&r, 403, "preflight from a foreign origin");
    assert!(r.header("access-control-allow-origin").is_none(), "{r:?}");
    // A "simple" cross-site form POST (text/plain) is refused just the same.
    let form_body = format!("{{\"Name\":\"{name}\"}}");
    let form = format!(
        "POST /networks/create HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Origin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{form_body}",
        form_body.len()
    )
    .into_bytes();
    let r = unix(&d, form);
    assert_refused_json(&r, 403, "simple form POST from a foreign origin");
    unchanged(&d, &before, &name, "CORS refusals");
}

#[test]
fn cors_allow_list_answers_preflight_and_tags_responses() {
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(
        &s,
        &format!("{tok}\n"),
        &["--cors-origin", "http://dash.example"],
    );
    let before = network_names(&d);
    let name = fresh_name();
    let auth = bearer(&tok);
    let dash = "http://dash.example";

    // Preflight: browsers send it without credentials, so no token is needed.
    for (what, r) in [
        (
            "TCP preflight",
            tcp(
                &d,
                TCP_PORT,
                http(
                    "OPTIONS",
                    "/networks/create",
                    &[
                        ("Origin", dash),
                        ("Access-Control-Request-Method", "POST"),
                        (
                            "Access-Control-Request-Headers",
                            "authorization, content-type",
                        ),
                    ],
                    None,
                ),
            ),
        ),
        (
            "Unix preflight",
            unix(
                &d,
                http(
                    "OPTIONS",
                    "/networks/create",
                    &[("Origin", dash), ("Access-Control-Request-Method", "POST")],
                    None,
                ),
            ),
        ),
    ] {
        assert!((200..300).contains(&r.status), "{what}: {r:?}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(dash),
            "{what}: {r:?}"
        );
        let methods = r
            .header("access-control-allow-methods")
            .unwrap_or_else(|| panic!("{what}: no Allow-Methods: {r:?}"));
        assert!(
            methods.split(',').any(|m| m.trim() == "POST"),
            "{what}: {methods}"
        );
        let headers = r
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(headers.contains("authorization"), "{what}: {headers}");
        assert!(headers.contains("content-type"), "{what}: {headers}");
    }
    unchanged(&d, &before, &name, "preflight");

    // An actual request from the allowed origin carries the CORS headers.
    let r = tcp(
        &d,
        TCP_PORT,
        http(
            "GET",
            "/networks",
            &[("Origin", dash), ("Authorization", &auth)],
            None,
        ),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(dash));
    let r = unix(&d, http("GET", "/networks", &[("Origin", dash)], None));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(dash));
    // So does an error, so the page can read it; and the token is still required.
    let r = tcp(
        &d,
        TCP_PORT,
        http("GET", "/networks", &[("Origin", dash)], None),
    );
    assert_refused_json(&r, 401, "allowed origin without a token");
    assert_eq!(r.header("access-control-allow-origin"), Some(dash));

    // Another origin is still refused, with or without a token, and changes nothing.
    for origin in [
        "http://evil.example",
        "http://dash.example.evil.example",
        "https://dash.example",
    ] {
        let r = tcp(
            &d,
            TCP_PORT,
            http(
                "POST",
                "/networks/create",
                &[("Origin", origin), ("Authorization", &auth)],
                Some(&create_body(&name)),
            ),
        );
        assert_refused_json(&r, 403, origin);
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "{origin}: {r:?}"
        );
        let r = tcp(
            &d,
            TCP_PORT,
            http(
                "OPTIONS",
                "/networks/create",
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                ],
                None,
            ),
        );
        assert_refused_json(&r, 403, &format!("{origin} preflight"));
    }
    unchanged(&d, &before, &name, "disallowed origins");

    // The allowed origin with the token creates.
    let r = tcp(
        &d,
        TCP_PORT,
        http(
            "POST",
            "/networks/create",
            &[("Origin", dash), ("Authorization", &auth)],
            Some(&create_body(&name)),
        ),
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some(dash));
}

// ---------------------------------------------------------------------------------------------
// 8. The Unix socket's mode and group
// ---------------------------------------------------------------------------------------------

/// A group made for one test, deleted on drop.
struct Group(String);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = run("groupdel", &[&self.0]);
    }
}

#[test]
fn the_unix_socket_is_0660_and_owned_by_the_socket_group() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let d = Daemon::start();
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o7777, 0o660, "socket mode {:o}", meta.mode());
    assert_eq!(meta.gid(), 0, "default group is root's");
    drop(d);

    let group = Group(format!("nbt-grp-{}", rand_hex(6)));
    must("groupadd", &[&group.0]);
    let gid: u32 = must("getent", &["group", &group.0])
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .expect("gid");
    let d = Daemon::start_with(&["--socket-group", &group.0]);
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o660, "socket mode {:o}", meta.mode());
    assert_eq!(meta.gid(), gid, "socket group");
    assert_eq!(d.get("/_ping").status, 200);
}

// ---------------------------------------------------------------------------------------------
// 9. Observability
// ---------------------------------------------------------------------------------------------

#[test]
fn request_ids_are_echoed_or_generated() {
    let s = Scratch::new();
    let tok = token();
    let d = tcp_daemon(&s, &format!("{tok}\n"), &[]);
    let id = format!("nbt-req-{}", rand_hex(12));
    let r = unix(&d, http("GET", "/networks", &[("X-Request-Id", &id)], None));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some(id.as_str()));
    // Echoed on refusals too (here a 401 over TCP).
    let r = tcp(
        &d,
        TCP_PORT,
        http("GET", "/networks", &[("X-Request-Id", &id)], None),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-request-id"), Some(id.as_str()));
    // Absent: one is generated, different per request.
    let a = unix(&d, http("GET", "/networks", &[], None));
    let b = tcp(
        &d,
        TCP_PORT,
        http("GET", "/_ping", &[("Authorization", &bearer(&tok))], None),
    );
    let (a, b) = (
        a.header("x-request-id").unwrap_or_default().to_string(),
        b.header("x-request-id").unwrap_or_default().to_string(),
    );
    assert!(
        !a.is_empty() && !b.is_empty(),
        "generated request ids: {a:?} {b:?}"
    );
    assert_ne!(a, b);
    // The request's log span carries the ID.
    assert!(
        eventually(5, || plain_log(&d).contains(&id)),
        "request id {id} in the log:\n{}",
        plain_log(&d)
    );
}

/// The value of the sample line that starts with `series` (the full name with labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

#[test]
fn metrics_are_prometheus_text() {
    let d = Daemon::start();
    let name = fresh_name();
    d.create_network(&json!({ "Name": name }));
    assert_eq!(d.get("/networks").status, 200);
    let networks = network_names(&d).len() as f64;

    let r = d.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert!(ct.contains("version=0.0.4"), "{ct}");
    let m = &r.body;

    // Every line is a comment or `name{labels} value`.
    for line in m.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        assert!(name.starts_with("netbridge_"), "{line}");
    }

    let ok = sample(
        m,
        "netbridge_http_requests_total{route=\"/networks\",method=\"GET\",status=\"200\"}",
    )
    .unwrap_or_else(|| panic!("no GET /networks 200 counter:\n{m}"));
    assert!(ok >= 2.0, "{ok}");
    let created = sample(
        m,
        "netbridge_http_requests_total{route=\"/networks/create\",method=\"POST\",status=\"201\"}",
    );
    assert_eq!(created, Some(1.0), "{m}");
    assert!(m.contains("# TYPE netbridge_http_requests_total counter"));
    assert!(m.contains("# TYPE netbridge_http_request_duration_seconds histogram"));
    let inf = sample(
        m,
        "netbridge_http_request_duration_seconds_bucket{route=\"/networks\",le=\"+Inf\"}",
    )
    .unwrap_or_else(|| panic!("no latency histogram for /networks:\n{m}"));
    assert!(inf >= 2.0);
    assert!(m.contains("netbridge_http_request_duration_seconds_sum{route=\"/networks\"}"));
    assert!(m.contains("netbridge_http_request_duration_seconds_count{route=\"/networks\"}"));

    assert_eq!(sample(m, "netbridge_networks"), Some(networks), "{m}");
    assert_eq!(sample(m, "netbridge_endpoints"), Some(0.0), "{m}");
    assert!(m.contains("# TYPE netbridge_networks gauge"));
    assert!(m.contains("# TYPE netbridge_endpoints gauge"));

    // Netlink and SQLite operation latency: a network was just created, so there are samples.
    assert!(m.contains("# TYPE netbridge_operation_duration_seconds histogram"));
    assert!(
        m.lines()
            .any(|l| l.starts_with("netbridge_operation_duration_seconds_bucket{")),
        "no netbridge_operation_duration_seconds samples after a network create:\n{m}"
    );
}

#[test]
fn state_changing_requests_are_audited_with_who_did_them() {
    let s = Scratch::new();
    let tok = token();
    // The token is the second one in the file: its identity is token#2.
    let d = tcp_daemon(&s, &format!("# ops\n{}\n{tok}\n", token()), &[]);

    let unix_name = fresh_name();
    d.create_network(&json!({ "Name": unix_name }));
    let tcp_name = fresh_name();
    let r = tcp(
        &d,
        TCP_PORT,
        http(
            "POST",
            "/networks/create",
            &[("Authorization", &bearer(&tok))],
            Some(&create_body(&tcp_name)),
        ),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let refused_name = fresh_name();
    let r = tcp(
        &d,
        TCP_PORT,
        http(
            "POST",
            "/networks/create",
            &[("Authorization", "Bearer nope")],
            Some(&create_body(&refused_name)),
        ),
    );
    assert_eq!(r.status, 401);
    let r = tcp(
        &d,
        TCP_PORT,
        http("DELETE", &format!("/networks/{tcp_name}"), &[], None),
    );
    assert_eq!(r.status, 401);
    assert_eq!(d.get(&format!("/networks/{tcp_name}")).status, 200);
    assert_eq!(d.get(&format!("/networks/{refused_name}")).status, 404);

    let find = |pred: &dyn Fn(&str) -> bool| -> Option<String> {
        let mut found = None;
        eventually(5, || {
            found = audit_lines(&d).into_iter().find(|l| pred(l));
            found.is_some()
        });
        found
    };
    let all = || audit_lines(&d).join("\n");

    let line = find(&|l| l.contains("who=uid:0") && l.contains("path=/networks/create"))
        .unwrap_or_else(|| panic!("no audit line for the Unix create by uid 0:\n{}", all()));
    assert!(line.contains("status=201"), "{line}");
    assert!(line.contains("method=POST"), "{line}");

    let line = find(&|l| l.contains("token#2") && l.contains("path=/networks/create"))
        .unwrap_or_else(|| {
            panic!(
                "no audit line for the TCP create naming token#2:\n{}",
                all()
            )
        });
    assert!(line.contains("status=201"), "{line}");
    assert!(line.contains("tcp:127.0.0.1:"), "{line}");
    assert!(
        !line.contains(&tok),
        "the token itself must not be logged: {line}"
    );

    let line =
        find(&|l| l.contains("refused") && l.contains("status=401") && l.contains("method=POST"))
            .unwrap_or_else(|| panic!("no audit line for the refused TCP create:\n{}", all()));
    assert!(line.contains("path=/networks/create"), "{line}");
    let line = find(&|l| l.contains("method=DELETE") && l.contains("status=401"))
        .unwrap_or_else(|| panic!("no audit line for the refused TCP delete:\n{}", all()));
    assert!(
        line.contains(&format!("path=/networks/{tcp_name}")),
        "{line}"
    );
    assert!(
        !plain_log(&d).contains("Bearer nope"),
        "presented tokens must not be logged"
    );

    // Reads are not audited.
    assert_eq!(d.get("/networks").status, 200);
    assert!(
        !audit_lines(&d).iter().any(|l| l.contains("method=GET")),
        "GETs are not state-changing:\n{}",
        all()
    );
}
