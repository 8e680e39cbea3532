//! Row ↔ domain mapping. JSON columns hold maps and lists; addresses are stored as text.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Context, Result, StoreError};
use crate::ipam::{Cidr, NetworkConfig};
use crate::kernel::NamespaceId;
use crate::model::{Container, ContainerKind, Endpoint, Network, UNKNOWN_NAMESPACE};

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

pub(super) fn aux_to_json(aux: &BTreeMap<String, IpAddr>) -> String {
    let text: BTreeMap<&String, String> = aux.iter().map(|(k, v)| (k, v.to_string())).collect();
    to_json(&text)
}

fn from_json<T: serde::de::DeserializeOwned>(table: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        detail: format!("{e}: {text}"),
    })
}

pub(super) fn parse_ip(table: &'static str, text: &str) -> Result<IpAddr> {
    IpAddr::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        detail: format!("{e}: {text}"),
    })
}

fn parse_cidr(text: &str) -> Result<Cidr> {
    Cidr::from_str(text).map_err(|e| StoreError::Corrupt {
        table: "subnets",
        detail: e.to_string(),
    })
}

fn get<'r, T>(row: &'r SqliteRow, col: &'static str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(col).ctx(col)
}

pub(super) fn network(row: &SqliteRow) -> Result<Network> {
    Ok(Network {
        id: get(row, "id")?,
        name: get(row, "name")?,
        driver: get(row, "driver")?,
        scope: get(row, "scope")?,
        created_nanos: get(row, "created_nanos")?,
        enable_ipv4: get(row, "enable_ipv4")?,
        enable_ipv6: get(row, "enable_ipv6")?,
        internal: get(row, "internal")?,
        attachable: get(row, "attachable")?,
        ingress: get(row, "ingress")?,
        config_only: get(row, "config_only")?,
        config_from: get(row, "config_from")?,
        builtin: get(row, "builtin")?,
        link: get(row, "link")?,
        driver_state: from_json("networks", &get::<String>(row, "driver_state")?)?,
        options: from_json("networks", &get::<String>(row, "options")?)?,
        labels: from_json("networks", &get::<String>(row, "labels")?)?,
        ipam_driver: get(row, "ipam_driver")?,
        ipam_options: from_json("networks", &get::<String>(row, "ipam_options")?)?,
        ipam: Vec::new(),
    })
}

pub(super) fn subnet(row: &SqliteRow) -> Result<(String, NetworkConfig)> {
    let ip_range: Option<String> = get(row, "ip_range")?;
    let aux: BTreeMap<String, String> = from_json("subnets", &get::<String>(row, "aux")?)?;
    let aux = aux
        .into_iter()
        .map(|(k, v)| Ok((k, parse_ip("subnets", &v)?)))
        .collect::<Result<_>>()?;
    Ok((
        get(row, "network_id")?,
        NetworkConfig {
            subnet: parse_cidr(&get::<String>(row, "subnet")?)?,
            ip_range: ip_range.as_deref().map(parse_cidr).transpose()?,
            gateway: parse_ip("subnets", &get::<String>(row, "gateway")?)?,
            aux,
        },
    ))
}

pub(super) fn endpoint(row: &SqliteRow) -> Result<Endpoint> {
    let ipv4: Option<String> = get(row, "ipv4")?;
    let ipv6: Option<String> = get(row, "ipv6")?;
    let requested_ipv4: Option<String> = get(row, "requested_ipv4")?;
    let requested_ipv6: Option<String> = get(row, "requested_ipv6")?;
    Ok(Endpoint {
        id: get(row, "id")?,
        network_id: get(row, "network_id")?,
        container_id: get(row, "container_id")?,
        host_ifname: get(row, "host_ifname")?,
        ifname: get(row, "ifname")?,
        mac: get(row, "mac")?,
        ipv4: ipv4
            .as_deref()
            .map(|t| parse_ip("endpoints", t))
            .transpose()?,
        ipv6: ipv6
            .as_deref()
            .map(|t| parse_ip("endpoints", t))
            .transpose()?,
        aliases: from_json("endpoints", &get::<String>(row, "aliases")?)?,
        gw_priority: get(row, "gw_priority")?,
        created_nanos: get(row, "created_nanos")?,
        requested_ipv4: requested_ipv4
            .as_deref()
            .map(|t| parse_ip("endpoints", t))
            .transpose()?,
        requested_ipv6: requested_ipv6
            .as_deref()
            .map(|t| parse_ip("endpoints", t))
            .transpose()?,
        link_local_ips: from_json("endpoints", &get::<String>(row, "link_local_ips")?)?,
        links: from_json("endpoints", &get::<String>(row, "links")?)?,
        driver_opts: from_json("endpoints", &get::<String>(row, "driver_opts")?)?,
    })
}

pub(super) fn container(row: &SqliteRow) -> Result<Container> {
    let kind: String = get(row, "kind")?;
    Ok(Container {
        id: get(row, "id")?,
        name: get(row, "name")?,
        kind: ContainerKind::parse(&kind).ok_or(StoreError::Corrupt {
            table: "containers",
            detail: format!("unknown kind {kind}"),
        })?,
        netns_path: get(row, "netns_path")?,
        namespace: {
            let dev: Option<i64> = get(row, "ns_dev")?;
            let ino: Option<i64> = get(row, "ns_ino")?;
            match (dev, ino) {
                // Stored as SQLite's signed integers; the cast back is lossless.
                (Some(dev), Some(ino)) => NamespaceId {
                    dev: dev as u64,
                    ino: ino as u64,
                },
                _ => UNKNOWN_NAMESPACE,
            }
        },
        created_nanos: get(row, "created_nanos")?,
    })
}
