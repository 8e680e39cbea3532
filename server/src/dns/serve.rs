//! Serving one container's resolver sockets from the daemon's runtime. Work per message is
//! bounded: a UDP datagram is decided at once or handed to a forward task (refused when too
//! many are in flight); TCP clients are counted, and each must send a query within
//! [`forward::TCP_IDLE`], at most [`QUERIES_PER_CONNECTION`] per connection.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::answer::{self, Asker, Verdict};
use super::{Shared, forward};
use crate::kernel::ResolverSockets;

/// Queries one TCP connection may carry before it is closed.
const QUERIES_PER_CONNECTION: usize = 128;
/// Pause after a socket error, so a lasting one costs no CPU.
const ERROR_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);
/// Largest UDP query read (EDNS clients may send more than 512 bytes).
const UDP_BUFFER: usize = 4096;

/// A container's resolver: its tasks stop, and its sockets close, when this is dropped.
pub struct Listener {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Listener {
    /// Serves `sockets` (already bound in the container's namespace) for `container`.
    pub fn start(
        sockets: ResolverSockets,
        shared: Arc<Shared>,
        container: &str,
    ) -> std::io::Result<Listener> {
        let udp = Arc::new(UdpSocket::from_std(sockets.udp)?);
        let tcp = TcpListener::from_std(sockets.tcp)?;
        let container: Arc<str> = Arc::from(container);
        Ok(Listener {
            tasks: vec![
                tokio::spawn(serve_udp(udp, shared.clone(), container.clone())),
                tokio::spawn(serve_tcp(tcp, shared, container)),
            ],
        })
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>, container: Arc<str>) {
    loop {
        let (query, peer) = match receive(&socket).await {
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                // ICMP errors for earlier replies surface here; they concern no one now. A
                // lasting error must not spin.
                tracing::trace!(error = %e, "resolver UDP receive");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let query = &query[..];
        let resolv = shared.resolv();
        let asker = Asker {
            names: &shared.names,
            container: &container,
            search: &resolv.host.search,
        };
        match answer::decide(&asker, query, true) {
            Verdict::Reply(bytes) => {
                let _ = socket.send_to(&bytes, peer).await;
            }
            Verdict::Drop => {}
            Verdict::Forward(request) => {
                let Ok(permit) = shared.forwards.clone().try_acquire_owned() else {
                    let _ = socket.send_to(&answer::servfail(&request), peer).await;
                    continue;
                };
                let (socket, query) = (socket.clone(), query.to_vec());
                let upstreams = shared.upstreams(&container, &resolv);
                tokio::spawn(async move {
                    let reply = forward::forward(&upstreams, &query, false)
                        .await
                        .unwrap_or_else(|| answer::servfail(&request));
                    let _ = socket.send_to(&reply, peer).await;
                    drop(permit);
                });
            }
        }
    }
}

thread_local! {
    /// The receive buffer, one per worker thread rather than one per container (thousands
    /// of idle resolvers would otherwise hold 4 KiB each).
    static RECEIVE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; UDP_BUFFER]);
}

/// The next datagram, copied out of the thread's buffer at its own length.
async fn receive(socket: &UdpSocket) -> std::io::Result<(Vec<u8>, std::net::SocketAddr)> {
    socket.readable().await?;
    RECEIVE.with(|buf| {
        let mut buf = buf.borrow_mut();
        let (n, peer) = socket.try_recv_from(&mut buf)?;
        Ok((buf[..n].to_vec(), peer))
    })
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>, container: Arc<str>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait rather than spin.
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        };
        // Over the limit: the connection is closed at once rather than queued.
        let Ok(permit) = shared.tcp_clients.clone().try_acquire_owned() else {
            continue;
        };
        let (shared, container) = (shared.clone(), container.clone());
        tokio::spawn(async move {
            serve_connection(stream, &shared, &container).await;
            drop(permit);
        });
    }
}

async fn serve_connection(mut stream: TcpStream, shared: &Shared, container: &str) {
    let _ = stream.set_nodelay(true);
    for _ in 0..QUERIES_PER_CONNECTION {
        let Ok(query) = forward::read_framed_in_time(&mut stream).await else {
            return;
        };
        let resolv = shared.resolv();
        let asker = Asker {
            names: &shared.names,
            container,
            search: &resolv.host.search,
        };
        let reply = match answer::decide(&asker, &query, false) {
            Verdict::Reply(bytes) => bytes,
            Verdict::Drop => return,
            Verdict::Forward(request) => {
                let Ok(_permit) = shared.forwards.try_acquire() else {
                    return;
                };
                forward::forward(&shared.upstreams(container, &resolv), &query, true)
                    .await
                    .unwrap_or_else(|| answer::servfail(&request))
            }
        };
        // A client that does not read its answers is cut off, not waited for.
        let written = tokio::time::timeout(
            forward::TCP_IDLE,
            forward::write_framed(&mut stream, &reply),
        )
        .await;
        if !matches!(written, Ok(Ok(()))) {
            return;
        }
    }
}
