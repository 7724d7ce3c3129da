//! Network URLs: `tcp://host:port` and `udp://host:port`, with `?mode=listen|connect` to choose
//! which side opens the connection.

use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs};

/// Which side opens the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Bind the address and wait for peers.
    Listen,
    /// Connect (TCP) or send (UDP) to the address.
    Connect,
}

/// The transport a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A byte stream: credit-based backpressure, nothing lost on the way.
    Tcp,
    /// Datagrams: frames cut to the MTU, loss detected and recovered from.
    Udp,
}

/// A parsed `tcp://host:port[?mode=...]` or `udp://host:port[?mode=...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetAddress {
    /// TCP or UDP.
    pub transport: Transport,
    /// `host:port` as written.
    pub authority: String,
    /// The role `?mode=` asked for, if any.
    pub mode: Option<Role>,
}

impl NetAddress {
    /// Parses a URL; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<NetAddress, String> {
        let (transport, rest) = if let Some(rest) = url.strip_prefix("tcp://") {
            (Transport::Tcp, rest)
        } else if let Some(rest) = url.strip_prefix("udp://") {
            (Transport::Udp, rest)
        } else {
            return Err(format!("{url:?}: expected tcp://host:port or udp://host:port"));
        };
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| format!("{url:?}: missing :port"))?;
        if host.is_empty() {
            return Err(format!("{url:?}: missing host"));
        }
        port.parse::<u16>().map_err(|_| format!("{url:?}: port {port:?} is not a number in 0..=65535"))?;
        let mut mode = None;
        for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("mode", "listen")) => mode = Some(Role::Listen),
                Some(("mode", "connect")) => mode = Some(Role::Connect),
                Some(("mode", other)) => return Err(format!("{url:?}: mode {other:?} is not listen or connect")),
                _ => return Err(format!("{url:?}: unknown query parameter {pair:?}")),
            }
        }
        Ok(NetAddress { transport, authority: authority.to_string(), mode })
    }

    /// The role: `?mode=` if given, else `default`.
    pub fn role(&self, default: Role) -> Role {
        self.mode.unwrap_or(default)
    }

    /// Resolves the address (first result).
    pub fn resolve(&self) -> std::io::Result<SocketAddr> {
        self.authority.to_socket_addrs()?.next().ok_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_their_transport_and_mode() {
        let a = NetAddress::parse("tcp://127.0.0.1:9000").expect("plain");
        assert_eq!((a.authority.as_str(), a.role(Role::Connect)), ("127.0.0.1:9000", Role::Connect));
        assert_eq!(a.transport, Transport::Tcp);
        let b = NetAddress::parse("tcp://0.0.0.0:9000?mode=connect").expect("mode");
        assert_eq!(b.role(Role::Listen), Role::Connect);
        let u = NetAddress::parse("udp://[::1]:5000?mode=listen").expect("udp");
        assert_eq!((u.transport, u.authority.as_str(), u.mode), (Transport::Udp, "[::1]:5000", Some(Role::Listen)));
        for bad in ["srt://x:1", "tcp://:1", "tcp://host", "tcp://h:99999", "udp://h:1?mode=up", "tcp://h:1?x=y"] {
            assert!(NetAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
