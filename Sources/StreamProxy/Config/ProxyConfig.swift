import Foundation

/// Everything `stream-proxy serve` can be told: the configuration surface of PRODUCT.md §3.
///
/// `init()` gives the documented defaults. A config file (`apply(fileAt:)`) and then command-line
/// flags (`ConfigOptions.resolve()`) overlay them, and `validated()` checks the result once, before
/// any socket or thread exists, so a bad setting stops the program instead of surfacing under load.
public struct ProxyConfig: Sendable, Equatable {
    /// Host part of `listen`: the address the proxy accepts clients on (an IPv6 address is kept
    /// without its brackets).
    public var listenHost = "127.0.0.1"
    /// Port part of `listen`. 0 asks the system for a free port (the first worker's choice is
    /// then shared by all), which tests use to run side by side.
    public var listenPort: UInt16 = 8080
    /// Event-loop threads, each accepting on the listen address through SO_REUSEPORT. Defaults to
    /// the number of cores, capped at the 256 that validation allows.
    public var workers = min(ProcessInfo.processInfo.activeProcessorCount, 256)
    /// Routes in configuration order: name → upstream URLs fetched concurrently, and an optional
    /// prefix size. Empty means the built-in `demo` route against the built-in test origin (§6).
    public var routes: [RouteConfig] = []
    /// Name of the route `GET /stream` serves; nil means the first route.
    public var defaultRoute: String?
    /// Default bytes forwarded per upstream (a route's own `prefix` or a request's `prefix=N`
    /// query parameter takes precedence).
    public var prefix = 1024
    /// The most bytes per upstream a request (or a route) may ask for.
    public var maxPrefix = 1_048_576
    /// Whether routes that do not say otherwise share upstream fetches among concurrent streams
    /// (coalescing): only for upstreams whose body is the same for every client.
    public var coalesce = false
    /// Seconds a completed shared fetch serves streams that start after it, for routes that do
    /// not say otherwise (needs coalescing; errors are never served again). 0: none.
    public var cacheFor = 0.0
    /// Upstream connections open at once, whole process.
    public var maxConnections = 100
    /// Upstream connections open at once to any one upstream host, whole process (a value above
    /// maxConnections is capped by it).
    public var maxConnectionsPerHost = 10
    /// Idle upstream connections kept for reuse, whole process.
    public var maxKeepalive = 20
    /// Seconds an idle upstream connection is kept for reuse.
    public var keepaliveExpiry = 5.0
    /// Seconds an upstream TCP + TLS connect may take.
    public var connectTimeout = 5.0
    /// Seconds an upstream may send no bytes before its transfer fails with a timeout.
    public var readTimeout = 15.0
    /// Seconds a whole upstream transfer may take.
    public var totalTimeout = 30.0
    /// Seconds an upstream transfer may wait for a free connection slot (maxConnections,
    /// maxConnectionsPerHost) before it fails with kind `pool`.
    public var poolTimeout = 5.0
    /// Client streams open at once; beyond it a request gets 503 with Retry-After.
    public var maxStreams = 10_000
    /// Fan-out width cap: the most upstreams one route (one stream) may have.
    public var maxUpstreamsPerStream = 32
    /// Bytes queued for one slow client before its upstream transfers are paused.
    public var streamBuffer = 65_536
    /// After an upstream's prefix is full, a remainder of at most this many bytes (known from
    /// Content-Length) is read and discarded so its connection can be reused; a larger or unknown
    /// remainder ends the transfer at once. 0 never drains.
    public var drainLimit = 65_536
    /// Seconds between `: ping` comments on an idle stream, keeping it alive through proxies.
    public var heartbeat = 15.0
    /// Origins allowed for browser clients (CORS): `"*"` or origins like `https://example.com`.
    /// Empty allows none.
    public var cors: [String] = []
    /// Whether browsers may send credentials (cookies) with cross-origin streams; needs listed
    /// origins, never `"*"`.
    public var corsCredentials = false
    /// PEM file of extra CA certificates trusted for HTTPS upstreams. The system store is always
    /// trusted; certificate and host name are always verified.
    public var caFile: String?
    /// The resolver's name servers, search domains and options (resolv.conf format), read by
    /// each worker at start; host names are resolved on the workers' loops.
    public var resolvConf = "/etc/resolv.conf"
    /// The names answered before DNS (hosts-file format), read by each worker at start.
    public var hostsFile = "/etc/hosts"
    /// HTTP versions spoken upstream: `auto` (HTTP/2 where an HTTPS origin offers it by ALPN,
    /// else HTTP/1.1) or `1.1` (HTTP/1.1 only).
    public var upstreamHTTP = "auto"
    /// HTTP/2 streams (transfers) one upstream connection carries at once.
    public var maxStreamsPerConnection = 100
    /// Seconds open streams get to finish after SIGTERM/SIGINT before they are cut.
    public var shutdownGrace = 10.0
    /// Share the listen port with another process on purpose (SO_REUSEPORT), as a restart on
    /// the same port does: the new process starts beside the old one while it drains. Off,
    /// `serve` exits 2 when another process serves the port.
    public var reusePort = false
    /// Seconds a client may take to send its request line and headers before it is dropped,
    /// so idle or slow-loris connections cannot hold slots.
    public var requestHeaderTimeout = 10.0
    /// Least severe log level printed: trace, debug, info, notice, warning, error or critical.
    public var logLevel = "info"

    /// The defaults of PRODUCT.md §3.
    public init() {}
}
