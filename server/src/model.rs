//! The domain's nouns, shared by the service, the store and the HTTP layer.
//!
//! These are netbridge's own records, not Docker's wire shapes: `api::wire` turns them into what
//! the Docker API prints.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ipam::NetworkConfig;
use crate::kernel::NamespaceId;

/// Names Docker reserves for its predefined networks; none can be created or removed.
pub const PREDEFINED_NAMES: [&str; 4] = ["bridge", "host", "none", "default"];

/// A network: a row in the store and whatever kernel objects its driver makes for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub scope: String,
    /// Unix time in nanoseconds; Docker prints it as RFC 3339 with nanoseconds.
    pub created_nanos: i64,
    pub enable_ipv4: bool,
    pub enable_ipv6: bool,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    pub config_from: String,
    /// One of the predefined `bridge`, `host`, `none`.
    pub builtin: bool,
    /// The kernel link this network claims, unique among networks: its bridge, or the parent
    /// its macvlans hang off. `None` for host and none.
    pub link: Option<String>,
    /// The driver's own state (its parsed options, what it made), written and read only by
    /// the driver (`service::driver`).
    pub driver_state: serde_json::Value,
    /// Driver options exactly as given at create (Docker echoes them verbatim).
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub ipam_driver: String,
    /// IPAM options exactly as given; `None` when the client sent none, which Docker shows as
    /// `null` (and `{}` only when `{}` was sent).
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// IPv4 config first, then IPv6.
    pub ipam: Vec<NetworkConfig>,
}

impl Network {
    pub fn ipv4(&self) -> Option<&NetworkConfig> {
        self.ipam.iter().find(|c| c.subnet.is_ipv4())
    }

    pub fn ipv6(&self) -> Option<&NetworkConfig> {
        self.ipam.iter().find(|c| !c.subnet.is_ipv4())
    }

    /// Driver option parsed as a Go boolean, with Docker's default when absent or unparsable.
    pub fn bool_option(&self, key: &str, default: bool) -> bool {
        self.options
            .get(key)
            .and_then(|v| parse_go_bool(v))
            .unwrap_or(default)
    }
}

/// How a container's network namespace was found, which decides whether netbridge may delete it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    /// Made through the API (`POST /containers/create`): ours to delete.
    Sandbox,
    /// A named namespace under /run/netns that someone else made.
    Netns,
    /// A process's namespace, `/proc/<pid>/ns/net`.
    Pid,
}

impl ContainerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerKind::Sandbox => "sandbox",
            ContainerKind::Netns => "netns",
            ContainerKind::Pid => "pid",
        }
    }

    pub fn parse(s: &str) -> Option<ContainerKind> {
        match s {
            "sandbox" => Some(ContainerKind::Sandbox),
            "netns" => Some(ContainerKind::Netns),
            "pid" => Some(ContainerKind::Pid),
            _ => None,
        }
    }
}

/// A network namespace that netbridge attaches to networks: Docker's "container".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub kind: ContainerKind,
    /// The path it was last reached through (a PID's path moves to another process of the
    /// namespace when that one exits).
    pub netns_path: String,
    /// What makes it this container: [`UNKNOWN_NAMESPACE`] only in rows older than the
    /// identity column, until start-up fills it in.
    pub namespace: NamespaceId,
    pub created_nanos: i64,
}

/// The identity of a container recorded before identities were stored.
pub const UNKNOWN_NAMESPACE: NamespaceId = NamespaceId { dev: 0, ino: 0 };

/// One container's attachment to one network: a veth pair and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub network_id: String,
    pub container_id: String,
    /// Host end of the veth pair, plugged into the bridge.
    pub host_ifname: String,
    /// Container end, `eth0`, `eth1`, …
    pub ifname: String,
    pub mac: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub aliases: Vec<String>,
    pub gw_priority: i64,
    pub created_nanos: i64,
    /// Static addresses the client asked for (Docker reports them as `IPAMConfig`).
    pub requested_ipv4: Option<IpAddr>,
    pub requested_ipv6: Option<IpAddr>,
    /// Extra link-local addresses on the interface (IPAMConfig.LinkLocalIPs), as asked.
    pub link_local_ips: Vec<IpAddr>,
    /// Legacy links (`name[:alias]`), recorded and echoed; netbridge has no DNS to serve them.
    pub links: Vec<String>,
    /// The endpoint's driver options as given; `com.docker.network.endpoint.sysctls` and
    /// `com.docker.network.endpoint.ifname` are applied, the rest only echoed.
    pub driver_opts: BTreeMap<String, String>,
}

/// Where a container made with Docker's create body stands: Docker's `State.Status` for the
/// three states netbridge has (it runs no processes, so nothing pauses, restarts or dies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Made, never started: no interfaces yet.
    Created,
    /// Started: its endpoints are attached.
    Running,
    /// Stopped or killed: endpoints released, configuration kept.
    Exited,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running => "running",
            RunState::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        match s {
            "created" => Some(RunState::Created),
            "running" => Some(RunState::Running),
            "exited" => Some(RunState::Exited),
            _ => None,
        }
    }
}

/// One network a container joins each time it starts, with the endpoint settings it asked
/// for (Docker's `NetworkingConfig.EndpointsConfig` entry). Static addresses stay across
/// stop and start; dynamic ones are handed out again at each start.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlannedEndpoint {
    /// The network as the client named it; looked up again at each start.
    pub network: String,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub gw_priority: i64,
    #[serde(default)]
    pub link_local_ips: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
}

/// A container made with Docker's create body: what was asked for, and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifecycle {
    pub container_id: String,
    /// The create body as sent, echoed by inspect.
    pub body: serde_json::Value,
    /// `bridge`, `none`, `host` or a network's name, as Docker reports `HostConfig.NetworkMode`.
    pub network_mode: String,
    pub networks: Vec<PlannedEndpoint>,
    pub state: RunState,
    pub started_nanos: Option<i64>,
    pub finished_nanos: Option<i64>,
    pub exit_code: i64,
}

/// One host port a running container publishes (`-p`, `-P`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_id: String,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// `0.0.0.0`, `::` (every address of the family) or one host address.
    pub host_ip: std::net::IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// The names a container answers to on one endpoint's network, in Docker's order: its name, the
/// endpoint's aliases, its short ID. Inspect shows them as `DNSNames`; the resolver answers them.
pub fn dns_names(container: &Container, e: &Endpoint) -> Vec<String> {
    let mut names = vec![container.name.clone()];
    names.extend(e.aliases.iter().cloned());
    names.push(container.id.chars().take(12).collect());
    names
}

/// Go's `strconv.ParseBool`, which Docker uses for every boolean option and query parameter.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A new 64-hex ID as Docker makes them: 32 random bytes, redrawn while the short form (first 12
/// characters) is all digits, since that would read as a number in the CLI.
pub fn new_id() -> String {
    loop {
        let bytes: [u8; 32] = rand::random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// RFC 3339 with nanoseconds, trailing zeros trimmed, as Go's `time.RFC3339Nano` prints.
pub fn format_nanos(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if frac == 0 {
        format!("{base}Z")
    } else {
        let digits = format!("{frac:09}");
        format!("{base}.{}Z", digits.trim_end_matches('0'))
    }
}

/// A random locally administered unicast MAC, as Docker 28+ makes.
pub fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What the kernel accepts as an interface name (`dev_valid_name`), minus ':' (alias syntax):
/// 1 to 15 bytes, not "." or "..", no '/', white space or control characters.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// `aa:bb:cc:dd:ee:ff` (or with `-`). Only a unicast, non-zero MAC can be an interface's: the
/// kernel refuses multicast (broadcast included) and all-zero ones, so they are refused here as
/// the client's mistake rather than failing later in the kernel.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    (mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_never_numeric_short() {
        for _ in 0..200 {
            let id = new_id();
            assert_eq!(id.len(), 64);
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            assert!(!id[..12].bytes().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn timestamps_print_like_go() {
        assert_eq!(format_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_nanos(1_476_851_610_360_899_459),
            "2016-10-19T04:33:30.360899459Z"
        );
        assert_eq!(
            format_nanos(1_476_851_610_500_000_000),
            "2016-10-19T04:33:30.5Z"
        );
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:42:ac:11:00:04"),
            Some([2, 0x42, 0xac, 0x11, 0, 4])
        );
        assert_eq!(parse_mac("01:00:5e:00:00:01"), None, "multicast");
        assert_eq!(parse_mac("33:33:00:00:00:01"), None, "IPv6 multicast");
        assert_eq!(parse_mac("ff:ff:ff:ff:ff:ff"), None, "broadcast");
        assert_eq!(parse_mac("00:00:00:00:00:00"), None, "all zero");
        assert_eq!(parse_mac("00:00:00:00:00:01"), Some([0, 0, 0, 0, 0, 1]));
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:04"), None);
        let m = random_mac();
        assert_eq!(m[0] & 0x03, 0x02, "local, unicast");
        assert_eq!(
            format_mac(&[2, 0x42, 0xac, 0x11, 0, 4]),
            "02:42:ac:11:00:04"
        );
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("True"), Some(true));
        assert_eq!(parse_go_bool("0"), Some(false));
        assert_eq!(parse_go_bool("yes"), None);
    }
}

/// Something that happened, in Docker's event terms: `Type` network or container, `Action`
/// create, connect, disconnect or destroy, an actor and its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub time_nanos: i64,
    pub kind: String,
    pub action: String,
    pub actor_id: String,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Whether `s` is a whole ID (64 lowercase hex), not a name or a prefix.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}
