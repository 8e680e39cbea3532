//! `docker-compose.yml` and the `Dockerfile`, for real (issue 6): Debian's dockerd, started
//! inside a throwaway network namespace of its own (so its bridges, iptables and sysctls never
//! reach the machine's own namespace), a base image made locally with
//! `debootstrap --variant=minbase bookworm` + `docker import` (no registry is needed), then
//! `docker-compose up -d --build`, the healthcheck, `/_ping` and the whole experiment through the
//! published socket (the curl example), and `docker-compose down`. netbridge in the container has
//! host networking, which is that throwaway namespace.
//!
//! Needs dockerd (docker.io), docker-compose and debootstrap: `.ci/install-deps` installs them.
//! Everything is removed at the end, also on failure: the project, dockerd and its containerd,
//! their mounts, cgroups and temp dir, and the namespace. Takes about two minutes, most of it
//! debootstrap.

mod common;

use common::{Netns, rand_hex, run};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` not found: apt-get install {package} (.ci/install-deps)"
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What of the machine's own namespace the deployment must leave as it was.
fn root_namespace_state() -> String {
    let links = run("ip", &["-br", "link", "show"]);
    let names: Vec<String> = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let tables = text(&run("nft", &["list", "tables"]));
    let sysctls: Vec<String> = [
        "net/ipv4/ip_forward",
        "net/bridge/bridge-nf-call-iptables",
        "net/bridge/bridge-nf-call-ip6tables",
    ]
    .iter()
    .map(|k| {
        let v = std::fs::read_to_string(Path::new("/proc/sys").join(k)).unwrap_or_default();
        format!("{k}={}", v.trim())
    })
    .collect();
    format!("links: {names:?}\nnft: {tables}\n{sysctls:?}")
}

/// dockerd with its own data root, exec root, socket and cgroup parent, inside its own
/// network namespace.
struct Dockerd {
    dir: PathBuf,
    cgroup_parent: String,
    child: Option<Child>,
    ns: Netns,
}

impl Dockerd {
    fn start() -> Dockerd {
        let ns = Netns::new("nbt-dockerd");
        let id = rand_hex(8);
        // short: containerd's socket path under it must fit in a sockaddr_un
        let dir = PathBuf::from(format!("/tmp/nbt-compose-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut d = Dockerd {
            cgroup_parent: format!("nbt-compose-{id}"),
            dir,
            child: None,
            ns,
        };
        let log = std::fs::File::create(d.dir.join("dockerd.log")).expect("log");
        let p = |s: &str| d.dir.join(s).display().to_string();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", d.ns.name))
            .args(["--", "dockerd"])
            .args(["--data-root", &p("data"), "--exec-root", &p("exec")])
            .args(["--pidfile", &p("dockerd.pid")])
            .args(["-H", &format!("unix://{}", p("docker.sock"))])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ])
            .args(["--ip-masq=false", "--bridge=none"])
            .args(["--cgroup-parent", &d.cgroup_parent])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        d.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.docker(&["version"]).status.success() {
            if let Some(Ok(Some(status))) = d.child.as_mut().map(Child::try_wait) {
                panic!("dockerd exited ({status}):\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.join("docker-config"));
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.command("docker")
            .args(args)
            .output()
            .expect("run docker")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// PIDs of the processes started for this dockerd (containerd, shims): their command line
    /// names its temp dir, which no other process's does.
    fn leftover_pids(&self) -> Vec<String> {
        let needle = self.dir.display().to_string();
        let me = std::process::id().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && *pid != me)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
            })
            .collect()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- dockerd log ---\n{}", self.log());
        }
        if let Some(mut child) = self.child.take() {
            // nsenter execs dockerd, so the child PID is dockerd's
            let _ = run("kill", &["-TERM", &child.id().to_string()]);
            let deadline = Instant::now() + Duration::from_secs(30);
            while !matches!(child.try_wait(), Ok(Some(_))) {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for pid in self.leftover_pids() {
            let _ = run("kill", &["-KILL", &pid]);
        }
        // mounts dockerd left under its dir, deepest first
        let prefix = self.dir.display().to_string();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = run("umount", &["-l", m]);
        }
        // the cgroups of its containers: children first
        for root in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let parent = root.path().join(&self.cgroup_parent);
            if parent.is_dir() {
                for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                    if child.path().is_dir() {
                        let _ = std::fs::remove_dir(child.path());
                    }
                }
                let _ = std::fs::remove_dir(&parent);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The compose project: `down` on drop, before dockerd stops.
struct Project<'a> {
    dockerd: &'a Dockerd,
    dir: PathBuf,
    name: String,
}

impl Project<'_> {
    fn compose(&self, args: &[&str]) -> Output {
        self.dockerd
            .command("timeout")
            .args(["-k", "10", "300", "docker-compose", "-p", &self.name])
            .args(args)
            .current_dir(&self.dir)
            .env("NETBRIDGE_BASE_IMAGE", BASE_IMAGE)
            .output()
            .expect("run docker-compose")
    }

    fn compose_ok(&self, args: &[&str]) -> String {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed:\n{}\n--- logs ---\n{}",
            text(&out),
            text(&self.compose(&["logs", "--no-color"]))
        );
        text(&out)
    }

    fn container(&self) -> String {
        format!("{}_netbridge_1", self.name)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("run/netbridge.sock")
    }
}

impl Drop for Project<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- compose logs ---\n{}",
                text(&self.compose(&["logs", "--no-color"]))
            );
        }
        let _ = self.compose(&["down", "-v", "--timeout", "20"]);
    }
}

const BASE_IMAGE: &str = "nbt-bookworm-minbase:local";

/// The Debian mirror apt uses (so debootstrap fetches from the same place), if one is set.
fn apt_mirror() -> Option<String> {
    let sources = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").ok()?;
    sources
        .split("\n\n")
        .find(|stanza| {
            stanza
                .lines()
                .any(|l| l.starts_with("Suites:") && l.split_whitespace().any(|s| s == "bookworm"))
        })?
        .lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|uris| uris.split_whitespace().next())
        .map(str::to_string)
}

/// A minimal Debian with what the Dockerfile would otherwise install, as a local image.
fn make_base_image(d: &Dockerd) {
    let rootfs = d.dir.join("rootfs");
    let rootfs_s = rootfs.display().to_string();
    let mut args = vec![
        "-k",
        "10",
        "600",
        "debootstrap",
        "--variant=minbase",
        "--include=curl,nftables,kmod",
        "bookworm",
        &rootfs_s,
    ];
    let mirror = apt_mirror();
    if let Some(m) = &mirror {
        args.push(m);
    }
    let out = Command::new("timeout")
        .args(&args)
        .output()
        .expect("run debootstrap");
    assert!(out.status.success(), "debootstrap failed:\n{}", text(&out));
    let import =
        format!("tar -C {rootfs_s} -c . | docker import - {BASE_IMAGE} && rm -rf {rootfs_s}");
    let out = d
        .command("sh")
        .args(["-c", &import])
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "docker import failed:\n{}",
        text(&out)
    );
}

#[test]
fn compose_deployment_serves_the_experiment() {
    require("dockerd", "docker.io");
    require("docker-compose", "docker-compose");
    require("debootstrap", "debootstrap");
    require("curl", "curl");
    let before = root_namespace_state();
    {
        let d = Dockerd::start();
        make_base_image(&d);

        // the project: the repository's compose file, Dockerfile and .dockerignore as they are,
        // and the binary under test where the Dockerfile expects the release build
        let dir = d.dir.join("project");
        std::fs::create_dir_all(dir.join("target/release")).expect("project dir");
        for f in ["docker-compose.yml", "Dockerfile", ".dockerignore"] {
            std::fs::copy(repo().join(f), dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        std::fs::copy(
            env!("CARGO_BIN_EXE_netbridge"),
            dir.join("target/release/netbridge"),
        )
        .expect("copy the binary");
        let p = Project {
            dockerd: &d,
            dir,
            name: format!("nbt{}", rand_hex(6)),
        };

        p.compose_ok(&["up", "-d", "--build"]);
        let c = p.container();
        assert_eq!(
            d.docker_ok(&["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", &c]),
            "unless-stopped"
        );
        assert_eq!(
            d.docker_ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", &c]),
            "host"
        );
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let health = d.docker_ok(&["inspect", "-f", "{{.State.Health.Status}}", &c]);
            if health == "healthy" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not healthy ({health}):\n{}",
                text(&p.compose(&["logs", "--no-color"]))
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(
            d.docker_ok(&["volume", "ls", "-q"])
                .lines()
                .any(|v| v == format!("{}_state", p.name)),
            "no named volume for the database"
        );

        // the published socket, from the host
        let socket = p.socket().display().to_string();
        let ping = run(
            "curl",
            &["-sS", "--unix-socket", &socket, "http://localhost/_ping"],
        );
        assert_eq!(text(&ping), "OK");

        // the experiment through it; the sandboxes appear under the host's /run/netns
        let prefix = format!("nbt-{}-compose", rand_hex(6));
        let out = Command::new("timeout")
            .args(["-k", "10", "120"])
            .arg(repo().join("client-examples/curl/run"))
            .env("NETBRIDGE_SOCKET", &socket)
            .env("NETBRIDGE_PREFIX", &prefix)
            .env_remove("NETBRIDGE_TCP")
            .output()
            .expect("run the curl example");
        for s in ["a", "b"] {
            let name = format!("{prefix}-{s}");
            if Path::new("/run/netns").join(&name).exists() {
                let _ = run("ip", &["netns", "del", &name]);
                panic!("the experiment left /run/netns/{name}:\n{}", text(&out));
            }
        }
        let out_text = text(&out);
        assert!(out.status.success(), "the experiment failed:\n{out_text}");
        assert!(
            out_text.contains(&format!("== ping {prefix}-a")) && out_text.contains("== done"),
            "{out_text}"
        );

        p.compose_ok(&["down", "-v", "--timeout", "20"]);
        assert!(
            !p.socket().exists(),
            "the socket outlived the container: no clean SIGTERM shutdown"
        );
        assert_eq!(
            d.docker_ok(&["ps", "-aq"]),
            "",
            "containers left after down"
        );
    }
    assert_eq!(
        root_namespace_state(),
        before,
        "the machine's own namespace changed"
    );
}
