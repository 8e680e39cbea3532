//! The cluster store on etcd v3, through its JSON gateway (`/v3/...` over HTTP/1.1, keys and
//! values base64): no gRPC stack and no `protoc` at build time. Every call has a deadline, so
//! an etcd without quorum (where writes hang) answers `Unavailable` quickly instead.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::{
    ClusterEndpoint, ClusterError, ClusterEvent, ClusterResult, ClusterStore, Fut, GlobalNetwork,
    Snapshot, WatchStream,
};

const PREFIX: &str = "/netbridge/";
/// How long one call may take, all members tried, before it counts as unavailable.
const DEADLINE: Duration = Duration::from_millis(800);
/// How long one member may take before the next is tried (a stopped member accepts the
/// connection and never answers).
const PER_MEMBER: Duration = Duration::from_millis(350);
/// How long connecting to one member may take.
const CONNECT: Duration = Duration::from_millis(250);
/// Calls in flight at once: more queue here rather than at etcd, where every one of them
/// would be slowed past the deadline under a burst of connects.
const IN_FLIGHT: usize = 8;
/// How long a call may queue for its turn.
const QUEUE: Duration = Duration::from_secs(5);
/// How often a write refused by a fence set meanwhile is sent again.
const FENCE_TRIES: usize = 3;
/// How often a watch checks that its member still answers.
const WATCH_PROBE: Duration = Duration::from_secs(1);

/// Where etcd is and how to reach it.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// `host:port` of each member.
    pub members: Vec<String>,
    pub tls: Option<TlsFiles>,
}

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl EtcdConfig {
    /// Parses `etcd://a:2379,b:2379` (or `etcds://` for TLS).
    pub fn parse(url: &str, tls: Option<TlsFiles>) -> Result<EtcdConfig, String> {
        let (secure, rest) = if let Some(rest) = url.strip_prefix("etcd://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("etcds://") {
            (true, rest)
        } else {
            return Err(format!(
                "--cluster-store {url}: expected etcd://HOST:PORT[,HOST:PORT…]"
            ));
        };
        let members: Vec<String> = rest
            .trim_end_matches('/')
            .split(',')
            .filter(|m| !m.is_empty())
            .map(|m| {
                if m.contains(':') {
                    m.to_string()
                } else {
                    format!("{m}:2379")
                }
            })
            .collect();
        if members.is_empty() {
            return Err(format!("--cluster-store {url}: no etcd member given"));
        }
        let tls = match (secure, tls) {
            (_, Some(t)) => Some(t),
            (true, None) => Some(TlsFiles {
                ca: None,
                cert: None,
                key: None,
            }),
            (false, None) => None,
        };
        Ok(EtcdConfig { members, tls })
    }
}

/// etcd as the cluster store.
pub struct Etcd {
    members: Vec<String>,
    tls: Option<tokio_rustls::TlsConnector>,
    /// The member that answered last; tried first.
    preferred: AtomicUsize,
    fence: Fence,
    turns: tokio::sync::Semaphore,
}

/// A write that timed out may still be applied later: etcd may hold it in its log, or a
/// stopped member may read it from its socket when it runs again. So every conditional write
/// also compares this host's fence key with the revision it was last set to, and after a
/// write with an unknown outcome the fence is set again before anything else is sent: a late
/// write then fails its compare. What landed before that is visible to the reads that follow.
struct Fence {
    key: String,
    /// The fence's revision as this host last set it; 0 until it is set (again).
    revision: AtomicI64,
    /// How many times it was set: callers redo what an unknown outcome may have undone.
    generation: AtomicU64,
    setting: tokio::sync::Mutex<()>,
}

impl Etcd {
    pub fn new(config: EtcdConfig, host: Ipv4Addr) -> Result<Etcd, String> {
        let tls = match &config.tls {
            Some(files) => Some(tls_connector(files)?),
            None => None,
        };
        Ok(Etcd {
            members: config.members,
            tls,
            preferred: AtomicUsize::new(0),
            fence: Fence {
                key: format!("{PREFIX}fences/{host}"),
                revision: AtomicI64::new(0),
                generation: AtomicU64::new(0),
                setting: tokio::sync::Mutex::new(()),
            },
            turns: tokio::sync::Semaphore::new(IN_FLIGHT),
        })
    }

    /// One gateway call, after the fence is set if a write's outcome is unknown.
    async fn call(&self, path: &'static str, body: Value) -> ClusterResult<Value> {
        self.fenced().await?;
        self.call_now(path, body).await
    }

    /// The fence's current revision, set first if it is not known.
    async fn fenced(&self) -> ClusterResult<i64> {
        let known = self.fence.revision.load(Ordering::Acquire);
        if known != 0 {
            return Ok(known);
        }
        let _one = self.fence.setting.lock().await;
        let known = self.fence.revision.load(Ordering::Acquire);
        if known != 0 {
            return Ok(known);
        }
        let v = self
            .call_now(
                "/v3/kv/put",
                json!({"key": b64(&self.fence.key), "value": b64("fence")}),
            )
            .await?;
        let revision = num(&v["header"]["revision"]);
        self.fence.revision.store(revision, Ordering::Release);
        self.fence.generation.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(revision, "cluster fence set");
        Ok(revision)
    }

    /// One gateway call, the members tried in turn within [`DEADLINE`].
    async fn call_now(&self, path: &'static str, body: Value) -> ClusterResult<Value> {
        let body = Bytes::from(body.to_string());
        // The deadline starts with the call's turn: queueing here is load, not an outage.
        let _turn = match tokio::time::timeout(QUEUE, self.turns.acquire()).await {
            Ok(Ok(turn)) => turn,
            _ => {
                return Err(ClusterError::Unavailable(
                    "too many cluster calls waiting".to_string(),
                ));
            }
        };
        let _timer = crate::metrics::Timer::new("etcd", path);
        let attempt = async {
            let mut last = String::from("no member answered");
            let first = self.preferred.load(Ordering::Relaxed);
            for i in 0..self.members.len() {
                let which = (first + i) % self.members.len();
                let sent = tokio::time::timeout(PER_MEMBER, self.send(which, path, body.clone()));
                match sent.await.unwrap_or_else(|_| Err("no answer".to_string())) {
                    Ok(Reply::Done(v)) => {
                        self.preferred.store(which, Ordering::Relaxed);
                        return Ok(v);
                    }
                    Ok(Reply::Refused(e)) => return Err(ClusterError::Refused(e)),
                    Err(e) => last = format!("{}: {e}", self.members[which]),
                }
            }
            Err(ClusterError::Unavailable(last))
        };
        match tokio::time::timeout(DEADLINE, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ClusterError::Unavailable(format!(
                "no answer within {} ms (quorum lost?)",
                DEADLINE.as_millis()
            ))),
        }
    }

    /// Sends one request to one member; returns its response body once complete.
    async fn send(&self, which: usize, path: &str, body: Bytes) -> Result<Reply, String> {
        let response = self.open(which, path, body).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if status.is_success() {
            return Ok(Reply::Done(v));
        }
        let msg = v["message"]
            .as_str()
            .or(v["error"].as_str())
            .unwrap_or("etcd refused the request")
            .to_string();
        // gRPC's Unavailable / DeadlineExceeded: another member may do better.
        match v["code"].as_i64() {
            Some(14) | Some(4) => Err(msg),
            _ => Ok(Reply::Refused(msg)),
        }
    }

    async fn open(
        &self,
        which: usize,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let member = Member {
            addr: self.members[which].clone(),
            tls: self.tls.clone(),
        };
        member.open(path, body).await
    }
    async fn range(&self, prefix: &str) -> ClusterResult<(Vec<(String, Value)>, i64)> {
        let v = self
            .call(
                "/v3/kv/range",
                json!({"key": b64(prefix), "range_end": b64(&prefix_end(prefix))}),
            )
            .await?;
        let revision = num(&v["header"]["revision"]);
        let mut out = Vec::new();
        for kv in v["kvs"].as_array().into_iter().flatten() {
            let (Some(k), Some(val)) = (unb64(&kv["key"]), unb64(&kv["value"])) else {
                continue;
            };
            if let Ok(parsed) = serde_json::from_str(&val) {
                out.push((k, parsed));
            }
        }
        Ok((out, revision))
    }

    /// A conditional write, also conditional on the fence (see [`Fence`]).
    async fn txn(&self, compare: Vec<Value>, success: Vec<Value>) -> ClusterResult<bool> {
        let failure = vec![json!({"request_range": {"key": b64(&self.fence.key)}})];
        for _ in 0..FENCE_TRIES {
            let fence = self.fenced().await?;
            let mut all = compare.clone();
            all.push(
                json!({"key": b64(&self.fence.key), "target": "MOD", "result": "EQUAL",
                "mod_revision": fence.to_string()}),
            );
            let body = json!({"compare": all, "success": &success, "failure": &failure});
            let v = match self.call_now("/v3/kv/txn", body).await {
                Ok(v) => v,
                Err(ClusterError::Unavailable(e)) => {
                    self.unfence(fence);
                    return Err(ClusterError::Unavailable(e));
                }
                Err(e) => return Err(e),
            };
            if v["succeeded"].as_bool() == Some(true) {
                return Ok(true);
            }
            let now = num(&v["responses"][0]["response_range"]["kvs"][0]["mod_revision"]);
            if now == fence {
                return Ok(false);
            }
            // The fence was set again meanwhile (after another call's unknown outcome): this
            // write was refused by the fence alone, so it is safe to send again.
            self.unfence(fence);
        }
        Err(ClusterError::Unavailable(
            "the cluster store was interrupted; nothing was written".to_string(),
        ))
    }

    /// Marks the fence `revision` as no longer good: the next call sets it again.
    fn unfence(&self, revision: i64) {
        let _ =
            self.fence
                .revision
                .compare_exchange(revision, 0, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// One etcd member and how to reach it.
#[derive(Clone)]
struct Member {
    addr: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Member {
    async fn open(
        &self,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let tcp = tokio::time::timeout(CONNECT, TcpStream::connect(self.addr.as_str()))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, self.addr.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        match &self.tls {
            None => send_on(hyper_util::rt::TokioIo::new(tcp), request).await,
            Some(connector) => {
                let host = self
                    .addr
                    .rsplit_once(':')
                    .map_or(self.addr.as_str(), |(h, _)| h);
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| e.to_string())?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| e.to_string())?;
                send_on(hyper_util::rt::TokioIo::new(tls), request).await
            }
        }
    }

    /// Whether the member's process answers (a serializable read needs no quorum).
    async fn answers(&self) -> bool {
        let body = json!({"key": b64(PREFIX), "serializable": true, "count_only": true});
        let call = self.open("/v3/kv/range", Bytes::from(body.to_string()));
        matches!(tokio::time::timeout(PER_MEMBER, call).await, Ok(Ok(r)) if r.status().is_success())
    }
}

enum Reply {
    Done(Value),
    /// etcd answered with a refusal that another member would repeat.
    Refused(String),
}

async fn send_on<T>(
    io: hyper_util::rt::TokioIo<T>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

fn tls_connector(files: &TlsFiles) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &files.ca {
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
            let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("{}: {e}", cert.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

fn unb64(v: &Value) -> Option<String> {
    String::from_utf8(B64.decode(v.as_str()?).ok()?).ok()
}

/// The gateway prints int64 as strings; accepts both.
fn num(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// The end of the key range holding every key that starts with `prefix`.
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8(bytes).unwrap_or_default()
}

fn network_key(id: &str) -> String {
    format!("{PREFIX}networks/{id}")
}
fn name_key(name: &str) -> String {
    format!("{PREFIX}names/{name}")
}
fn vni_key(vni: u32) -> String {
    format!("{PREFIX}vnis/{vni}")
}
fn subnet_key(subnet: &str) -> String {
    format!("{PREFIX}subnets/{}", subnet.replace('/', "_"))
}
fn host_key(host: Ipv4Addr) -> String {
    format!("{PREFIX}hosts/{host}")
}
fn endpoints_prefix(network: &str) -> String {
    format!("{PREFIX}endpoints/{network}/")
}
fn endpoint_key(network: &str, ip: Ipv4Addr) -> String {
    format!("{}{ip}", endpoints_prefix(network))
}

fn absent(key: &str) -> Value {
    json!({"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
}

fn put(key: &str, value: &Value, lease: Option<i64>) -> Value {
    let mut p = json!({"key": b64(key), "value": b64(&value.to_string())});
    if let Some(l) = lease {
        p["lease"] = json!(l.to_string());
    }
    json!({ "request_put": p })
}

fn delete(key: &str) -> Value {
    json!({"request_delete_range": {"key": b64(key)}})
}

fn delete_prefix(prefix: &str) -> Value {
    json!({"request_delete_range": {"key": b64(prefix), "range_end": b64(&prefix_end(prefix))}})
}

/// The event a watched key's change means.
fn event_of(key: &str, value: Option<&str>) -> Option<ClusterEvent> {
    let rest = key.strip_prefix(PREFIX)?;
    if let Some(id) = rest.strip_prefix("networks/") {
        return Some(match value {
            Some(v) => ClusterEvent::Network(serde_json::from_str(v).ok()?),
            None => ClusterEvent::NetworkGone(id.to_string()),
        });
    }
    if let Some(tail) = rest.strip_prefix("endpoints/") {
        let (network, ip) = tail.split_once('/')?;
        return Some(match value {
            Some(v) => ClusterEvent::Endpoint(serde_json::from_str(v).ok()?),
            None => ClusterEvent::EndpointGone {
                network: network.to_string(),
                ip: ip.parse().ok()?,
            },
        });
    }
    None
}

impl ClusterStore for Etcd {
    fn snapshot(&self) -> Fut<'_, Snapshot> {
        Box::pin(async move {
            let (kvs, revision) = self.range(PREFIX).await?;
            let mut snap = Snapshot {
                revision,
                ..Snapshot::default()
            };
            for (k, v) in kvs {
                if k.starts_with(&format!("{PREFIX}hosts/")) {
                    let subnets = v.as_array().into_iter().flatten();
                    snap.host_subnets
                        .extend(subnets.filter_map(|s| s.as_str().map(str::to_string)));
                    continue;
                }
                match event_of(&k, Some(&v.to_string())) {
                    Some(ClusterEvent::Network(n)) => snap.networks.push(n),
                    Some(ClusterEvent::Endpoint(e)) => snap.endpoints.push(e),
                    _ => {}
                }
            }
            Ok(snap)
        })
    }

    fn create_network<'a>(&'a self, n: &'a GlobalNetwork, seen: i64) -> Fut<'a, bool> {
        Box::pin(async move {
            let value = serde_json::to_value(n).unwrap_or(Value::Null);
            let id = json!(n.id);
            let keys = [name_key(&n.name), vni_key(n.vni), subnet_key(&n.subnet)];
            let mut compare: Vec<Value> = keys.iter().map(|k| absent(k)).collect();
            compare.push(absent(&network_key(&n.id)));
            let networks = network_key("");
            compare.push(
                json!({"key": b64(&networks), "range_end": b64(&prefix_end(&networks)),
                "target": "MOD", "result": "LESS", "mod_revision": (seen + 1).to_string()}),
            );
            let mut success: Vec<Value> = keys.iter().map(|k| put(k, &id, None)).collect();
            success.push(put(&network_key(&n.id), &value, None));
            self.txn(compare, success).await
        })
    }

    fn name_taken<'a>(&'a self, name: &'a str) -> Fut<'a, bool> {
        Box::pin(async move {
            let v = self
                .call(
                    "/v3/kv/range",
                    json!({"key": b64(&name_key(name)), "count_only": true}),
                )
                .await?;
            Ok(num(&v["count"]) > 0)
        })
    }

    fn remove_network<'a>(&'a self, n: &'a GlobalNetwork) -> Fut<'a, usize> {
        Box::pin(async move {
            let prefix = endpoints_prefix(&n.id);
            let (endpoints, _) = self.range(&prefix).await?;
            if !endpoints.is_empty() {
                return Ok(endpoints.len());
            }
            let success = vec![
                delete(&name_key(&n.name)),
                delete(&vni_key(n.vni)),
                delete(&subnet_key(&n.subnet)),
                delete(&network_key(&n.id)),
                delete_prefix(&prefix),
            ];
            // Refused if an endpoint appeared meanwhile (the range is empty only if none).
            let compare = vec![
                json!({"key": b64(&prefix), "range_end": b64(&prefix_end(&prefix)),
                "target": "CREATE", "result": "EQUAL", "create_revision": "0"}),
            ];
            if self.txn(compare, success).await? {
                Ok(0)
            } else {
                Ok(1)
            }
        })
    }

    fn claim<'a>(&'a self, e: &'a ClusterEndpoint, lease: i64) -> Fut<'a, bool> {
        Box::pin(async move {
            let key = endpoint_key(&e.network, e.ip);
            let value = serde_json::to_value(e).unwrap_or(Value::Null);
            self.txn(vec![absent(&key)], vec![put(&key, &value, Some(lease))])
                .await
        })
    }

    fn republish<'a>(&'a self, e: &'a ClusterEndpoint, lease: i64) -> Fut<'a, bool> {
        Box::pin(async move {
            let key = endpoint_key(&e.network, e.ip);
            let value = serde_json::to_value(e).unwrap_or(Value::Null);
            if self
                .txn(vec![absent(&key)], vec![put(&key, &value, Some(lease))])
                .await?
            {
                return Ok(true);
            }
            // Ours already (published before a restart): put again under the new lease.
            let v = self.call("/v3/kv/range", json!({"key": b64(&key)})).await?;
            let current: Option<ClusterEndpoint> = v["kvs"][0]["value"]
                .as_str()
                .and_then(|_| unb64(&v["kvs"][0]["value"]))
                .and_then(|s| serde_json::from_str(&s).ok());
            match current {
                Some(c) if c.endpoint == e.endpoint => {
                    let compare =
                        vec![json!({"key": b64(&key), "target": "MOD", "result": "EQUAL",
                        "mod_revision": v["kvs"][0]["mod_revision"].clone()})];
                    self.txn(compare, vec![put(&key, &value, Some(lease))])
                        .await
                }
                _ => Ok(false),
            }
        })
    }

    fn claimed<'a>(&'a self, network: &'a str) -> Fut<'a, Vec<Ipv4Addr>> {
        Box::pin(async move {
            let prefix = endpoints_prefix(network);
            let v = self
                .call(
                    "/v3/kv/range",
                    json!({"key": b64(&prefix), "range_end": b64(&prefix_end(&prefix)), "keys_only": true}),
                )
                .await?;
            Ok(v["kvs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|kv| unb64(&kv["key"])?.strip_prefix(&prefix)?.parse().ok())
                .collect())
        })
    }

    fn release<'a>(&'a self, network: &'a str, ip: Ipv4Addr, endpoint: &'a str) -> Fut<'a, ()> {
        Box::pin(async move {
            let key = endpoint_key(network, ip);
            let v = self.call("/v3/kv/range", json!({"key": b64(&key)})).await?;
            let current: Option<ClusterEndpoint> =
                unb64(&v["kvs"][0]["value"]).and_then(|s| serde_json::from_str(&s).ok());
            if current.is_some_and(|c| c.endpoint == endpoint) {
                let compare = vec![json!({"key": b64(&key), "target": "MOD", "result": "EQUAL",
                    "mod_revision": v["kvs"][0]["mod_revision"].clone()})];
                self.txn(compare, vec![delete(&key)]).await?;
            }
            Ok(())
        })
    }

    fn publish_host<'a>(
        &'a self,
        host: Ipv4Addr,
        subnets: &'a [String],
        lease: i64,
    ) -> Fut<'a, ()> {
        Box::pin(async move {
            let value = serde_json::to_value(subnets).unwrap_or(Value::Null);
            let p = put(&host_key(host), &value, Some(lease));
            self.call("/v3/kv/put", p["request_put"].clone()).await?;
            Ok(())
        })
    }

    fn grant(&self, ttl: u64) -> Fut<'_, i64> {
        Box::pin(async move {
            let v = self
                .call("/v3/lease/grant", json!({"TTL": ttl.to_string()}))
                .await?;
            let id = num(&v["ID"]);
            if id == 0 {
                return Err(ClusterError::Refused("etcd granted no lease".to_string()));
            }
            Ok(id)
        })
    }

    fn keep_alive(&self, lease: i64) -> Fut<'_, bool> {
        Box::pin(async move {
            let v = self
                .call("/v3/lease/keepalive", json!({"ID": lease.to_string()}))
                .await?;
            Ok(num(&v["result"]["TTL"]) > 0)
        })
    }

    fn fence_generation(&self) -> u64 {
        self.fence.generation.load(Ordering::Acquire)
    }

    fn watch(&self, from_revision: i64) -> Fut<'_, WatchStream> {
        Box::pin(async move {
            let body = json!({"create_request": {
                "key": b64(PREFIX), "range_end": b64(&prefix_end(PREFIX)),
                "start_revision": from_revision.to_string()}});
            let body = Bytes::from(body.to_string());
            let mut last = String::new();
            let first = self.preferred.load(Ordering::Relaxed);
            for i in 0..self.members.len() {
                let which = (first + i) % self.members.len();
                let opened =
                    tokio::time::timeout(DEADLINE, self.open(which, "/v3/watch", body.clone()))
                        .await;
                match opened {
                    Ok(Ok(r)) if r.status().is_success() => {
                        let member = Member {
                            addr: self.members[which].clone(),
                            tls: self.tls.clone(),
                        };
                        return Ok(watch_stream(r.into_body(), member));
                    }
                    Ok(Ok(r)) => last = format!("watch answered {}", r.status()),
                    Ok(Err(e)) => last = e,
                    Err(_) => last = "watch timed out".to_string(),
                }
            }
            Err(ClusterError::Unavailable(last))
        })
    }
}

/// Turns the gateway's stream of JSON objects into batches of events with their revision.
/// The stream ends when its member stops answering, so the watcher moves to another.
fn watch_stream(body: hyper::body::Incoming, member: Member) -> WatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::new();
        let mut probe = tokio::time::interval(WATCH_PROBE);
        probe.tick().await;
        loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                _ = probe.tick() => {
                    if member.answers().await {
                        continue;
                    }
                    let _ = tx
                        .send(Err(ClusterError::Unavailable(format!("member {} stopped answering", member.addr))))
                        .await;
                    return;
                }
            };
            let Some(frame) = frame else { break };
            let Ok(frame) = frame else { break };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            // Objects are separated by newlines; a partial one waits for more data.
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let result = &v["result"];
                if result["canceled"].as_bool() == Some(true) || v.get("error").is_some() {
                    let _ = tx
                        .send(Err(ClusterError::Unavailable(format!(
                            "watch cancelled: {}",
                            result["cancel_reason"].as_str().unwrap_or("")
                        ))))
                        .await;
                    return;
                }
                let revision = num(&result["header"]["revision"]);
                let mut events = Vec::new();
                for ev in result["events"].as_array().into_iter().flatten() {
                    let Some(key) = unb64(&ev["kv"]["key"]) else {
                        continue;
                    };
                    let deleted = ev["type"].as_str() == Some("DELETE");
                    let value = if deleted {
                        None
                    } else {
                        unb64(&ev["kv"]["value"])
                    };
                    let mod_rev = num(&ev["kv"]["mod_revision"]);
                    if let Some(e) = event_of(&key, value.as_deref()) {
                        events.push((mod_rev, e));
                    }
                }
                if tx.send(Ok((revision, events))).await.is_err() {
                    return;
                }
            }
        }
        let _ = tx
            .send(Err(ClusterError::Unavailable("watch ended".to_string())))
            .await;
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let c = EtcdConfig::parse("etcd://10.0.0.1:2379,10.0.0.2", None).unwrap();
        assert_eq!(c.members, vec!["10.0.0.1:2379", "10.0.0.2:2379"]);
        assert!(c.tls.is_none());
        assert!(
            EtcdConfig::parse("etcds://h:1", None)
                .unwrap()
                .tls
                .is_some()
        );
        assert!(EtcdConfig::parse("http://h:1", None).is_err());
        assert!(EtcdConfig::parse("etcd://", None).is_err());
    }

    #[test]
    fn keys_map_to_events() {
        assert!(matches!(
            event_of("/netbridge/networks/abc", None),
            Some(ClusterEvent::NetworkGone(id)) if id == "abc"
        ));
        assert!(matches!(
            event_of("/netbridge/endpoints/abc/10.0.0.2", None),
            Some(ClusterEvent::EndpointGone { network, ip }) if network == "abc" && ip == Ipv4Addr::new(10, 0, 0, 2)
        ));
        assert_eq!(prefix_end("/a/"), "/a0");
    }
}
