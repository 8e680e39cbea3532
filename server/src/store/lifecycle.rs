//! Rows of containers made with Docker's create body (`container_lifecycle`). Read straight
//! from SQLite: they are few and read only by the container routes.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Context, Result, Store};
use crate::model::{Lifecycle, PlannedEndpoint, RunState};

impl Store {
    pub async fn insert_lifecycle(&self, l: &Lifecycle) -> Result<()> {
        sqlx::query(
            "INSERT INTO container_lifecycle
                 (container_id, body, network_mode, networks, state, started_nanos, finished_nanos, exit_code)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&l.container_id)
        .bind(l.body.to_string())
        .bind(&l.network_mode)
        .bind(networks_json(&l.networks))
        .bind(l.state.as_str())
        .bind(l.started_nanos)
        .bind(l.finished_nanos)
        .bind(l.exit_code)
        .execute(&self.pool)
        .await
        .ctx("recording a container's configuration")?;
        Ok(())
    }

    pub async fn lifecycle(&self, container_id: &str) -> Result<Option<Lifecycle>> {
        let row = sqlx::query("SELECT * FROM container_lifecycle WHERE container_id = ?")
            .bind(container_id)
            .fetch_optional(&self.pool)
            .await
            .ctx("reading a container's configuration")?;
        row.map(|r| lifecycle_row(&r)).transpose()
    }

    /// Every recorded configuration.
    pub async fn lifecycles(&self) -> Result<Vec<Lifecycle>> {
        let rows = sqlx::query("SELECT * FROM container_lifecycle")
            .fetch_all(&self.pool)
            .await
            .ctx("reading containers' configurations")?;
        rows.iter().map(lifecycle_row).collect()
    }

    /// Records a start (`Running`, `started_nanos`) or a stop (`Exited`, `finished_nanos`,
    /// `exit_code`); `None` times keep what was there.
    pub async fn set_run_state(
        &self,
        container_id: &str,
        state: RunState,
        started_nanos: Option<i64>,
        finished_nanos: Option<i64>,
        exit_code: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE container_lifecycle SET state = ?,
                 started_nanos = COALESCE(?, started_nanos),
                 finished_nanos = COALESCE(?, finished_nanos), exit_code = ?
             WHERE container_id = ?",
        )
        .bind(state.as_str())
        .bind(started_nanos)
        .bind(finished_nanos)
        .bind(exit_code)
        .bind(container_id)
        .execute(&self.pool)
        .await
        .ctx("recording a container's state")?;
        Ok(())
    }

    /// The networks a container joins at start (`docker network connect` and `disconnect`
    /// change them as on Docker).
    pub async fn set_planned_networks(
        &self,
        container_id: &str,
        networks: &[PlannedEndpoint],
    ) -> Result<()> {
        sqlx::query("UPDATE container_lifecycle SET networks = ? WHERE container_id = ?")
            .bind(networks_json(networks))
            .bind(container_id)
            .execute(&self.pool)
            .await
            .ctx("recording a container's networks")?;
        Ok(())
    }
}

fn networks_json(networks: &[PlannedEndpoint]) -> String {
    serde_json::to_string(networks).unwrap_or_else(|_| "[]".to_string())
}

fn lifecycle_row(r: &SqliteRow) -> Result<Lifecycle> {
    const CTX: &str = "reading a container's configuration";
    let body: String = r.try_get("body").ctx(CTX)?;
    let networks: String = r.try_get("networks").ctx(CTX)?;
    let state: String = r.try_get("state").ctx(CTX)?;
    Ok(Lifecycle {
        container_id: r.try_get("container_id").ctx(CTX)?,
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        network_mode: r.try_get("network_mode").ctx(CTX)?,
        networks: serde_json::from_str(&networks).unwrap_or_default(),
        state: RunState::parse(&state).unwrap_or(RunState::Exited),
        started_nanos: r.try_get("started_nanos").ctx(CTX)?,
        finished_nanos: r.try_get("finished_nanos").ctx(CTX)?,
        exit_code: r.try_get("exit_code").ctx(CTX)?,
    })
}
