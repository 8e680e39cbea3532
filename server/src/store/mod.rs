//! The store: every SQL statement netbridge runs, over SQLite in WAL mode.
//!
//! The service decides *what* to write; this module only knows *how* rows map to the domain
//! types in [`crate::model`]. Writes that must see a consistent picture run in `BEGIN IMMEDIATE`
//! transactions so two writers never interleave.

mod cache;
mod lifecycle;
mod ports;
mod rows;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::ipam::Cidr;
use crate::kernel::NamespaceId;
use crate::model::{Container, Endpoint, Network, UNKNOWN_NAMESPACE};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while {context}: {source}")]
    Sql {
        context: &'static str,
        source: sqlx::Error,
    },
    /// A UNIQUE constraint refused the write: the caller raced another writer.
    #[error("{0} already exists")]
    Duplicate(&'static str),
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

type Result<T> = std::result::Result<T, StoreError>;

/// Adds what was being done to a sqlx error, and recognises UNIQUE violations.
trait Context<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| {
            if let sqlx::Error::Database(db) = &source
                && db.is_unique_violation()
            {
                return StoreError::Duplicate(context);
            }
            StoreError::Sql { context, source }
        })
    }
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The tables in memory, kept in step by the statements that write them.
    tables: Arc<RwLock<cache::Tables>>,
}

impl Store {
    /// Opens (creating directories and file as needed) and migrates the database.
    pub async fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives a process crash (our failure model); only a power cut can
            // lose the last transactions, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Reads are served from memory (see `cache`), so SQLite's own page cache mostly
            // holds pages about to be written: 512 KiB per connection instead of 2 MiB.
            .pragma("cache_size", "-512");
        // SQLite has one writer at a time anyway; two connections let a write wait while
        // another finishes without four page caches.
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        let mut tables = cache::Tables {
            networks: cache::Networks::new(load_networks(&pool).await?),
            containers: load_containers(&pool).await?,
            endpoints: load_endpoints(&pool).await?,
            names: cache::Names::default(),
        };
        tables.index_names();
        Ok(Store {
            pool,
            tables: Arc::new(RwLock::new(tables)),
        })
    }

    /// The tables in memory, for reading. The lock is never held across an await, and the
    /// changes made under it cannot panic half-way, so a poisoned lock is still good to use.
    fn cached(&self) -> std::sync::RwLockReadGuard<'_, cache::Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn cached_mut(&self) -> std::sync::RwLockWriteGuard<'_, cache::Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// This daemon's random ID: made on first use, then kept for the life of the database, so
    /// that what is derived from it (the IPv6 ULA pool) stays the same across restarts.
    pub async fn daemon_id(&self) -> Result<String> {
        sqlx::query("INSERT OR IGNORE INTO daemon (singleton, id) VALUES (1, ?)")
            .bind(crate::model::new_id())
            .execute(&self.pool)
            .await
            .ctx("storing the daemon ID")?;
        sqlx::query("SELECT id FROM daemon WHERE singleton = 1")
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get("id"))
            .ctx("reading the daemon ID")
    }

    // ---- networks ----

    /// Inserts a network and its IPAM rows in one transaction.
    pub async fn insert_network(&self, n: &Network) -> Result<()> {
        let _timer = crate::metrics::Timer::new("sqlite", "insert_network");
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .ctx("starting a transaction")?;
        sqlx::query(
            "INSERT INTO networks (id, name, driver, scope, created_nanos, enable_ipv4, enable_ipv6,
                internal, attachable, ingress, config_only, config_from, builtin, link,
                driver_state, options, labels, ipam_driver, ipam_options)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&n.id)
        .bind(&n.name)
        .bind(&n.driver)
        .bind(&n.scope)
        .bind(n.created_nanos)
        .bind(n.enable_ipv4)
        .bind(n.enable_ipv6)
        .bind(n.internal)
        .bind(n.attachable)
        .bind(n.ingress)
        .bind(n.config_only)
        .bind(&n.config_from)
        .bind(n.builtin)
        .bind(&n.link)
        .bind(n.driver_state.to_string())
        .bind(rows::to_json(&n.options))
        .bind(rows::to_json(&n.labels))
        .bind(&n.ipam_driver)
        .bind(rows::to_json(&n.ipam_options))
        .execute(&mut *tx)
        .await
        .ctx("network")?;
        for cfg in &n.ipam {
            sqlx::query(
                "INSERT INTO subnets (network_id, family, subnet, ip_range, gateway, aux)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&n.id)
            .bind(if cfg.subnet.is_ipv4() { 4 } else { 6 })
            .bind(cfg.subnet.to_string())
            .bind(cfg.ip_range.map(|r| r.to_string()))
            .bind(cfg.gateway.to_string())
            .bind(rows::aux_to_json(&cfg.aux))
            .execute(&mut *tx)
            .await
            .ctx("subnet")?;
        }
        tx.commit().await.ctx("committing a network")?;
        self.cached_mut().networks.insert(n.clone());
        Ok(())
    }

    /// Deletes a network row (its subnets go with it). Returns whether a row was deleted.
    pub async fn delete_network(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM networks WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .ctx("deleting a network")?;
        self.cached_mut().networks.remove(id);
        Ok(done.rows_affected() > 0)
    }

    pub async fn network(&self, id: &str) -> Result<Option<Network>> {
        Ok(self.cached().networks.by_id(id))
    }

    pub async fn network_by_name(&self, name: &str) -> Result<Option<Network>> {
        Ok(self.cached().networks.by_name(name))
    }

    /// The network that claims the kernel link `link` (a bridge, a macvlan parent), if any.
    pub async fn network_id_with_link(&self, link: &str) -> Result<Option<String>> {
        Ok(self.cached().networks.id_with_link(link))
    }

    /// IDs starting with `prefix` (lowercase hex only; anything else matches nothing), at
    /// most 16: enough to tell "unique" from "ambiguous".
    pub async fn network_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.cached().networks.ids_with_prefix(prefix, 16))
    }

    /// Every network with its IPAM, by name; shared, not copied.
    pub async fn networks(&self) -> Result<Vec<Arc<Network>>> {
        Ok(self.cached().networks.all())
    }

    /// How many networks, endpoints and containers there are (for metrics gauges).
    pub async fn counts(&self) -> Result<(u64, u64, u64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM networks) AS n, (SELECT COUNT(*) FROM endpoints) AS e,
                    (SELECT COUNT(*) FROM containers) AS c",
        )
        .fetch_one(&self.pool)
        .await
        .ctx("counting")?;
        let get = |col: &str| -> Result<u64> {
            let v: i64 = row.try_get(col).ctx("counting")?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok((get("n")?, get("e")?, get("c")?))
    }

    /// Subnets held by every network: what a new network must not overlap.
    pub async fn taken_subnets(&self) -> Result<Vec<Cidr>> {
        Ok(self.cached().networks.subnets())
    }

    // ---- endpoints ----

    /// Endpoints per network ID, for `dangling` filters and prune.
    pub async fn endpoint_counts(&self) -> Result<HashMap<String, usize>> {
        Ok(self.cached().endpoints.counts())
    }

    /// How many endpoints a network has (a driver's limits), without copying them.
    pub async fn endpoint_count(&self, network_id: &str) -> Result<usize> {
        Ok(self.cached().endpoints.count_of_network(network_id))
    }

    pub async fn endpoints_of_network(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        Ok(self.cached().endpoints.of_network(network_id))
    }

    pub async fn endpoints_of_container(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        Ok(self.cached().endpoints.of_container(container_id))
    }

    pub async fn endpoints(&self) -> Result<Vec<Endpoint>> {
        Ok(self.cached().endpoints.all())
    }

    /// Addresses held by a network's endpoints.
    pub async fn used_addresses(&self, network_id: &str) -> Result<BTreeSet<IpAddr>> {
        Ok(self.cached().endpoints.used_addresses(network_id))
    }

    /// A connect's first write: the journal entry, then the endpoint row (which reserves the
    /// address), sent as one request to SQLite's thread. Returns the journal ID. On failure
    /// nothing is left: a journal entry whose row was refused is deleted again.
    pub async fn begin_connect(
        &self,
        op: &str,
        e: &Endpoint,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        let _timer = crate::metrics::Timer::new("sqlite", "begin_connect");
        let query = sqlx::query(BEGIN_CONNECT)
            .bind(op)
            .bind(&e.id)
            .bind(detail.to_string())
            .bind(crate::model::now_nanos());
        let written = bind_endpoint(query, e).fetch_all(&self.pool).await;
        match written {
            Ok(rows) => match rows.first() {
                Some(row) => {
                    self.cached_mut().insert_endpoint(e.clone());
                    row.try_get("id").ctx("reading a journal ID")
                }
                None => Err(StoreError::Corrupt {
                    table: "journal",
                    detail: "insert returned no ID".to_string(),
                }),
            },
            Err(source) => {
                sqlx::query("DELETE FROM journal WHERE op = ? AND subject = ?")
                    .bind(op)
                    .bind(&e.id)
                    .execute(&self.pool)
                    .await
                    .ctx("dropping a refused connect's journal entry")?;
                Err(source).ctx("endpoint")
            }
        }
    }

    /// A connect's last write: the interface name the kernel chose (and `ipv4`, an address
    /// decided while the interface was built, if the row was written without it), the journal
    /// entry closed and the event recorded, as one request. A crash between them leaves the
    /// entry, and start-up rolls the connect back as it would any unfinished one.
    pub async fn finish_connect(
        &self,
        op: i64,
        endpoint_id: &str,
        ifname: &str,
        ipv4: Option<IpAddr>,
        event: &crate::model::Event,
    ) -> Result<()> {
        let _timer = crate::metrics::Timer::new("sqlite", "finish_connect");
        let query = sqlx::query(FINISH_CONNECT)
            .bind(ifname)
            .bind(ipv4.map(|a| a.to_string()))
            .bind(endpoint_id)
            .bind(op);
        let done = bind_event(query, event)
            .execute(&self.pool)
            .await
            .ctx("recording a connect")?;
        self.cached_mut().endpoints.change(endpoint_id, |e| {
            e.ifname = ifname.to_string();
            e.ipv4 = ipv4.or(e.ipv4);
        });
        self.trim_events(done.last_insert_rowid()).await
    }

    /// Deletes a disconnected endpoint's row, closes its journal entry `op` (if given) and
    /// records its event, as one request (in that order: a crash in between leaves an entry
    /// whose undo finds the work done).
    pub async fn finish_disconnect(
        &self,
        op: Option<i64>,
        endpoint_id: &str,
        event: &crate::model::Event,
    ) -> Result<()> {
        let _timer = crate::metrics::Timer::new("sqlite", "finish_disconnect");
        let query = match op {
            Some(op) => sqlx::query(FINISH_DISCONNECT).bind(endpoint_id).bind(op),
            None => sqlx::query(DISCONNECT_KEEPING_OP).bind(endpoint_id),
        };
        let done = bind_event(query, event)
            .execute(&self.pool)
            .await
            .ctx("recording a disconnect")?;
        self.cached_mut().remove_endpoint(endpoint_id);
        self.trim_events(done.last_insert_rowid()).await
    }

    pub async fn delete_endpoint(&self, id: &str) -> Result<bool> {
        let _timer = crate::metrics::Timer::new("sqlite", "delete_endpoint");
        let done = sqlx::query("DELETE FROM endpoints WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .ctx("deleting an endpoint")?;
        self.cached_mut().remove_endpoint(id);
        Ok(done.rows_affected() > 0)
    }

    /// Records the container-side interface name once the kernel has chosen it.
    pub async fn set_endpoint_ifname(&self, id: &str, ifname: &str) -> Result<()> {
        sqlx::query("UPDATE endpoints SET ifname = ? WHERE id = ?")
            .bind(ifname)
            .bind(id)
            .execute(&self.pool)
            .await
            .ctx("updating an endpoint")?;
        self.cached_mut().endpoints.set_ifname(id, ifname);
        Ok(())
    }

    // ---- names (the embedded DNS server's records) ----

    /// The addresses a lowercase `name` stands for to `container` on the user-defined networks
    /// it is on (or only on the one named `network`); `None` if it is no name there.
    pub fn resolve_name(
        &self,
        container: &str,
        name: &str,
        network: Option<&str>,
    ) -> Option<Vec<IpAddr>> {
        self.cached().resolve_name(container, name, network)
    }

    /// The IDs of the user-defined networks `container` is on (or only the one named
    /// `network`).
    pub fn user_network_ids(&self, container: &str, network: Option<&str>) -> Vec<String> {
        self.cached().user_network_ids(container, network)
    }

    /// Whether a lowercase `name` is a container's name on any user-defined network.
    pub fn name_held_anywhere(&self, name: &str) -> bool {
        self.cached().name_held_anywhere(name)
    }

    /// `<container>.<network>` holding `ip` on a user-defined network `container` is on.
    pub fn reverse_name(&self, container: &str, ip: IpAddr) -> Option<String> {
        self.cached().reverse_name(container, ip)
    }

    /// Whether `container` has an endpoint on a user-defined network.
    pub fn on_user_network(&self, container: &str) -> bool {
        self.cached().on_user_network(container)
    }

    // ---- containers ----

    pub async fn insert_container(&self, c: &Container) -> Result<()> {
        let (dev, ino) = namespace_columns(c);
        sqlx::query(
            "INSERT INTO containers (id, name, kind, netns_path, ns_dev, ns_ino, created_nanos)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(&c.netns_path)
        .bind(dev)
        .bind(ino)
        .bind(c.created_nanos)
        .execute(&self.pool)
        .await
        .ctx("container")?;
        self.cached_mut().containers.insert(c.clone());
        Ok(())
    }

    /// Records where a container's namespace is reached now and what it is (a re-created
    /// sandbox namespace is a new one; a PID's path moves on when that process exits).
    pub async fn set_container_namespace(
        &self,
        id: &str,
        path: &str,
        namespace: NamespaceId,
    ) -> Result<()> {
        let Some(mut c) = self.cached().containers.by_id(id) else {
            return Ok(());
        };
        c.netns_path = path.to_string();
        c.namespace = namespace;
        let (dev, ino) = namespace_columns(&c);
        sqlx::query("UPDATE containers SET netns_path = ?, ns_dev = ?, ns_ino = ? WHERE id = ?")
            .bind(path)
            .bind(dev)
            .bind(ino)
            .bind(id)
            .execute(&self.pool)
            .await
            .ctx("updating a container")?;
        let mut tables = self.cached_mut();
        tables.containers.remove(id);
        tables.containers.insert(c);
        Ok(())
    }

    pub async fn delete_container(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM containers WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .ctx("deleting a container")?;
        self.cached_mut().containers.remove(id);
        Ok(done.rows_affected() > 0)
    }

    pub async fn container(&self, id: &str) -> Result<Option<Container>> {
        Ok(self.cached().containers.by_id(id))
    }

    /// The container whose ID is `term`, else the one named `term`: Docker's look-up order.
    pub async fn container_by_id_or_name(&self, term: &str) -> Result<Option<Container>> {
        let tables = self.cached();
        Ok(tables
            .containers
            .by_id(term)
            .or_else(|| tables.containers.by_name(term)))
    }

    /// The container that is namespace `namespace`, whatever reference recorded it.
    pub async fn container_by_namespace(
        &self,
        namespace: NamespaceId,
    ) -> Result<Option<Container>> {
        Ok(self.cached().containers.by_namespace(namespace))
    }

    pub async fn container_by_name(&self, name: &str) -> Result<Option<Container>> {
        Ok(self.cached().containers.by_name(name))
    }

    /// IDs starting with `prefix` (lowercase hex only; anything else matches nothing), at
    /// most 16.
    pub async fn container_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.cached().containers.ids_with_prefix(prefix, 16))
    }

    /// Every container, oldest first.
    pub async fn containers(&self) -> Result<Vec<Container>> {
        Ok(self.cached().containers.all())
    }
}

/// A container's identity as SQLite integers; NULL while unknown.
fn namespace_columns(c: &Container) -> (Option<i64>, Option<i64>) {
    if c.namespace == UNKNOWN_NAMESPACE {
        return (None, None);
    }
    // nsfs device and inode numbers fit; the cast is undone on reading.
    (Some(c.namespace.dev as i64), Some(c.namespace.ino as i64))
}

// Macros rather than consts so that a connect's first write can be one literal (concat!).
macro_rules! insert_journal {
    () => {
        "INSERT INTO journal (op, subject, detail, started_nanos) VALUES (?, ?, ?, ?)"
    };
}

macro_rules! insert_endpoint {
    () => {
        "INSERT INTO endpoints (id, network_id, container_id, host_ifname, ifname, mac, ipv4,
            ipv6, aliases, gw_priority, created_nanos, requested_ipv4, requested_ipv6,
            link_local_ips, links, driver_opts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    };
}

macro_rules! insert_event {
    () => {
        "INSERT INTO events (time_nanos, type, action, actor_id, attributes) VALUES (?, ?, ?, ?, ?)"
    };
}

const INSERT_JOURNAL: &str = insert_journal!();
const INSERT_EVENT: &str = insert_event!();
const FINISH_OP: &str = concat!("DELETE FROM journal WHERE id = ?; ", insert_event!());
const FINISH_CONNECT: &str = concat!(
    "UPDATE endpoints SET ifname = ?, ipv4 = COALESCE(?, ipv4) WHERE id = ?; ",
    "DELETE FROM journal WHERE id = ?; ",
    insert_event!()
);
const FINISH_DISCONNECT: &str = concat!(
    "DELETE FROM endpoints WHERE id = ?; DELETE FROM journal WHERE id = ?; ",
    insert_event!()
);
const DISCONNECT_KEEPING_OP: &str =
    concat!("DELETE FROM endpoints WHERE id = ?; ", insert_event!());
const BEGIN_CONNECT: &str = concat!(insert_journal!(), " RETURNING id; ", insert_endpoint!());

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds an event's values in the order of [`INSERT_EVENT`].
fn bind_event<'q>(query: Query<'q>, e: &'q crate::model::Event) -> Query<'q> {
    query
        .bind(e.time_nanos)
        .bind(&e.kind)
        .bind(&e.action)
        .bind(&e.actor_id)
        .bind(rows::to_json(&e.attributes))
}

/// Binds an endpoint's values in the order of `insert_endpoint!`.
fn bind_endpoint<'q>(query: Query<'q>, e: &'q Endpoint) -> Query<'q> {
    query
        .bind(&e.id)
        .bind(&e.network_id)
        .bind(&e.container_id)
        .bind(&e.host_ifname)
        .bind(&e.ifname)
        .bind(&e.mac)
        .bind(e.ipv4.map(|a| a.to_string()))
        .bind(e.ipv6.map(|a| a.to_string()))
        .bind(rows::to_json(&e.aliases))
        .bind(e.gw_priority)
        .bind(e.created_nanos)
        .bind(e.requested_ipv4.map(|a| a.to_string()))
        .bind(e.requested_ipv6.map(|a| a.to_string()))
        .bind(rows::to_json(&e.link_local_ips))
        .bind(rows::to_json(&e.links))
        .bind(rows::to_json(&e.driver_opts))
}

/// One unfinished operation, as recorded in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    pub id: i64,
    pub op: String,
    pub subject: String,
    pub detail: serde_json::Value,
    pub started_nanos: i64,
}

impl Store {
    /// Records an operation's intent; returns the entry to close with [`Store::end_op`].
    pub async fn begin_op(
        &self,
        op: &str,
        subject: &str,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        let _timer = crate::metrics::Timer::new("sqlite", "begin_op");
        let done = sqlx::query(INSERT_JOURNAL)
            .bind(op)
            .bind(subject)
            .bind(detail.to_string())
            .bind(crate::model::now_nanos())
            .execute(&self.pool)
            .await
            .ctx("journaling an operation")?;
        Ok(done.last_insert_rowid())
    }

    /// Closes an operation's journal entry and records its event, as one request.
    pub async fn finish_op(&self, id: i64, event: &crate::model::Event) -> Result<()> {
        let _timer = crate::metrics::Timer::new("sqlite", "finish_op");
        let done = bind_event(sqlx::query(FINISH_OP).bind(id), event)
            .execute(&self.pool)
            .await
            .ctx("closing a journal entry")?;
        self.trim_events(done.last_insert_rowid()).await
    }

    /// Records an operation's completion (or its rollback).
    pub async fn end_op(&self, id: i64) -> Result<()> {
        let _timer = crate::metrics::Timer::new("sqlite", "end_op");
        sqlx::query("DELETE FROM journal WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .ctx("closing a journal entry")?;
        Ok(())
    }

    /// Operations that were cut short, oldest first.
    pub async fn unfinished_ops(&self) -> Result<Vec<JournalEntry>> {
        let rows = sqlx::query("SELECT * FROM journal ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .ctx("reading the journal")?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail").ctx("reading the journal")?;
                Ok(JournalEntry {
                    id: r.try_get("id").ctx("reading the journal")?,
                    op: r.try_get("op").ctx("reading the journal")?,
                    subject: r.try_get("subject").ctx("reading the journal")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                    started_nanos: r.try_get("started_nanos").ctx("reading the journal")?,
                })
            })
            .collect()
    }
}

/// How many events the store keeps.
pub const EVENTS_KEPT: i64 = 10_000;

impl Store {
    /// Records an event, dropping the oldest beyond [`EVENTS_KEPT`]. Returns its sequence number.
    pub async fn insert_event(&self, e: &crate::model::Event) -> Result<i64> {
        let done = bind_event(sqlx::query(INSERT_EVENT), e)
            .execute(&self.pool)
            .await
            .ctx("recording an event")?;
        let id = done.last_insert_rowid();
        self.trim_events(id).await?;
        Ok(id)
    }

    /// Every hundredth event drops those beyond [`EVENTS_KEPT`].
    async fn trim_events(&self, newest: i64) -> Result<()> {
        if newest % 100 == 0 {
            sqlx::query("DELETE FROM events WHERE id <= ?")
                .bind(newest - EVENTS_KEPT)
                .execute(&self.pool)
                .await
                .ctx("dropping old events")?;
        }
        Ok(())
    }

    /// Events with `since <= time <= until`, oldest first.
    pub async fn events_between(
        &self,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, crate::model::Event)>> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE time_nanos >= ? AND time_nanos <= ? ORDER BY id LIMIT ?",
        )
        .bind(since)
        .bind(until)
        .bind(EVENTS_KEPT)
        .fetch_all(&self.pool)
        .await
        .ctx("reading events")?;
        rows.iter()
            .map(|r| {
                let attributes: String = r.try_get("attributes").ctx("reading events")?;
                Ok((
                    r.try_get("id").ctx("reading events")?,
                    crate::model::Event {
                        time_nanos: r.try_get("time_nanos").ctx("reading events")?,
                        kind: r.try_get("type").ctx("reading events")?,
                        action: r.try_get("action").ctx("reading events")?,
                        actor_id: r.try_get("actor_id").ctx("reading events")?,
                        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                    },
                ))
            })
            .collect()
    }
}

/// Every network with its IPAM, in two queries whatever the count: what the in-memory copy
/// starts from.
async fn load_networks(pool: &SqlitePool) -> Result<Vec<Network>> {
    let rows = sqlx::query("SELECT * FROM networks ORDER BY name")
        .fetch_all(pool)
        .await
        .ctx("listing networks")?;
    let subnet_rows = sqlx::query("SELECT * FROM subnets ORDER BY network_id, family")
        .fetch_all(pool)
        .await
        .ctx("listing subnets")?;
    let mut by_network: HashMap<String, Vec<crate::ipam::NetworkConfig>> = HashMap::new();
    for row in &subnet_rows {
        let (id, cfg) = rows::subnet(row)?;
        by_network.entry(id).or_default().push(cfg);
    }
    rows.iter()
        .map(|row| {
            let mut n = rows::network(row)?;
            n.ipam = by_network.remove(&n.id).unwrap_or_default();
            Ok(n)
        })
        .collect()
}

async fn load_containers(pool: &SqlitePool) -> Result<cache::Containers> {
    let rows = sqlx::query("SELECT * FROM containers")
        .fetch_all(pool)
        .await
        .ctx("listing containers")?;
    let mut containers = cache::Containers::default();
    for row in &rows {
        containers.insert(rows::container(row)?);
    }
    Ok(containers)
}

async fn load_endpoints(pool: &SqlitePool) -> Result<cache::Endpoints> {
    let rows = sqlx::query("SELECT * FROM endpoints")
        .fetch_all(pool)
        .await
        .ctx("listing endpoints")?;
    let mut endpoints = cache::Endpoints::default();
    for row in &rows {
        endpoints.insert(rows::endpoint(row)?);
    }
    Ok(endpoints)
}
