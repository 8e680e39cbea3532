//! `netbridge login-url`: asks the running daemon, over its Unix socket (whose permissions are
//! the authentication), for a one-time dashboard login URL.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("cannot reach the daemon at {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("the daemon answered {status}: {message}")]
    Refused { status: String, message: String },
    #[error("the daemon's answer was not understood: {0}")]
    Garbled(String),
}

/// The URL, e.g. `http://127.0.0.1:2375/ui/login?code=…`.
pub async fn login_url(socket: &Path) -> Result<String, LoginError> {
    let connect = |source| LoginError::Connect {
        path: socket.display().to_string(),
        source,
    };
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(connect)?;
    stream
        .write_all(
            b"POST /netbridge/login-code HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .map_err(connect)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(connect)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| LoginError::Garbled(text.to_string()))?;
    let status = head.split(' ').nth(1).unwrap_or_default().to_string();
    let json: serde_json::Value =
        serde_json::from_str(body.trim()).map_err(|e| LoginError::Garbled(e.to_string()))?;
    if status != "201" {
        return Err(LoginError::Refused {
            status,
            message: json["message"].as_str().unwrap_or_default().to_string(),
        });
    }
    json["Url"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| LoginError::Garbled(body.to_string()))
}
