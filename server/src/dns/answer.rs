//! Answering one query: container names from the service's read model, everything else
//! handed to the forwarder. Decoding and encoding are hickory-proto's.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::service::Names;

/// Seconds a container name may be cached, as Docker's resolver says.
pub const LOCAL_TTL: u32 = 600;

/// The EDNS payload size this server advertises (the DNS flag day's safe UDP size).
const EDNS_PAYLOAD: u16 = 1232;

/// What to do with a message received.
pub enum Verdict {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: forward the query as received (the decoded form shapes a SERVFAIL).
    Forward(Message),
    /// Not worth an answer (a response, or bytes with no header to answer).
    Drop,
}

/// The names one container can see, and the search domains its resolv.conf lists.
pub struct Asker<'a> {
    pub names: &'a Names,
    pub container: &'a str,
    pub search: &'a [String],
}

/// Spreads answers over a name's holders, as Docker's round robin does.
static ROTATION: AtomicUsize = AtomicUsize::new(0);

/// Decides about one message: answers container names and their addresses, refuses what is
/// malformed, forwards the rest. Over `udp`, an answer longer than the client's payload size
/// is truncated with TC set, so the client asks again over TCP.
pub fn decide(asker: &Asker<'_>, bytes: &[u8], udp: bool) -> Verdict {
    let request = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(_) => return malformed(bytes),
    };
    let meta = &request.metadata;
    if meta.message_type != MessageType::Query {
        return Verdict::Drop;
    }
    if meta.op_code != OpCode::Query {
        return Verdict::Reply(error(&request, ResponseCode::NotImp));
    }
    let [query] = request.queries.as_slice() else {
        return Verdict::Reply(error(&request, ResponseCode::FormErr));
    };
    if query.query_class() != DNSClass::IN {
        return forward(request);
    }
    let local = match query.query_type() {
        RecordType::PTR => reverse(asker, query),
        qtype => by_name(asker, query, qtype),
    };
    match local {
        Some(Local::Answers(records)) => {
            Verdict::Reply(respond(&request, ResponseCode::NoError, records, udp))
        }
        Some(Local::NxDomain) => {
            Verdict::Reply(respond(&request, ResponseCode::NXDomain, Vec::new(), udp))
        }
        None => forward(request),
    }
}

/// A local answer.
enum Local {
    /// The records (none: the name exists, without records of that type).
    Answers(Vec<Record>),
    /// A container name, but on no network the asker shares with it.
    NxDomain,
}

fn forward(request: Message) -> Verdict {
    Verdict::Forward(request)
}

/// A, AAAA and any other type for a container name; `None` for names that are not.
fn by_name(asker: &Asker<'_>, query: &Query, qtype: RecordType) -> Option<Local> {
    let name = plain_name(query.name())?;
    let Some(mut addresses) = lookup(asker, &name) else {
        // Someone's name on a network the asker is not on: NXDOMAIN, and never sent upstream.
        return asker.names.held_anywhere(&name).then_some(Local::NxDomain);
    };
    if !addresses.is_empty() {
        let turn = ROTATION.fetch_add(1, Ordering::Relaxed) % addresses.len();
        addresses.rotate_left(turn);
    }
    let owner = query.name().clone();
    let records = addresses
        .into_iter()
        .filter_map(|ip| match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(v4))),
            (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(v6))),
            _ => None,
        })
        .map(|data| Record::from_rdata(owner.clone(), LOCAL_TTL, data))
        .collect();
    Some(Local::Answers(records))
}

/// The addresses a name stands for to the asker, trying Docker's forms in turn: the name as
/// asked; with a search domain of its resolv.conf taken off; `<name>.<network>`.
fn lookup(asker: &Asker<'_>, name: &str) -> Option<Vec<IpAddr>> {
    let resolve = |n: &str, net: Option<&str>| asker.names.resolve(asker.container, n, net);
    if let Some(found) = resolve(name, None) {
        return Some(found);
    }
    for domain in asker.search {
        let suffix = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(short) = name
            .strip_suffix(suffix.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|rest| !rest.is_empty())
            && let Some(found) = resolve(short, None)
        {
            return Some(found);
        }
    }
    // a.b.c: "a.b" on network "c", then "a" on network "b.c".
    let mut cut = name.len();
    while let Some(dot) = name[..cut].rfind('.') {
        let (short, network) = (&name[..dot], &name[dot + 1..]);
        if !short.is_empty()
            && !network.is_empty()
            && let Some(found) = resolve(short, Some(network))
        {
            return Some(found);
        }
        cut = dot;
    }
    None
}

/// PTR for an address of a container on a network the asker is on.
fn reverse(asker: &Asker<'_>, query: &Query) -> Option<Local> {
    let net = query.name().parse_arpa_name().ok()?;
    let full = if net.addr().is_ipv4() { 32 } else { 128 };
    if net.prefix_len() != full {
        return None;
    }
    let owner = asker.names.reverse(asker.container, net.addr())?;
    let target = Name::from_ascii(format!("{owner}.")).ok()?;
    let record = Record::from_rdata(query.name().clone(), LOCAL_TTL, RData::PTR(PTR(target)));
    Some(Local::Answers(vec![record]))
}

/// The query name, lowercase, without the root's dot; `None` when it is not plain ASCII.
fn plain_name(name: &Name) -> Option<String> {
    let text = name.to_ascii();
    let text = text.strip_suffix('.').unwrap_or(&text);
    (!text.is_empty() && text.is_ascii()).then(|| text.to_ascii_lowercase())
}

/// Bytes that do not decode: FORMERR when there is a query header to answer, else nothing.
fn malformed(bytes: &[u8]) -> Verdict {
    let is_query = bytes.len() >= 12 && bytes[2] & 0x80 == 0;
    if !is_query {
        return Verdict::Drop;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let reply = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
    reply.to_vec().map(Verdict::Reply).unwrap_or(Verdict::Drop)
}

/// A reply with `code`, echoing the question.
pub fn error(request: &Message, code: ResponseCode) -> Vec<u8> {
    let mut reply = header_for(request, code);
    reply.metadata.authoritative = false;
    reply.to_vec().unwrap_or_default()
}

/// SERVFAIL for a query the upstream servers did not answer.
pub fn servfail(request: &Message) -> Vec<u8> {
    error(request, ResponseCode::ServFail)
}

fn header_for(request: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.response_code = code;
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.set_edns(edns);
    }
    reply
}

/// The answer, truncated (TC, no records) when UDP cannot carry it to this client.
fn respond(request: &Message, code: ResponseCode, records: Vec<Record>, udp: bool) -> Vec<u8> {
    let mut reply = header_for(request, code);
    reply.add_answers(records);
    let bytes = reply.to_vec().unwrap_or_default();
    if udp && bytes.len() > usize::from(request.max_payload()) {
        let mut short = header_for(request, code);
        short.metadata.truncation = true;
        return short.to_vec().unwrap_or_default();
    }
    bytes
}
