//! Rows of published ports (`published_port`): written at a container's start, deleted at
//! its stop; few, read straight from SQLite.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Context, Result, Store};
use crate::model::PublishedPort;

impl Store {
    /// Records a container's ports, all or none (one transaction).
    pub async fn insert_published_ports(&self, ports: &[PublishedPort]) -> Result<()> {
        const CTX: &str = "recording published ports";
        let mut tx = self.pool.begin().await.ctx(CTX)?;
        for p in ports {
            sqlx::query(
                "INSERT INTO published_port (container_id, proto, host_ip, host_port, container_port)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&p.container_id)
            .bind(&p.proto)
            .bind(p.host_ip.to_string())
            .bind(i64::from(p.host_port))
            .bind(i64::from(p.container_port))
            .execute(&mut *tx)
            .await
            .ctx(CTX)?;
        }
        tx.commit().await.ctx(CTX)?;
        Ok(())
    }

    pub async fn delete_published_ports(&self, container_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM published_port WHERE container_id = ?")
            .bind(container_id)
            .execute(&self.pool)
            .await
            .ctx("deleting published ports")?;
        Ok(())
    }

    /// A container's ports, in host port order.
    pub async fn published_ports(&self, container_id: &str) -> Result<Vec<PublishedPort>> {
        let rows = sqlx::query(
            "SELECT * FROM published_port WHERE container_id = ?
             ORDER BY container_port, proto, host_ip, host_port",
        )
        .bind(container_id)
        .fetch_all(&self.pool)
        .await
        .ctx("reading published ports")?;
        rows.iter().map(port_row).collect()
    }

    /// Every published port.
    pub async fn all_published_ports(&self) -> Result<Vec<PublishedPort>> {
        let rows = sqlx::query("SELECT * FROM published_port ORDER BY container_id")
            .fetch_all(&self.pool)
            .await
            .ctx("reading published ports")?;
        rows.iter().map(port_row).collect()
    }
}

fn port_row(r: &SqliteRow) -> Result<PublishedPort> {
    const CTX: &str = "reading published ports";
    let host_ip: String = r.try_get("host_ip").ctx(CTX)?;
    let host_port: i64 = r.try_get("host_port").ctx(CTX)?;
    let container_port: i64 = r.try_get("container_port").ctx(CTX)?;
    Ok(PublishedPort {
        container_id: r.try_get("container_id").ctx(CTX)?,
        proto: r.try_get("proto").ctx(CTX)?,
        host_ip: host_ip
            .parse()
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        host_port: u16::try_from(host_port).unwrap_or_default(),
        container_port: u16::try_from(container_port).unwrap_or_default(),
    })
}
