//! Docker's container lifecycle for networking: `docker run -d` / `docker create` make a
//! sandbox that joins its networks at start and leaves them at stop. The seed article through
//! the docker CLI verbatim (the only test using the names test1 and test2, removed whatever
//! happens), then each network mode, stop/start, and Docker's errors. Other containers are
//! `nbt-<random>`, removed on drop.

mod attach;
mod common;

use attach::*;
use common::{Daemon, Value, json, run};

const LOOP: &str = "while true;do sleep 3600;done";

/// Names of containers this test made, removed through the API and, failing that, with
/// `ip netns del` on drop.
struct Made<'a> {
    d: &'a Daemon,
    names: std::cell::RefCell<Vec<String>>,
}

impl<'a> Made<'a> {
    fn new(d: &'a Daemon) -> Made<'a> {
        Made {
            d,
            names: Default::default(),
        }
    }

    fn fresh(&self) -> String {
        let name = format!("nbt-{}", common::rand_hex(8));
        self.names.borrow_mut().push(name.clone());
        name
    }

    /// Registers a literal name; only once its create succeeded may it be deleted.
    fn adopt(&self, name: &str) {
        self.names.borrow_mut().push(name.to_string());
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        for name in self.names.borrow().iter() {
            let status = try_status(self.d, "DELETE", &format!("/containers/{name}?force=1"));
            if !matches!(status, Some(204) | Some(404)) && netns_exists(name) {
                let _ = run("ip", &["netns", "del", name]);
            }
        }
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `POST /containers/create?name=…` with Docker's body; must answer 201. Returns the ID.
fn create(d: &Daemon, name: &str, body: Value) -> String {
    let r = d.post(&format!("/containers/create?name={name}"), &body);
    assert_eq!(r.status, 201, "create {name} {body}: {}", r.body);
    r.json()["Id"].as_str().expect("Id").to_string()
}

fn status(d: &Daemon, method: &str, path: &str) -> u16 {
    try_status(d, method, path).expect("answer")
}

fn inspect(d: &Daemon, term: &str) -> Value {
    let r = d.get(&format!("/containers/{term}/json"));
    assert_eq!(r.status, 200, "inspect {term}: {}", r.body);
    r.json()
}

/// The names netbridge's docker0 (`nb0`) has as ports.
fn on_default_bridge(d: &Daemon) -> Vec<String> {
    port_names(d, "nb0")
}

/// Gives this test's thread (and every process it starts) a mount namespace of its own with
/// an empty /run/netns, so the article's literal names test1 and test2 can never meet another
/// test's or anyone else's namespaces of the same names; all of it goes when the thread ends.
fn private_run_netns() {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    unshare(CloneFlags::CLONE_NEWNS).expect("a mount namespace for this thread");
    // Nothing mounted here reaches the machine's mount namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .expect("make / a slave mount");
    std::fs::create_dir_all("/run/netns").expect("/run/netns");
    mount(
        Some("tmpfs"),
        "/run/netns",
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .expect("a private /run/netns");
}

#[test]
fn the_article_verbatim_with_the_docker_cli() {
    private_run_netns();
    let d = Daemon::start();
    let made = Made::new(&d);
    let mut ids = Vec::new();
    for name in ["test1", "test2"] {
        made.adopt(name);
        let out = d.docker_ok(&[
            "run", "-d", "--name", name, "busybox", "/bin/sh", "-c", LOOP,
        ]);
        let id = out.trim().to_string();
        assert!(is_hex64(&id), "docker run -d prints the ID: {out:?}");
        ids.push(id);
    }
    // docker inspect: each address, on the default bridge, as the article reads them.
    let ip1 = d.docker_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "test1"]);
    let ip2 = d.docker_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "test2"]);
    let (ip1, ip2) = (ip1.trim().to_string(), ip2.trim().to_string());
    assert!(
        !ip1.is_empty() && !ip2.is_empty() && ip1 != ip2,
        "{ip1} {ip2}"
    );
    let full: Value = serde_json::from_str(&d.docker_ok(&["inspect", "test1"])).expect("json");
    let c = &full[0];
    assert_eq!(c["State"]["Status"], "running", "{c}");
    assert_eq!(c["Config"]["Image"], "busybox", "{c}");
    assert_eq!(c["Path"], "/bin/sh", "{c}");
    assert_eq!(c["Args"], json!(["-c", LOOP]), "{c}");
    assert_eq!(c["HostConfig"]["NetworkMode"], "bridge", "{c}");
    assert_eq!(
        c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
        ip1.as_str(),
        "{c}"
    );

    // docker network inspect bridge: both.
    let net: Value =
        serde_json::from_str(&d.docker_ok(&["network", "inspect", "bridge"])).expect("json");
    let containers = net[0]["Containers"].as_object().expect("Containers");
    for (id, name) in ids.iter().zip(["test1", "test2"]) {
        assert_eq!(containers[id]["Name"], name, "{}", net[0]);
    }

    // Pings through ip netns exec, both ways; eth0@ifN; host ends on the default bridge.
    assert!(ping("test1", &ip2), "test1 → test2");
    assert!(ping("test2", &ip1), "test2 → test1");
    let a = run("ip", &["netns", "exec", "test1", "ip", "a"]);
    assert!(stdout(&a).contains("eth0@if"), "{}", stdout(&a));
    assert!(
        stdout(&a).contains(&format!("inet {ip1}/")),
        "{}",
        stdout(&a)
    );
    assert_eq!(
        on_default_bridge(&d).len(),
        2,
        "{:?}",
        on_default_bridge(&d)
    );

    // docker ps shows both running; --filter network=bridge too.
    let ps = d.docker_ok(&["ps", "--filter", "network=bridge", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = ps.lines().collect();
    names.sort();
    assert_eq!(names, vec!["test1", "test2"], "{ps}");

    d.docker_ok(&["rm", "-f", "test1", "test2"]);
    assert!(!netns_exists("test1") && !netns_exists("test2"));
    assert!(on_default_bridge(&d).is_empty());
}

/// The addresses of `eth0` (none when it has no eth0).
fn eth0(ns: &str) -> Vec<String> {
    if link(ns, "eth0").is_none() {
        return Vec::new();
    }
    ipv4_of(ns, "eth0")
}

#[test]
fn network_modes_and_endpoints_config() {
    let d = Daemon::start();
    let made = Made::new(&d);
    let net = format!("nbt-net-{}", common::rand_hex(4));
    let net_id = create_net(&d, &net, "172.31.7.0/24", json!({}));

    // none: only lo, before and after start.
    let none = made.fresh();
    create(
        &d,
        &none,
        json!({"Image": "busybox", "HostConfig": {"NetworkMode": "none"}}),
    );
    assert_eq!(
        status(&d, "POST", &format!("/containers/{none}/start")),
        204
    );
    assert_eq!(links(&none).len(), 1, "only lo: {:?}", links(&none));
    let c = inspect(&d, &none);
    assert_eq!(c["HostConfig"]["NetworkMode"], "none", "{c}");
    assert_eq!(c["NetworkSettings"]["Networks"], json!({}), "{c}");

    // host: no interface is made anywhere.
    let host = made.fresh();
    create(&d, &host, json!({"HostConfig": {"NetworkMode": "host"}}));
    assert_eq!(
        status(&d, "POST", &format!("/containers/{host}/start")),
        204
    );
    assert_eq!(links(&host).len(), 1, "only lo: {:?}", links(&host));
    assert_eq!(inspect(&d, &host)["HostConfig"]["NetworkMode"], "host");

    // A user network by name, with every endpoint setting; nothing until start.
    let user = made.fresh();
    create(
        &d,
        &user,
        json!({"Image": "busybox", "Cmd": ["sleep", "1"], "Entrypoint": ["env"],
               "HostConfig": {"NetworkMode": net},
               "NetworkingConfig": {"EndpointsConfig": {net.as_str(): {
                   "IPAMConfig": {"IPv4Address": "172.31.7.20"},
                   "Aliases": ["web"], "MacAddress": "02:42:ac:1f:07:14",
                   "DriverOpts": {"x": "y"}, "GwPriority": 5}}}}),
    );
    assert!(link(&user, "eth0").is_none(), "no interface before start");
    let c = inspect(&d, &user);
    assert_eq!(c["State"]["Status"], "created");
    // Configured, as on Docker, before it is joined.
    let e = &c["NetworkSettings"]["Networks"][&net];
    assert_eq!(e["IPAMConfig"]["IPv4Address"], "172.31.7.20", "{c}");
    assert_eq!(e["IPAddress"], "", "{c}");
    assert_eq!(
        status(&d, "POST", &format!("/containers/{user}/start")),
        204
    );
    assert_eq!(eth0(&user), vec!["172.31.7.20/24"]);
    let l = link(&user, "eth0").expect("eth0");
    assert_eq!(mac(&l), "02:42:ac:1f:07:14");
    let c = inspect(&d, &user);
    let e = &c["NetworkSettings"]["Networks"][&net];
    assert_eq!(e["IPAMConfig"]["IPv4Address"], "172.31.7.20", "{c}");
    assert_eq!(e["Aliases"], json!(["web"]), "{c}");
    assert_eq!(e["DriverOpts"], json!({"x": "y"}), "{c}");
    assert_eq!(e["GwPriority"], 5, "{c}");
    assert_eq!(c["HostConfig"]["NetworkMode"], net.as_str(), "{c}");
    assert_eq!(c["Config"]["Cmd"], json!(["sleep", "1"]), "{c}");
    assert_eq!(
        (&c["Path"], &c["Args"]),
        (&json!("env"), &json!(["sleep", "1"])),
        "{c}"
    );
    // From API 1.52 the bridge's settings are no longer at the top.
    assert!(c["NetworkSettings"].get("IPAddress").is_none(), "{c}");

    // By network ID, and several networks at once (API 1.44 and later).
    let two = made.fresh();
    create(
        &d,
        &two,
        json!({"HostConfig": {"NetworkMode": net_id},
               "NetworkingConfig": {"EndpointsConfig": {"bridge": {}, net_id.as_str(): {}}}}),
    );
    assert_eq!(status(&d, "POST", &format!("/containers/{two}/start")), 204);
    assert!(link(&two, "eth0").is_some() && link(&two, "eth1").is_some());
    let c = inspect(&d, &two);
    let nets = c["NetworkSettings"]["Networks"]
        .as_object()
        .expect("Networks");
    assert_eq!(nets.len(), 2, "{c}");
    // Before 1.52, the default bridge's endpoint is also at the top.
    let old = d.get(&format!("/v1.51/containers/{two}/json")).json();
    assert_eq!(
        old["NetworkSettings"]["IPAddress"], nets["bridge"]["IPAddress"],
        "{old}"
    );
    assert_eq!(
        old["NetworkSettings"]["MacAddress"],
        nets["bridge"]["MacAddress"]
    );

    // Before 1.44 the MAC address of the only network comes in Config.MacAddress.
    let old_mac = made.fresh();
    let r = d.post(
        &format!("/v1.43/containers/create?name={old_mac}"),
        &json!({"Image": "busybox", "MacAddress": "02:42:ac:1f:07:2a", "HostConfig": {"NetworkMode": net}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        status(&d, "POST", &format!("/containers/{old_mac}/start")),
        204
    );
    assert_eq!(
        mac(&link(&old_mac, "eth0").expect("eth0")),
        "02:42:ac:1f:07:2a"
    );

    // Before 1.44 only one network may be given.
    let r = d.post(
        &format!("/v1.43/containers/create?name={}", made.fresh()),
        &json!({"NetworkingConfig": {"EndpointsConfig": {"bridge": {}, net.as_str(): {}}}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.message()
            .starts_with("Container cannot be created with multiple network endpoints: "),
        "{}",
        r.body
    );
}

#[test]
fn stop_releases_endpoints_and_start_joins_again() {
    let d = Daemon::start();
    let made = Made::new(&d);
    let net = format!("nbt-net-{}", common::rand_hex(4));
    create_net(&d, &net, "172.31.8.0/24", json!({}));
    let (fixed, dynamic, other) = (made.fresh(), made.fresh(), made.fresh());
    // Through the docker CLI: create, then start.
    d.docker_ok(&[
        "create",
        "--name",
        &fixed,
        "--network",
        &net,
        "--ip",
        "172.31.8.20",
        "busybox",
    ]);
    d.docker_ok(&["create", "--name", &dynamic, "--network", &net, "busybox"]);
    assert!(eth0(&fixed).is_empty(), "created: no interface yet");
    d.docker_ok(&["start", &fixed, &dynamic]);
    assert_eq!(eth0(&fixed), vec!["172.31.8.20/24"]);
    assert_eq!(eth0(&dynamic), vec!["172.31.8.2/24"]);
    assert!(ping(&fixed, "172.31.8.2"));
    assert_eq!(
        status(&d, "POST", &format!("/containers/{fixed}/start")),
        304
    );

    // Stop: endpoints and dynamic addresses go, the configuration stays.
    d.docker_ok(&["stop", &dynamic]);
    assert!(eth0(&dynamic).is_empty());
    let c = inspect(&d, &dynamic);
    assert_eq!(c["State"]["Status"], "exited", "{c}");
    // As on Docker: the network is still configured, with nothing operational.
    let e = &c["NetworkSettings"]["Networks"][&net];
    assert_eq!(
        (&e["IPAddress"], &e["EndpointID"]),
        (&json!(""), &json!("")),
        "{c}"
    );
    assert!(is_hex64(e["NetworkID"].as_str().unwrap_or_default()), "{c}");
    assert_eq!(c["HostConfig"]["NetworkMode"], net.as_str(), "{c}");
    assert_eq!(
        status(&d, "POST", &format!("/containers/{dynamic}/stop")),
        304
    );
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert!(!ps.contains(&dynamic) && ps.contains(&fixed), "{ps}");
    let ps = d.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "status=exited",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(ps.trim(), dynamic, "{ps}");

    // Its address was freed: another container takes it.
    d.docker_ok(&["run", "-d", "--name", &other, "--network", &net, "busybox"]);
    assert_eq!(eth0(&other), vec!["172.31.8.2/24"]);
    d.docker_ok(&["start", &dynamic]);
    assert_eq!(eth0(&dynamic), vec!["172.31.8.3/24"]);
    common::consistency::assert_consistent(&d, "after stops and starts");

    // A static address is kept across stop and start; restart and kill too.
    d.docker_ok(&["stop", &fixed]);
    d.docker_ok(&["start", &fixed]);
    assert_eq!(eth0(&fixed), vec!["172.31.8.20/24"]);
    d.docker_ok(&["restart", &fixed]);
    assert_eq!(eth0(&fixed), vec!["172.31.8.20/24"]);
    d.docker_ok(&["kill", &fixed]);
    assert!(eth0(&fixed).is_empty());
    assert_eq!(inspect(&d, &fixed)["State"]["ExitCode"], 137);
    let waited = d.post(&format!("/containers/{fixed}/wait"), &json!({}));
    assert_eq!(waited.json()["StatusCode"], 137, "{}", waited.body);
    // next-exit waits for the next stop, not the last one.
    std::thread::scope(|scope| {
        let next = scope.spawn(|| {
            d.post(
                &format!("/containers/{fixed}/wait?condition=next-exit"),
                &json!({}),
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            !next.is_finished(),
            "next-exit answered before the next exit"
        );
        d.docker_ok(&["start", &fixed]);
        d.docker_ok(&["stop", &fixed]);
        let r = next.join().expect("wait thread");
        assert_eq!(
            (r.status, r.json()["StatusCode"].clone()),
            (200, json!(143)),
            "{}",
            r.body
        );
    });
    let r = d.post(
        &format!("/containers/{fixed}/wait?condition=nope"),
        &json!({}),
    );
    assert_eq!(
        (r.status, r.message()),
        (400, "invalid condition: \"nope\"".to_string())
    );

    // Removing a running container needs force; prune removes the stopped ones.
    let r = d.delete(&format!("/containers/{other}"));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        r.message(),
        format!(
            "cannot remove container \"{other}\": container is running: stop the container before removing or force remove"
        )
    );
    let r = d.post("/containers/prune", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let deleted = r.json()["ContainersDeleted"].clone();
    assert_eq!(deleted.as_array().map(Vec::len), Some(1), "{deleted}");
    assert!(!netns_exists(&fixed));
    d.docker_ok(&["rm", "-f", &dynamic, &other]);
    assert!(
        inspect_net(&d, &net)["Containers"]
            .as_object()
            .is_none_or(|m| m.is_empty())
    );
}

#[test]
fn docker_errors_and_routes_that_need_processes() {
    let d = Daemon::start();
    let made = Made::new(&d);
    let net = format!("nbt-net-{}", common::rand_hex(4));
    create_net(&d, &net, "172.31.9.0/24", json!({}));

    // A static address on the default bridge: Docker's 400 and text.
    let r = d.post(
        &format!("/containers/create?name={}", made.fresh()),
        &json!({"NetworkingConfig": {"EndpointsConfig": {"default": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}}}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.message(),
        "invalid config for network bridge: invalid endpoint settings:\nuser-specified IP address is supported on user-defined networks only"
    );
    // An unknown network: as on Docker, the create succeeds and the start fails (and leaves
    // nothing attached).
    let unknown = made.fresh();
    create(
        &d,
        &unknown,
        json!({"Image": "busybox", "HostConfig": {"NetworkMode": "nbt-nosuch"},
               "NetworkingConfig": {"EndpointsConfig": {net.as_str(): {}}}}),
    );
    let r = d.post(&format!("/containers/{unknown}/start"), &json!({}));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        r.message(),
        "failed to set up container networking: network nbt-nosuch not found"
    );
    assert!(link(&unknown, "eth0").is_none());
    assert_eq!(inspect(&d, &unknown)["State"]["Status"], "created");
    // none with another network.
    let r = d.post(
        &format!("/containers/create?name={}", made.fresh()),
        &json!({"HostConfig": {"NetworkMode": "none"},
                "NetworkingConfig": {"EndpointsConfig": {net.as_str(): {}}}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // A failed create leaves nothing behind.
    for name in made.names.borrow().iter().filter(|n| **n != unknown) {
        assert!(!netns_exists(name), "{name} left behind");
    }

    // docker run without -d: the start after the attach is refused, naming ip netns exec,
    // and nothing hangs. As on Docker when a start fails, the container stays created.
    let name = made.fresh();
    let out = d.docker(&["run", "--name", &name, "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Error response from daemon: cannot start container")
            && stderr(&out).contains("ip netns exec"),
        "{}",
        stderr(&out)
    );
    assert_eq!(inspect(&d, &name)["State"]["Status"], "created");
    assert!(link(&name, "eth0").is_none());
    // A start without attaching works.
    d.docker_ok(&["start", &name]);
    assert!(link(&name, "eth0").is_some());

    // exec, logs: 501 naming ip netns exec.
    let name = made.fresh();
    d.docker_ok(&["run", "-d", "--name", &name, "busybox"]);
    let out = d.docker(&["exec", &name, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("ip netns exec"), "{}", stderr(&out));
    for (method, path) in [
        ("POST", format!("/containers/{name}/exec")),
        ("GET", format!("/containers/{name}/logs")),
        ("POST", format!("/containers/{name}/attach")),
        ("POST", "/images/create?fromImage=busybox".to_string()),
    ] {
        assert_eq!(status(&d, method, &path), 501, "{method} {path}");
    }
    // container:<name|id>: Docker's own refusals first, then 501 (a container here is its
    // namespace, so two cannot share one).
    for (body, status, text) in [
        (
            json!({"Image": "busybox", "Hostname": "h", "HostConfig": {"NetworkMode": format!("container:{name}")}}),
            400,
            "conflicting options: hostname and the network mode".to_string(),
        ),
        (
            json!({"Image": "busybox", "HostConfig": {"NetworkMode": "container:nbt-nosuch"}}),
            404,
            "No such container: nbt-nosuch".to_string(),
        ),
    ] {
        let r = d.post(&format!("/containers/create?name={}", made.fresh()), &body);
        assert_eq!((r.status, r.message()), (status, text), "{body}");
    }
    let out = d.docker(&[
        "run",
        "-d",
        "--network",
        &format!("container:{name}"),
        "busybox",
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("is not supported by netbridge"),
        "{}",
        stderr(&out)
    );

    // kill of a container that is not running: 409, in Docker's words.
    d.docker_ok(&["stop", &name]);
    let r = d.post(&format!("/containers/{name}/kill"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.message()
            .starts_with(&format!("cannot kill container: {name}: container ")),
        "{}",
        r.body
    );
    // A prune never removes more than asked: filters are refused, not ignored.
    let r = d.post(
        "/containers/prune?filters=%7B%22label%22%3A%5B%22a%22%5D%7D",
        &json!({}),
    );
    assert_eq!(
        (r.status, r.message()),
        (400, "invalid filter 'label'".to_string())
    );
    assert_eq!(inspect(&d, &name)["State"]["Status"], "exited");
}

#[test]
fn network_connect_and_disconnect_change_the_configuration() {
    let d = Daemon::start();
    let made = Made::new(&d);
    let net = format!("nbt-net-{}", common::rand_hex(4));
    create_net(&d, &net, "172.31.10.0/24", json!({}));
    let c = made.fresh();
    d.docker_ok(&["create", "--name", &c, "busybox"]);
    // Connected while created: joined at start, with its static address.
    d.docker_ok(&["network", "connect", "--ip", "172.31.10.30", &net, &c]);
    assert!(link(&c, "eth0").is_none(), "created: nothing yet");
    d.docker_ok(&["start", &c]);
    assert!(link(&c, "eth0").is_some());
    assert_eq!(ipv4_of(&c, "eth1"), vec!["172.31.10.30/24"]);
    // Kept across stop and start.
    d.docker_ok(&["stop", &c]);
    d.docker_ok(&["start", &c]);
    assert_eq!(ipv4_of(&c, "eth1"), vec!["172.31.10.30/24"]);
    // Disconnected while running: gone now and at the next start.
    d.docker_ok(&["network", "disconnect", &net, &c]);
    assert!(link(&c, "eth1").is_none());
    d.docker_ok(&["restart", &c]);
    assert!(link(&c, "eth1").is_none() && link(&c, "eth0").is_some());
    let r = d.post(
        &format!("/networks/{net}/disconnect"),
        &json!({"Container": c}),
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // host and none containers join no network.
    let host = made.fresh();
    let none = made.fresh();
    d.docker_ok(&["create", "--name", &host, "--network", "host", "busybox"]);
    d.docker_ok(&["create", "--name", &none, "--network", "none", "busybox"]);
    for (name, text) in [
        (
            &host,
            "container sharing network namespace with another container or host cannot be connected to any other network",
        ),
        (
            &none,
            "container cannot be connected to multiple networks with one of the networks in private (none) mode",
        ),
    ] {
        let r = d.post(
            &format!("/networks/{net}/connect"),
            &json!({"Container": name}),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.message(), text);
    }
}

#[test]
fn dns_and_hosts_are_where_ip_netns_exec_reads_them() {
    let d = Daemon::start();
    let made = Made::new(&d);
    let net = format!("nbt-net-{}", common::rand_hex(4));
    create_net(&d, &net, "172.31.11.0/24", json!({}));
    let c = made.fresh();
    d.docker_ok(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        &net,
        "--ip",
        "172.31.11.9",
        "--hostname",
        "web",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "example.org",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:10.1.2.3",
        "busybox",
    ]);
    let cat = |file: &str| stdout(&run("ip", &["netns", "exec", &c, "cat", file]));
    assert_eq!(
        cat("/etc/resolv.conf"),
        "nameserver 10.0.0.53\nsearch example.org\noptions ndots:2"
    );
    let hosts = cat("/etc/hosts");
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("\n10.1.2.3\tdb\n"), "{hosts}");
    assert!(hosts.ends_with("\n172.31.11.9\tweb"), "{hosts}");
    let c_inspect = inspect(&d, &c);
    assert_eq!(
        c_inspect["HostConfig"]["Dns"],
        json!(["10.0.0.53"]),
        "{c_inspect}"
    );
    assert_eq!(c_inspect["Config"]["Hostname"], "web", "{c_inspect}");
    d.docker_ok(&["rm", "-f", &c]);
    assert!(!std::path::Path::new("/etc/netns").join(&c).exists());
}

/// Runs a docker-py script against `d` with `NET`, `C1`, `C2` set; it must succeed.
fn docker_py(d: &Daemon, vars: &[(&str, &str)], body: &str) -> String {
    let mut script = String::from(
        "import os, docker\nc = docker.DockerClient(base_url='unix://' + os.environ['SOCKET'])\n",
    );
    for (k, v) in vars {
        script.push_str(&format!("{k} = {v:?}\n"));
    }
    script.push_str(body);
    let out = d.python(&script);
    assert!(
        out.status.success(),
        "docker-py script failed:\n{script}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn docker_py_run_detached_and_create_with_networking_config() {
    let d = Daemon::start();
    let made = Made::new(&d);
    let net = format!("nbt-net-{}", common::rand_hex(4));
    create_net(&d, &net, "172.31.12.0/24", json!({}));
    let (c1, c2) = (made.fresh(), made.fresh());
    let out = docker_py(
        &d,
        &[("NET", &net), ("C1", &c1), ("C2", &c2)],
        r#"
r = c.containers.run("busybox", ["/bin/sh", "-c", "while true;do sleep 3600;done"],
                     detach=True, name=C1, network=NET)
r.reload()
assert r.status == "running", r.status
assert list(r.attrs["NetworkSettings"]["Networks"]) == [NET], r.attrs["NetworkSettings"]
ep = c.api.create_endpoint_config(ipv4_address="172.31.12.20", aliases=["db"])
cr = c.containers.create("busybox", name=C2, network=NET, networking_config={NET: ep})
assert cr.status == "created", cr.status
cr.start()
cr.reload()
s = cr.attrs["NetworkSettings"]["Networks"][NET]
assert s["IPAddress"] == "172.31.12.20", s
assert s["Aliases"] == ["db"], s
names = sorted(x.name for x in c.containers.list(filters={"network": NET}))
assert names == sorted([C1, C2]), names
cr.stop()
assert c.containers.get(C2).status == "exited"
assert sorted(x.name for x in c.containers.list()) == [C1]
r.remove(force=True)
cr.remove()
print("ok")
"#,
    );
    assert_eq!(out, "ok");
    assert!(!netns_exists(&c1) && !netns_exists(&c2));
}
