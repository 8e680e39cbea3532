//! Forwarding to the upstream servers, from the daemon's own namespace: the query as the
//! client sent it under a fresh random ID, over the transport the client used (so a
//! truncated UDP answer makes the client retry over TCP, and that is forwarded over TCP).
//! Every wait is bounded: an upstream that does not answer costs at most [`PER_UPSTREAM`],
//! and all of them together at most [`BUDGET`], then the client gets SERVFAIL.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout, timeout_at};

/// How long one upstream server gets to answer.
pub const PER_UPSTREAM: Duration = Duration::from_millis(2000);
/// How long a forwarded query may take in all, whatever the number of servers.
pub const BUDGET: Duration = Duration::from_millis(4000);

/// Largest UDP answer accepted from upstream (EDNS allows up to 64 KiB, rarely used).
const UDP_BUFFER: usize = 4096;

/// Sends `query` (wire bytes) to each upstream in turn until one answers; returns the answer
/// with the client's ID back in place, or `None` if none answered in time.
pub async fn forward(upstreams: &[SocketAddr], query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let client_id = [query[0], query[1]];
    let deadline = Instant::now() + BUDGET;
    for upstream in upstreams {
        let id: u16 = rand::random();
        let mut ours = query.to_vec();
        ours[..2].copy_from_slice(&id.to_be_bytes());
        let turn = (Instant::now() + PER_UPSTREAM).min(deadline);
        let answer = if tcp {
            timeout_at(turn, over_tcp(*upstream, &ours, id)).await
        } else {
            timeout_at(turn, over_udp(*upstream, &ours, id)).await
        };
        match answer {
            Ok(Ok(mut bytes)) => {
                bytes[..2].copy_from_slice(&client_id);
                return Some(bytes);
            }
            Ok(Err(e)) => tracing::debug!(%upstream, error = %e, "upstream failed"),
            Err(_) => tracing::debug!(%upstream, "upstream did not answer in time"),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    None
}

/// Whether `bytes` is the answer to our query `id`.
fn answers(bytes: &[u8], id: u16) -> bool {
    bytes.len() >= 12 && bytes[..2] == id.to_be_bytes() && bytes[2] & 0x80 != 0
}

async fn over_udp(upstream: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    // A fresh socket on a random port per query: an off-path forger must guess port and ID.
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let n = socket.recv(&mut buf).await?;
        if answers(&buf[..n], id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn over_tcp(upstream: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    write_framed(&mut stream, query).await?;
    let answer = read_framed(&mut stream).await?;
    if answers(&answer, id) {
        Ok(answer)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an answer to the query",
        ))
    }
}

/// Reads one length-prefixed DNS message (RFC 1035 4.2.2); at most 64 KiB by construction.
pub async fn read_framed<R: AsyncReadExt + Unpin>(stream: &mut R) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes one length-prefixed DNS message.
pub async fn write_framed<W: AsyncWriteExt + Unpin>(
    stream: &mut W,
    message: &[u8],
) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "DNS message over 64 KiB")
    })?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// How long a TCP client may stay idle between queries, or take to send one.
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// [`read_framed`] within [`TCP_IDLE`].
pub async fn read_framed_in_time<R: AsyncReadExt + Unpin>(
    stream: &mut R,
) -> std::io::Result<Vec<u8>> {
    timeout(TCP_IDLE, read_framed(stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))?
}
