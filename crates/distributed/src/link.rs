//! The inter-node transport: a star all-reduce of f32 buffers over TCP through node 0 (the
//! coordinator). **A fallback**, used because burn-collective 0.21's global (multi-node)
//! all-reduce completes only once per registration: its `SyncService::sync` clears a copy of
//! the list of synced peers instead of the list (`global/node/sync.rs`, lines 71–79), so the
//! second global all-reduce waits forever (reproduced by `examples/burn_global_repro.rs`;
//! see `docs/distributed.md`). Within a node, replicas still sum through burn-collective.
//!
//! Protocol (all integers little-endian): a frame is `magic u32 | kind u8 | seq u64 | len u64`
//! followed by `len` payload bytes. Members connect to the coordinator and send `HELLO`
//! (`node, nodes, devices` as u64); node 0 answers `WELCOME` once all have joined, or `ERROR`.
//! For all-reduce `seq`, each member sends `DATA` (f32 values); node 0 sums in node order
//! (deterministic), and sends the sum back to everyone. Any failure (EOF, reset, timeout,
//! mismatched sequence or length) is reported by node 0 to the surviving members as an
//! `ERROR` frame listing the lost nodes (JSON), so every survivor names them too.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const MAGIC: u32 = 0x524c_4450; // "RLDP"
const HELLO: u8 = 1;
const WELCOME: u8 = 2;
const DATA: u8 = 3;
const ERROR: u8 = 4;
const HEADER: usize = 4 + 1 + 8 + 8;

/// Why a link operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// These nodes stopped answering (with the address they connected from and why).
    Lost(Vec<(usize, String, String)>),
    /// Node 0 reported these nodes lost.
    Remote(Vec<(usize, String, String)>),
    /// A protocol or configuration mismatch.
    Protocol(String),
    /// Node 0 cannot listen on the coordinator port.
    Bind(String),
}

struct Frame {
    kind: u8,
    seq: u64,
    payload: Vec<u8>,
}

#[cfg(not(target_endian = "little"))]
compile_error!("the inter-node link sends f32 values in native byte order: little-endian only");

fn write_frame(s: &mut TcpStream, kind: u8, seq: u64, payload: &[u8]) -> std::io::Result<()> {
    let mut head = [0u8; HEADER];
    head[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    head[4] = kind;
    head[5..13].copy_from_slice(&seq.to_le_bytes());
    head[13..21].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    s.write_all(&head)?;
    s.write_all(payload)?;
    s.flush()
}

/// Reads a frame header: `(kind, seq, payload length)`.
fn read_head(s: &mut TcpStream, max_len: usize) -> std::io::Result<(u8, u64, usize)> {
    let mut head = [0u8; HEADER];
    s.read_exact(&mut head)?;
    let magic = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes"));
    if magic != MAGIC {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "not an rlhf-distributed peer (bad magic)",
        ));
    }
    let len = u64::from_le_bytes(head[13..21].try_into().expect("8 bytes")) as usize;
    if len > max_len {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("frame of {len} bytes, at most {max_len} expected"),
        ));
    }
    let seq = u64::from_le_bytes(head[5..13].try_into().expect("8 bytes"));
    Ok((head[4], seq, len))
}

fn read_frame(s: &mut TcpStream, max_len: usize) -> std::io::Result<Frame> {
    let (kind, seq, len) = read_head(s, max_len)?;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok(Frame { kind, seq, payload })
}

/// What arrived where an all-reduce's `DATA` frame of `n` values was expected.
enum Received {
    Data(Vec<f32>),
    Other(Frame),
}

/// Reads a frame; a `DATA` frame of sequence `seq` and `n` values is read straight into f32s.
fn read_values(s: &mut TcpStream, seq: u64, n: usize) -> std::io::Result<Received> {
    let (kind, fseq, len) = read_head(s, MAX_FRAME)?;
    if kind == DATA && fseq == seq && len == 4 * n {
        let mut v = vec![0f32; n];
        s.read_exact(bytemuck::cast_slice_mut(&mut v))?;
        return Ok(Received::Data(v));
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload)?;
    Ok(Received::Other(Frame {
        kind,
        seq: fseq,
        payload,
    }))
}

fn describe(e: &std::io::Error, timeout: Duration) -> String {
    match e.kind() {
        ErrorKind::UnexpectedEof => "connection closed (process exited?)".into(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => {
            format!("connection lost ({e})")
        }
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("no answer within {timeout:?}"),
        _ => e.to_string(),
    }
}

fn u64s(v: &[u64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn read_u64s(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

enum Role {
    /// Node 0: one stream per member, indexed by node rank (`None` for itself).
    Root(Vec<Option<(TcpStream, SocketAddr)>>),
    /// Another node: the stream to node 0.
    Member(TcpStream, String),
}

/// One node's end of the star.
pub(crate) struct Link {
    role: Role,
    nodes: usize,
    timeout: Duration,
    seq: u64,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("nodes", &self.nodes)
            .field("seq", &self.seq)
            .finish()
    }
}

/// Largest frame accepted (1 GiB of f32 values).
const MAX_FRAME: usize = 1 << 30;

impl Link {
    /// Node 0: listens on `port` (all interfaces) and waits for the `nodes − 1` members
    /// within `rendezvous`.
    pub(crate) fn host(
        port: u16,
        nodes: usize,
        devices: usize,
        timeout: Duration,
        rendezvous: Duration,
    ) -> Result<Self, LinkError> {
        let listener =
            TcpListener::bind(("0.0.0.0", port)).map_err(|e| LinkError::Bind(e.to_string()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        let mut peers: Vec<Option<(TcpStream, SocketAddr)>> = (0..nodes).map(|_| None).collect();
        let start = Instant::now();
        let mut joined = 1;
        while joined < nodes {
            match listener.accept() {
                Ok((mut s, addr)) => {
                    s.set_nonblocking(false)
                        .and_then(|_| s.set_nodelay(true))
                        .and_then(|_| s.set_read_timeout(Some(rendezvous)))
                        .map_err(|e| LinkError::Protocol(e.to_string()))?;
                    let hello = match read_frame(&mut s, 64) {
                        Ok(f) if f.kind == HELLO && f.payload.len() == 24 => read_u64s(&f.payload),
                        _ => {
                            tracing::warn!(%addr, "ignoring a connection that is not a node");
                            continue;
                        }
                    };
                    let (node, n, d) = (hello[0] as usize, hello[1] as usize, hello[2] as usize);
                    let problem = if n != nodes || d != devices {
                        Some(format!(
                            "node {node} at {addr} was started with --nodes {n} and {d} \
                             device(s), node 0 with --nodes {nodes} and {devices}"
                        ))
                    } else if node == 0 || node >= nodes {
                        Some(format!("node rank {node} from {addr} is out of 1..{nodes}"))
                    } else if peers[node].is_some() {
                        Some(format!("node rank {node} joined twice (again from {addr})"))
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        let _ = write_frame(&mut s, ERROR, 0, p.as_bytes());
                        return Err(LinkError::Protocol(p));
                    }
                    peers[node] = Some((s, addr));
                    joined += 1;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if start.elapsed() > rendezvous {
                        let missing: Vec<String> = (1..nodes)
                            .filter(|&k| peers[k].is_none())
                            .map(|k| k.to_string())
                            .collect();
                        return Err(LinkError::Protocol(format!(
                            "node(s) {} did not join within {rendezvous:?}",
                            missing.join(", ")
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(LinkError::Protocol(format!("accept: {e}"))),
            }
        }
        for (s, _) in peers.iter_mut().flatten() {
            write_frame(s, WELCOME, 0, &[]).map_err(|e| LinkError::Protocol(e.to_string()))?;
            s.set_read_timeout(Some(timeout))
                .and_then(|_| s.set_write_timeout(Some(timeout)))
                .map_err(|e| LinkError::Protocol(e.to_string()))?;
        }
        Ok(Link {
            role: Role::Root(peers),
            nodes,
            timeout,
            seq: 0,
        })
    }

    /// Another node: connects to `coordinator` (`retries` attempts `pause` apart), says hello
    /// and waits for node 0's welcome within `rendezvous`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn join(
        coordinator: SocketAddr,
        node: usize,
        nodes: usize,
        devices: usize,
        timeout: Duration,
        rendezvous: Duration,
        retries: u32,
        pause: Duration,
    ) -> Result<Self, LinkError> {
        let mut last = String::new();
        let mut stream = None;
        for i in 0..retries.max(1) {
            match TcpStream::connect_timeout(&coordinator, pause.max(Duration::from_millis(100))) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
            if i + 1 < retries {
                std::thread::sleep(pause);
            }
        }
        let mut s = stream.ok_or_else(|| {
            LinkError::Lost(vec![(
                0,
                coordinator.to_string(),
                format!("unreachable: {last}"),
            )])
        })?;
        let io = |e: std::io::Error| LinkError::Protocol(e.to_string());
        s.set_nodelay(true).map_err(io)?;
        s.set_read_timeout(Some(rendezvous)).map_err(io)?;
        write_frame(
            &mut s,
            HELLO,
            0,
            &u64s(&[node as u64, nodes as u64, devices as u64]),
        )
        .map_err(io)?;
        match read_frame(&mut s, 4096) {
            Ok(f) if f.kind == WELCOME => {}
            Ok(f) if f.kind == ERROR => {
                return Err(LinkError::Protocol(format!(
                    "node 0 refused this node: {}",
                    String::from_utf8_lossy(&f.payload)
                )));
            }
            Ok(_) => return Err(LinkError::Protocol("unexpected answer to hello".into())),
            Err(e) => {
                return Err(LinkError::Protocol(format!(
                    "no welcome from the coordinator {coordinator}: {}",
                    describe(&e, rendezvous)
                )));
            }
        }
        // Node 0 may spend the whole timeout waiting for a slow node before it reports it:
        // members wait twice as long for its verdict.
        s.set_read_timeout(Some(2 * timeout)).map_err(io)?;
        s.set_write_timeout(Some(timeout)).map_err(io)?;
        Ok(Link {
            role: Role::Member(s, coordinator.to_string()),
            nodes,
            timeout,
            seq: 0,
        })
    }

    /// Sums `values` over all nodes (every node passes the same length).
    pub(crate) fn all_reduce(&mut self, values: Vec<f32>) -> Result<Vec<f32>, LinkError> {
        self.seq += 1;
        let (seq, timeout, n) = (self.seq, self.timeout, values.len());
        match &mut self.role {
            Role::Member(s, addr) => {
                let lost = |e: &std::io::Error| {
                    LinkError::Lost(vec![(0, addr.clone(), describe(e, timeout))])
                };
                write_frame(s, DATA, seq, bytemuck::cast_slice(&values)).map_err(|e| lost(&e))?;
                let f = match read_values(s, seq, n).map_err(|e| lost(&e))? {
                    Received::Data(v) => return Ok(v),
                    Received::Other(f) => f,
                };
                match f.kind {
                    ERROR => Err(match serde_json::from_slice(&f.payload) {
                        Ok(lost) => LinkError::Remote(lost),
                        Err(_) => LinkError::Protocol(String::from_utf8_lossy(&f.payload).into()),
                    }),
                    _ => Err(LinkError::Protocol(format!(
                        "all-reduce {seq}: node 0 answered a frame of kind {} for all-reduce {} \
                         with {} bytes ({} expected)",
                        f.kind,
                        f.seq,
                        f.payload.len(),
                        4 * n
                    ))),
                }
            }
            Role::Root(peers) => {
                let mut sum = values;
                let mut failed = Vec::new();
                let deadline = Instant::now() + timeout;
                for (node, p) in peers.iter_mut().enumerate() {
                    let Some((s, addr)) = p else { continue };
                    // One deadline for the whole gather, not one timeout per node.
                    let left = deadline.saturating_duration_since(Instant::now());
                    let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(1))));
                    match read_values(s, seq, n) {
                        Ok(Received::Data(v)) => {
                            for (a, b) in sum.iter_mut().zip(&v) {
                                *a += *b;
                            }
                        }
                        Ok(Received::Other(f)) => failed.push((
                            node,
                            addr.to_string(),
                            format!(
                                "sent all-reduce {} with {} bytes, expected all-reduce {seq} \
                                 with {} (were the nodes started with the same data and config?)",
                                f.seq,
                                f.payload.len(),
                                4 * n
                            ),
                        )),
                        Err(e) => failed.push((node, addr.to_string(), describe(&e, timeout))),
                    }
                }
                if !failed.is_empty() {
                    let msg = serde_json::to_vec(&failed).expect("serialisable");
                    for (node, p) in peers.iter_mut().enumerate() {
                        if let Some((s, _)) = p
                            && !failed.iter().any(|(n, _, _)| *n == node)
                        {
                            let _ = write_frame(s, ERROR, seq, &msg);
                        }
                    }
                    return Err(LinkError::Lost(failed));
                }
                let bytes: &[u8] = bytemuck::cast_slice(&sum);
                let mut failed = Vec::new();
                for (node, p) in peers.iter_mut().enumerate() {
                    if let Some((s, addr)) = p
                        && let Err(e) = write_frame(s, DATA, seq, bytes)
                    {
                        failed.push((node, addr.to_string(), describe(&e, timeout)));
                    }
                }
                if failed.is_empty() {
                    Ok(sum)
                } else {
                    Err(LinkError::Lost(failed))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(timeout: Duration) -> (Link, Link) {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = std::thread::spawn(move || {
            Link::host(port, 2, 1, timeout, Duration::from_secs(10)).unwrap()
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let member = Link::join(
            addr,
            1,
            2,
            1,
            timeout,
            Duration::from_secs(10),
            100,
            Duration::from_millis(20),
        )
        .unwrap();
        (host.join().unwrap(), member)
    }

    #[test]
    fn sums_across_nodes_repeatedly() {
        let (mut a, mut b) = pair(Duration::from_secs(10));
        for k in 0..5 {
            let t = std::thread::spawn(move || {
                let r = b.all_reduce(vec![1.0, k as f32]).unwrap();
                (b, r)
            });
            let ra = a.all_reduce(vec![2.0, 10.0]).unwrap();
            let (b2, rb) = t.join().unwrap();
            b = b2;
            assert_eq!(ra, vec![3.0, 10.0 + k as f32]);
            assert_eq!(ra, rb);
        }
    }

    #[test]
    fn a_closed_member_is_named_by_node_zero() {
        let (mut a, b) = pair(Duration::from_secs(10));
        drop(b);
        match a.all_reduce(vec![1.0]) {
            Err(LinkError::Lost(l)) => {
                assert_eq!(l[0].0, 1);
                assert!(
                    l[0].2.contains("closed") || l[0].2.contains("lost"),
                    "{l:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_closed_node_zero_is_named_by_members() {
        let (a, mut b) = pair(Duration::from_secs(10));
        drop(a);
        match b.all_reduce(vec![1.0]) {
            Err(LinkError::Lost(l)) => assert_eq!(l[0].0, 0, "{l:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_silent_member_times_out_and_is_named() {
        let (mut a, _b) = pair(Duration::from_millis(300));
        let t = Instant::now();
        match a.all_reduce(vec![1.0]) {
            Err(LinkError::Lost(l)) => assert!(l[0].2.contains("no answer"), "{l:?}"),
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
