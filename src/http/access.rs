//! Access control for server-to-server calls (API tokens), the card-testing defence on create and
//! the guessing defence on the dashboard's login (per-client rate limits, the client taken from
//! `X-Forwarded-For` only behind trusted proxies).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use secrecy::SecretString;

use super::error::ApiError;
use crate::tokens::{bearer, Tokens};

/// `N/unit`: at most N requests per client per unit, in bursts of up to N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: NonZeroU32,
    pub per: Duration,
}

impl RateLimit {
    /// `20/min`, `5/s`, `100/hour`, …
    pub fn parse(text: &str) -> Option<RateLimit> {
        let (count, unit) = text.trim().split_once('/')?;
        let count = NonZeroU32::new(count.trim().parse().ok()?)?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(RateLimit { count, per })
    }
}

/// An IP network such as `10.0.0.0/8`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Option<Network> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.address), ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) count as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Who may call what: `API_TOKENS`, `CREATE_RATE_LIMIT` and `TRUSTED_PROXIES`.
#[derive(Debug, Clone, Default)]
pub struct AccessSettings {
    /// Tokens that every client function but create requires; none: open.
    pub tokens: Vec<SecretString>,
    /// Per-client limit on creates; `None`: no limit.
    pub create_rate_limit: Option<RateLimit>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Network>,
}

/// Failed sign-ins to the dashboard a client may make per minute: a token cannot be guessed
/// faster.
pub const LOGIN_RATE_LIMIT: RateLimit = RateLimit {
    count: NonZeroU32::new(10).expect("not zero"),
    per: Duration::from_secs(60),
};

/// A [`RateLimit`] per client, the client counted by its [`rate_key`].
struct ClientLimit(DefaultKeyedRateLimiter<IpAddr>);

impl ClientLimit {
    fn new(limit: RateLimit) -> Self {
        let replenish = limit.per / limit.count.get();
        let quota = Quota::with_period(replenish.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(limit.count);
        ClientLimit(RateLimiter::keyed(quota))
    }

    /// Counts one request of `client`; refuses with the seconds to wait when over the limit.
    fn check(&self, client: IpAddr) -> Result<(), ApiError> {
        self.0
            .check_key(&rate_key(client))
            .map_err(|not_until| refused(not_until.wait_time_from(DefaultClock::default().now())))
    }

    fn forget_idle_clients(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}

/// A request over its limit, to be tried again after `wait` (whole seconds, rounded up).
fn refused(wait: Duration) -> ApiError {
    metrics::counter!("tmt_rate_limited_total").increment(1);
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

/// A [`RateLimit`] per client on failures: every try takes one of the client's turns before it
/// is judged (so that tries sent at once cannot all pass, and a client out of turns is refused
/// whatever it sends), and a try that succeeds gives its turn back.
struct FailureLimit {
    /// One turn comes back every `every`; a client holds `burst` at most.
    every: Duration,
    burst: u32,
    /// By client key: when all its turns are back (the cell rate algorithm's theoretical arrival
    /// time). A client whose turns are all back is not kept.
    clients: Mutex<HashMap<IpAddr, Instant>>,
}

impl FailureLimit {
    fn new(limit: RateLimit) -> Self {
        FailureLimit {
            every: (limit.per / limit.count.get()).max(Duration::from_nanos(1)),
            burst: limit.count.get(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one of `client`'s turns; refuses with the seconds to wait when it has none left.
    fn take(&self, client: IpAddr) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut clients = self.clients();
        let all_back = clients.entry(rate_key(client)).or_insert(now);
        let after = (*all_back).max(now) + self.every;
        let latest = now + self.every * self.burst;
        if after > latest {
            return Err(refused(after - latest));
        }
        *all_back = after;
        Ok(())
    }

    /// Gives back the turn a try of `client` that succeeded took.
    fn give_back(&self, client: IpAddr) {
        let now = Instant::now();
        let mut clients = self.clients();
        let key = rate_key(client);
        if let Some(all_back) = clients.get_mut(&key) {
            match all_back.checked_sub(self.every) {
                Some(earlier) if earlier > now => *all_back = earlier,
                _ => {
                    clients.remove(&key);
                }
            }
        }
    }

    fn forget_idle_clients(&self) {
        let now = Instant::now();
        let mut clients = self.clients();
        clients.retain(|_, all_back| *all_back > now);
        clients.shrink_to_fit();
    }
}

pub struct Access {
    tokens: Tokens,
    creates: Option<ClientLimit>,
    logins: FailureLimit,
    trusted_proxies: Vec<Network>,
}

impl Access {
    pub fn new(settings: &AccessSettings) -> Self {
        Access {
            tokens: Tokens::new(&settings.tokens),
            creates: settings.create_rate_limit.map(ClientLimit::new),
            logins: FailureLimit::new(LOGIN_RATE_LIMIT),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    pub fn tokens_required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// `Authorization: Bearer <token>` must carry one of the configured tokens.
    pub fn check_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        if bearer(headers).and_then(|t| self.tokens.known(t)).is_some() {
            Ok(())
        } else {
            metrics::counter!("tmt_unauthorized_total").increment(1);
            Err(ApiError::Unauthorized)
        }
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(peer) {
            return canonical(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|part| part.trim().parse::<IpAddr>().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(*ip))
            .map(canonical)
            .unwrap_or(canonical(peer))
    }

    /// The client of a request: [`Access::client_ip`] of the connection's peer (the
    /// unspecified address when the connection did not say).
    pub fn client(&self, extensions: &Extensions, headers: &HeaderMap) -> IpAddr {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.client_ip(peer, headers)
    }

    /// Counts one create for `client` (when `CREATE_RATE_LIMIT` is set); refuses with the
    /// seconds to wait when over the limit.
    pub fn check_rate(&self, client: IpAddr) -> Result<(), ApiError> {
        self.creates.as_ref().map_or(Ok(()), |l| l.check(client))
    }

    /// Counts one sign-in attempt of `client` against [`LOGIN_RATE_LIMIT`], before its token is
    /// looked at; refuses with the seconds to wait when the client has no turn left.
    pub fn check_login(&self, client: IpAddr) -> Result<(), ApiError> {
        self.logins.take(client)
    }

    /// A sign-in of `client` succeeded: it gives back the turn it took, so that only failures
    /// count.
    pub fn signed_in(&self, client: IpAddr) {
        self.logins.give_back(client);
    }

    /// Forgets clients that are back under their limits (bounded memory).
    pub fn forget_idle_clients(&self) {
        if let Some(creates) = &self.creates {
            creates.forget_idle_clients();
        }
        self.logins.forget_idle_clients();
    }
}

/// What the rate limits count a client by. One IPv6 subscriber usually gets a whole /64 and
/// can pick any address in it, so counting single IPv6 addresses would give a card tester an
/// unlimited budget; an IPv4 address (or IPv4-mapped IPv6 address) counts on its own.
fn rate_key(client: IpAddr) -> IpAddr {
    match canonical(client) {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::MAX >> 64)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No tokens and no trusted proxies; creates limited to `limit` per client.
    fn limited(limit: &str) -> Access {
        Access::new(&AccessSettings {
            create_rate_limit: RateLimit::parse(limit),
            ..AccessSettings::default()
        })
    }

    #[test]
    fn rate_limits_parse() {
        let l = RateLimit::parse("20/min").unwrap();
        assert_eq!((l.count.get(), l.per), (20, Duration::from_secs(60)));
        assert_eq!(
            RateLimit::parse(" 5 / s ").unwrap().per,
            Duration::from_secs(1)
        );
        for bad in ["", "20", "0/min", "-1/min", "20/week", "x/min", "20/"] {
            assert!(RateLimit::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn networks() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.255.1.2".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let one = Network::parse("192.168.1.5").unwrap();
        assert!(one.contains("192.168.1.5".parse().unwrap()));
        assert!(!one.contains("192.168.1.6".parse().unwrap()));
        let v6 = Network::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("nope").is_none());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let access = Access::new(&AccessSettings {
            trusted_proxies: vec![Network::parse("10.0.0.0/8").unwrap()],
            ..AccessSettings::default()
        });
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7, 10.0.0.3".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let outsider: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            access.client_ip(proxy, &h),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(access.client_ip(outsider, &h), outsider);
        assert_eq!(access.client_ip(proxy, &HeaderMap::new()), proxy);
    }

    #[test]
    fn tokens() {
        let access = Access::new(&AccessSettings {
            tokens: vec![SecretString::from("a-long-enough-token-1".to_string())],
            ..AccessSettings::default()
        });
        let mut h = HeaderMap::new();
        assert!(access.check_token(&h).is_err());
        for (authorization, accepted) in [
            ("Bearer wrong", false),
            ("Bearer a-long-enough-token-1", true),
            ("bearer a-long-enough-token-1", true),
            ("BEARER a-long-enough-token-1", true),
            ("BeArEr a-long-enough-token-1", true),
            ("Bearer  a-long-enough-token-1", true),
            ("Basic a-long-enough-token-1", false),
            ("Bearer", false),
            ("Bearer ", false),
            ("Bearera-long-enough-token-1", false),
            ("a-long-enough-token-1", false),
            ("Bearer a-long-enough-token-2", false),
        ] {
            h.insert("authorization", authorization.parse().unwrap());
            let answer = access.check_token(&h);
            assert_eq!(answer.is_ok(), accepted, "{authorization}");
        }
        assert!(Access::new(&AccessSettings::default())
            .check_token(&HeaderMap::new())
            .is_ok());
    }

    #[test]
    fn limiter_refuses_past_the_burst_with_a_wait() {
        let access = limited("3/min");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(access.check_rate(ip).is_ok());
        }
        match access.check_rate(ip) {
            Err(ApiError::RateLimited { retry_after_secs }) => {
                assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}")
            }
            other => panic!("{other:?}"),
        }
        assert!(
            access.check_rate("192.0.2.2".parse().unwrap()).is_ok(),
            "per client"
        );
    }

    #[test]
    fn only_failed_sign_ins_use_up_a_clients_turns() {
        // Ten a minute (LOGIN_RATE_LIMIT), whatever CREATE_RATE_LIMIT says.
        let access = limited("3/min");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..30 {
            assert!(
                access.check_login(ip).is_ok(),
                "a sign-in that succeeds costs nothing"
            );
            access.signed_in(ip);
        }
        for _ in 0..10 {
            assert!(access.check_login(ip).is_ok(), "a failure costs a turn");
        }
        for n in 11..=15 {
            match access.check_login(ip) {
                Err(ApiError::RateLimited { retry_after_secs }) => {
                    assert!((1..=6).contains(&retry_after_secs), "{retry_after_secs}")
                }
                other => panic!("try {n} after 10 failures: {other:?}"),
            }
        }
        assert!(
            access.check_login("192.0.2.2".parse().unwrap()).is_ok(),
            "per client"
        );
        access.forget_idle_clients();
        assert!(
            access.check_login(ip).is_err(),
            "a client out of turns is kept"
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            rate_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            rate_key(ip("2001:db8:1:2::1")),
            rate_key(ip("2001:db8:1:2::2"))
        );
        assert_ne!(
            rate_key(ip("2001:db8:1:2::1")),
            rate_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(rate_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_ne!(rate_key(ip("192.0.2.7")), rate_key(ip("192.0.2.8")));

        // Two creates a minute: in order, each client and whether it may create.
        let access = limited("2/min");
        for (client, allowed, why) in [
            ("2001:db8:1:2::1", true, "the first of a /64"),
            ("2001:db8:1:2:ffff::9", true, "the second of the same /64"),
            ("2001:db8:1:2::3", false, "a third of one /64: over"),
            ("2001:db8:1:3::1", true, "another /64"),
            ("192.0.2.7", true, "the first of an IPv4 address"),
            ("::ffff:192.0.2.7", true, "the second: IPv4-mapped"),
            ("192.0.2.7", false, "IPv4-mapped counts as the IPv4 client"),
            ("192.0.2.8", true, "IPv4 by address"),
        ] {
            let answer = access.check_rate(ip(client));
            assert_eq!(answer.is_ok(), allowed, "{client}: {why}");
        }
    }
}
