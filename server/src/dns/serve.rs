//! Serving one container's resolver sockets from the daemon's runtime. Work per message is
//! bounded: UDP datagrams are read and answered in batches (one system call each way), each
//! decided at once or handed to a forward task (refused when too many are in flight); TCP clients are counted, and each must send a query within
//! [`forward::TCP_IDLE`], at most [`QUERIES_PER_CONNECTION`] per connection.

use std::os::fd::AsFd;
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::answer::{self, Asker, Verdict};
use super::{Shared, forward};
use crate::kernel::{Inbox, Outbox, ResolverSockets};

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
        if let Err(e) = socket.readable().await {
            tracing::trace!(error = %e, "resolver UDP readiness");
            tokio::time::sleep(ERROR_PAUSE).await;
            continue;
        }
        let received = BOXES.with(|boxes| -> std::io::Result<()> {
            let (inbox, outbox) = &mut *boxes.borrow_mut();
            socket.try_io(Interest::READABLE, || inbox.receive(socket.as_fd()))?;
            answer_batch(&socket, &shared, &container, inbox, outbox);
            outbox.send(socket.as_fd());
            Ok(())
        });
        match received {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                // ICMP errors for earlier replies surface here; they concern no one now. A
                // lasting error must not spin.
                tracing::trace!(error = %e, "resolver UDP receive");
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

/// Answers what `inbox` holds into `outbox`; queries for upstream servers go to tasks of
/// their own, which answer later.
fn answer_batch(
    socket: &Arc<UdpSocket>,
    shared: &Shared,
    container: &Arc<str>,
    inbox: &Inbox,
    outbox: &mut Outbox,
) {
    let resolv = shared.resolv();
    let asker = Asker {
        names: &shared.names,
        container,
        search: &resolv.host.search,
    };
    for (query, peer) in inbox.datagrams() {
        match answer::decide(&asker, query, true) {
            Verdict::Reply(bytes) => outbox.push(peer, |out| out.extend_from_slice(&bytes)),
            Verdict::Drop => {}
            Verdict::Forward(request) => {
                let Ok(permit) = shared.forwards.clone().try_acquire_owned() else {
                    let refusal = answer::servfail(&request);
                    outbox.push(peer, |out| out.extend_from_slice(&refusal));
                    continue;
                };
                let Some(peer) = peer.socket_addr() else {
                    continue;
                };
                let (socket, query) = (socket.clone(), query.to_vec());
                let upstreams = shared.upstreams(container, &resolv);
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
    /// The batch buffers, one pair per worker thread rather than one per container
    /// (thousands of idle resolvers would otherwise hold them each).
    static BOXES: std::cell::RefCell<(Inbox, Outbox)> =
        std::cell::RefCell::new((Inbox::new(UDP_BUFFER), Outbox::default()));
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
