//! The resolver's serving loop: UDP and TCP on port 53 of each gateway address, messages
//! parsed and built with hickory-proto. Container names are answered from the [`Table`];
//! everything else is forwarded as it came (same bytes, so the same id and EDNS options) to
//! the asking container's upstream servers, and the first answer relayed back.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::endpoint;
use super::super::store::{Network, NetworkStore};
use super::table::{parse_reverse, Container, Table};
use super::{addresses, DnsError};
use crate::lock;

/// How long one upstream server gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle TCP client is kept.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How often the resolver checks whether its network still has containers.
const IDLE_CHECK: Duration = Duration::from_millis(500);
/// How old a directory time must be before a load that saw it is trusted (see `refresh`).
const STAMP_SETTLE: Duration = Duration::from_millis(50);
/// How long binding may keep failing with EADDRINUSE: a resolver that just decided to exit
/// may still hold the port for a moment.
const BIND_RETRY: Duration = Duration::from_secs(2);

/// The listening sockets, bound before the resolver reports ready.
pub struct Sockets {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl Sockets {
    pub fn bind(net: &Network) -> Result<Self, DnsError> {
        let mut s = Sockets {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for ip in addresses(net) {
            let addr = SocketAddr::new(ip, 53);
            let err = |source| DnsError::Bind {
                network: net.name.clone(),
                addr,
                source,
            };
            let deadline = Instant::now() + BIND_RETRY;
            let udp = loop {
                match UdpSocket::bind(addr) {
                    Err(e)
                        if e.kind() == std::io::ErrorKind::AddrInUse
                            && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    r => break r.map_err(err)?,
                }
            };
            let tcp = TcpListener::bind(addr).map_err(err)?;
            udp.set_nonblocking(true).map_err(err)?;
            tcp.set_nonblocking(true).map_err(err)?;
            s.udp.push(udp);
            s.tcp.push(tcp);
        }
        Ok(s)
    }
}

/// What the resolver knows, refreshed from the endpoint records when their directory changes
/// (and whenever a name is not found, so a container started a moment ago is never missed).
struct State {
    store: NetworkStore,
    net: Network,
    table: Table,
    /// Some endpoint record names the network (attachments in progress included).
    members: bool,
    stamp: Option<SystemTime>,
}

impl State {
    fn refresh(&mut self, force: bool) {
        let stamp = fs::metadata(self.store.endpoints_dir())
            .and_then(|m| m.modified())
            .ok();
        if !force && stamp.is_some() && stamp == self.stamp {
            return;
        }
        let loaded_at = SystemTime::now();
        if let Ok(records) = endpoint::load_all(&self.store) {
            self.members = records
                .iter()
                .any(|r| r.networks.iter().any(|n| n.network == self.net.name));
            self.table = Table::from_records(&records);
            // Directory times come from the kernel's coarse clock (a tick of up to 10 ms):
            // a change in the same tick as this load would keep the same time. A time that
            // recent is not trusted; the next query loads again.
            let settled = stamp.is_some_and(|t| {
                loaded_at
                    .duration_since(t)
                    .is_ok_and(|age| age > STAMP_SETTLE)
            });
            self.stamp = if settled { stamp } else { None };
        }
    }
}

type Shared = Arc<Mutex<State>>;

fn lock_state(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves until the network is gone or has no container left.
pub(super) async fn run(
    store: NetworkStore,
    net: Network,
    sockets: Sockets,
    start_lock: PathBuf,
) -> Result<(), DnsError> {
    let mut state = State {
        store,
        net,
        table: Table::default(),
        members: true,
        stamp: None,
    };
    state.refresh(true);
    let shared: Shared = Arc::new(Mutex::new(state));
    for s in sockets.udp {
        let sock = tokio::net::UdpSocket::from_std(s).map_err(DnsError::Runtime)?;
        tokio::spawn(udp_loop(Arc::new(sock), shared.clone()));
    }
    for l in sockets.tcp {
        let listener = tokio::net::TcpListener::from_std(l).map_err(DnsError::Runtime)?;
        tokio::spawn(tcp_loop(listener, shared.clone()));
    }
    watch(shared, start_lock).await;
    Ok(())
}

/// Returns when the resolver should exit: its network record is gone (or is another
/// network's now), or no endpoint names the network. The idle exit holds the start lock
/// while it re-checks, so an attach that found the resolver running is never left without.
async fn watch(shared: Shared, start_lock: PathBuf) {
    let mut tick = tokio::time::interval(IDLE_CHECK);
    loop {
        tick.tick().await;
        let mut st = lock_state(&shared);
        match st.store.get(&st.net.name) {
            Ok(n) if n.id == st.net.id => {}
            _ => return,
        }
        st.refresh(false);
        if st.members {
            continue;
        }
        let Ok(f) = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&start_lock)
        else {
            continue;
        };
        // Someone is starting a resolver (or one of us): check again on the next tick.
        if !lock::try_lock_exclusive(&f).unwrap_or(false) {
            continue;
        }
        st.refresh(true);
        if !st.members {
            // Exit with the start lock held: it is released when the process is gone.
            std::mem::forget(f);
            return;
        }
    }
}

async fn udp_loop(sock: Arc<tokio::net::UdpSocket>, shared: Shared) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, src)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let query = buf[..n].to_vec();
        let (sock, shared) = (sock.clone(), shared.clone());
        tokio::spawn(async move {
            if let Some(reply) = handle(&shared, src.ip(), &query, false).await {
                let _ = sock.send_to(&reply, src).await;
            }
        });
    }
}

async fn tcp_loop(listener: tokio::net::TcpListener, shared: Shared) {
    loop {
        let Ok((stream, src)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(tcp_conn(stream, src.ip(), shared.clone()));
    }
}

/// DNS over TCP: each message behind its two-byte length (RFC 1035 4.2.2).
async fn tcp_conn(mut stream: tokio::net::TcpStream, src: IpAddr, shared: Shared) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        let mut query = vec![0u8; usize::from(len)];
        if tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query))
            .await
            .is_err()
        {
            return;
        }
        let Some(reply) = handle(&shared, src, &query, true).await else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_u16(n).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// What to do with one query.
enum Decision {
    Reply(Message),
    Forward(Vec<IpAddr>),
    Drop,
}

async fn handle(shared: &Shared, src: IpAddr, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let (decision, request) = {
        let mut st = lock_state(shared);
        decide(&mut st, src, query)
    };
    match decision {
        Decision::Reply(m) => m.to_vec().ok(),
        Decision::Drop => None,
        Decision::Forward(upstream) => {
            for server in upstream {
                let addr = SocketAddr::new(server, 53);
                let answer = if tcp {
                    forward_tcp(query, addr).await
                } else {
                    forward_udp(query, addr).await
                };
                if let Some(a) = answer.filter(|a| a.len() >= 2 && a[..2] == query[..2]) {
                    return Some(a);
                }
            }
            let req = request?;
            error_reply(&req, ResponseCode::ServFail).to_vec().ok()
        }
    }
}

fn error_reply(req: &Message, code: ResponseCode) -> Message {
    let mut m = Message::error_msg(req.metadata.id, req.metadata.op_code, code);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.queries = req.queries.clone();
    m
}

fn decide(st: &mut State, src: IpAddr, query: &[u8]) -> (Decision, Option<Message>) {
    let Ok(req) = Message::from_vec(query) else {
        // Unparseable: answer FORMERR when at least the id is there.
        if query.len() < 12 {
            return (Decision::Drop, None);
        }
        let id = u16::from_be_bytes([query[0], query[1]]);
        let m = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
        return (Decision::Reply(m), None);
    };
    if req.metadata.message_type != MessageType::Query {
        return (Decision::Drop, None);
    }
    if req.metadata.op_code != OpCode::Query {
        return (
            Decision::Reply(error_reply(&req, ResponseCode::NotImp)),
            Some(req),
        );
    }
    let Some(q) = req.queries.first().cloned() else {
        return (
            Decision::Reply(error_reply(&req, ResponseCode::FormErr)),
            Some(req),
        );
    };
    st.refresh(false);
    let network = st.net.name.clone();
    let mut requester = st.table.requester(&network, src).cloned();
    if requester.is_none() {
        st.refresh(true);
        requester = st.table.requester(&network, src).cloned();
    }
    // Only the network's containers may use its resolver (it listens on a host address,
    // which other networks' containers can reach too).
    let Some(requester) = requester else {
        return (
            Decision::Reply(error_reply(&req, ResponseCode::Refused)),
            Some(req),
        );
    };
    let mut answers = local_answer(&st.table, &requester, &network, &q);
    if answers.is_none() {
        st.refresh(true);
        answers = local_answer(&st.table, &requester, &network, &q);
    }
    match answers {
        Some(records) => {
            let mut m = Message::response(req.metadata.id, req.metadata.op_code);
            m.metadata.authoritative = true;
            m.metadata.recursion_desired = req.metadata.recursion_desired;
            m.metadata.recursion_available = true;
            m.add_query(q);
            m.add_answers(records);
            (Decision::Reply(m), Some(req))
        }
        None => {
            let upstream = if requester.upstream.is_empty() {
                host_servers(&addresses(&st.net))
            } else {
                requester.upstream.clone()
            };
            (Decision::Forward(upstream), Some(req))
        }
    }
}

/// The records answering `q` from the table; `None` when the name is not ours.
fn local_answer(
    table: &Table,
    requester: &Container,
    network: &str,
    q: &Query,
) -> Option<Vec<Record>> {
    let name = q.name().to_ascii();
    if q.query_type() == RecordType::PTR {
        let ip = parse_reverse(&name)?;
        let target = table.reverse(requester, network, ip)?;
        let target = Name::from_ascii(format!("{target}.")).ok()?;
        return Some(vec![Record::from_rdata(
            q.name().clone(),
            0,
            RData::PTR(PTR(target)),
        )]);
    }
    let ips = table.lookup(requester, network, &name)?;
    // A name of ours with no address of the asked type is NODATA, not NXDOMAIN.
    Some(
        ips.into_iter()
            .filter_map(|ip| match (ip, q.query_type()) {
                (IpAddr::V4(a), RecordType::A | RecordType::ANY) => Some(RData::A(A(a))),
                (IpAddr::V6(a), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(a))),
                _ => None,
            })
            .map(|r| Record::from_rdata(q.name().clone(), 0, r))
            .collect(),
    )
}

/// The host's nameservers (its resolv.conf, re-read per query: it may change), without our
/// own addresses. The resolver runs in the host's namespace, so loopback servers (a local
/// caching resolver) are reachable and kept.
fn host_servers(own: &[IpAddr]) -> Vec<IpAddr> {
    fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("nameserver"))
                .then(|| f.next()?.parse::<IpAddr>().ok())
                .flatten()
        })
        .filter(|ip| !own.contains(ip))
        .collect()
}

async fn forward_udp(query: &[u8], addr: SocketAddr) -> Option<Vec<u8>> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = tokio::net::UdpSocket::bind(local).await.ok()?;
    sock.connect(addr).await.ok()?;
    sock.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

async fn forward_tcp(query: &[u8], addr: SocketAddr) -> Option<Vec<u8>> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_u16(u16::try_from(query.len()).ok()?).await.ok()?;
        s.write_all(query).await.ok()?;
        let len = s.read_u16().await.ok()?;
        let mut buf = vec![0u8; usize::from(len)];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}
