import ArgumentParser

/// The `serve` options: `--config FILE` and one flag per config setting (PRODUCT.md §2, §3).
///
/// Every flag is optional so that "not given" leaves the file's value (or the default) alone.
/// Values are taken as text and parsed here rather than by ArgumentParser, so that a bad value is
/// a `ConfigError` like any other config problem, and sizes and durations accept the same units as
/// the file. List flags (`--route`, `--cors`) replace the file's list when given at all.
public struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp("JSON config file; flags override its settings.", valueName: "file"))
    public var configFile: String?

    @Option(help: help("Address to listen on: host:port, [ipv6]:port, or :port for 127.0.0.1.", default: "\(defaults.listenHost):\(defaults.listenPort)", "addr"))
    public var listen: String?

    @Option(help: help("Event-loop threads (SO_REUSEPORT), 1...256.", default: "the number of cores"))
    public var workers: String?

    @Option(name: .customLong("route"), help: ArgumentHelp(
        "A route, repeatable: name=URL[,URL...], or name@prefix=URL[,URL...] for its own prefix. (default: the built-in demo route)",
        valueName: "route"
    ))
    public var routes: [String] = []

    @Option(help: ArgumentHelp("Route that GET /stream serves. (default: the first route)", valueName: "name"))
    public var defaultRoute: String?

    @Option(help: help("Default bytes forwarded per upstream; sizes take units like 64KiB, 1MiB.", default: defaults.prefix, "size"))
    public var prefix: String?

    @Option(help: help("The most bytes per upstream a request may ask for.", default: defaults.maxPrefix, "size"))
    public var maxPrefix: String?

    @Option(help: help("Upstream connections open at once, whole process (all workers together).", default: defaults.maxConnections))
    public var maxConnections: String?

    @Option(help: help("Upstream connections open at once to one upstream host, whole process; a value above --max-connections is capped by it.", default: defaults.maxConnectionsPerHost))
    public var maxConnectionsPerHost: String?

    @Option(help: help("Idle upstream connections kept for reuse, whole process.", default: defaults.maxKeepalive))
    public var maxKeepalive: String?

    @Option(help: help("How long an idle upstream connection is kept; durations take units like 500ms, 5s, 2m.", default: seconds(defaults.keepaliveExpiry), "duration"))
    public var keepaliveExpiry: String?

    @Option(help: help("Upstream TCP + TLS connect timeout; also bounds each DNS lookup.", default: seconds(defaults.connectTimeout), "duration"))
    public var connectTimeout: String?

    @Option(help: help("Upstream timeout for no bytes received.", default: seconds(defaults.readTimeout), "duration"))
    public var readTimeout: String?

    @Option(help: help("Upstream timeout for a whole transfer.", default: seconds(defaults.totalTimeout), "duration"))
    public var totalTimeout: String?

    @Option(help: help("Timeout waiting for a free upstream connection slot.", default: seconds(defaults.poolTimeout), "duration"))
    public var poolTimeout: String?

    @Option(help: help("Client streams open at once; beyond it, 503 with Retry-After.", default: defaults.maxStreams))
    public var maxStreams: String?

    @Option(help: help("The most upstreams one stream may fan out to.", default: defaults.maxUpstreamsPerStream))
    public var maxUpstreamsPerStream: String?

    @Option(help: help("Bytes queued for one slow client before its upstreams are paused.", default: defaults.streamBuffer, "size"))
    public var streamBuffer: String?

    @Option(help: help("Largest known remainder read and discarded after a full prefix, to reuse the connection.", default: defaults.drainLimit, "size"))
    public var drainLimit: String?

    @Option(help: help("Interval between ': ping' comments on an idle stream.", default: seconds(defaults.heartbeat), "duration"))
    public var heartbeat: String?

    @Option(name: .customLong("cors"), help: ArgumentHelp(
        "An origin allowed for browser clients, like https://example.com, or *; repeatable. (default: none)",
        valueName: "origin"
    ))
    public var cors: [String] = []

    @Flag(inversion: .prefixedNo, help: "Share upstream fetches among concurrent streams of every route that does not say otherwise (only for bodies that are the same for every client). (default: off)")
    public var coalesce: Bool?

    @Option(help: help("Seconds a completed shared fetch serves streams that start after it (needs --coalesce; 0: none).", default: seconds(defaults.cacheFor), "duration"))
    public var cacheFor: String?

    @Flag(inversion: .prefixedNo, help: "Let browsers send credentials with cross-origin streams. (default: off)")
    public var corsCredentials: Bool?

    @Option(help: ArgumentHelp("PEM file of extra CA certificates for HTTPS upstreams. (default: none)", valueName: "file"))
    public var caFile: String?

    @Option(help: help("File of name servers, search domains and options (resolv.conf format) for resolving upstream hosts.", default: defaults.resolvConf, "file"))
    public var resolvConf: String?

    @Option(help: help("Hosts file consulted before DNS for upstream hosts.", default: defaults.hostsFile, "file"))
    public var hostsFile: String?
    @Option(help: help("HTTP versions spoken upstream: auto (HTTP/2 where an HTTPS origin offers it, else HTTP/1.1) or 1.1.", default: defaults.upstreamHTTP, "version"))
    public var upstreamHTTP: String?

    @Option(help: help("HTTP/2 streams one upstream connection carries at once, 1...1000.", default: defaults.maxStreamsPerConnection))
    public var maxStreamsPerConnection: String?

    @Option(help: help("Time open streams get to finish on SIGTERM/SIGINT.", default: seconds(defaults.shutdownGrace), "duration"))
    public var shutdownGrace: String?

    @Option(help: help("Time a client may take to send its request headers.", default: seconds(defaults.requestHeaderTimeout), "duration"))
    public var requestHeaderTimeout: String?

    @Flag(inversion: .prefixedNo, help: "Share the listen port with another process on purpose (a restart on the same port). (default: off: exit 2 if the port is served)")
    public var reusePort: Bool?

    @Option(help: help("Log level: \(ProxyConfig.logLevels.joined(separator: ", ")).", default: defaults.logLevel, "level"))
    public var logLevel: String?

    public init() {}

    /// The configuration to run with: the defaults, then the `--config` file, then the flags,
    /// then `validated()`.
    public func resolve() throws(ConfigError) -> ProxyConfig {
        var config = ProxyConfig()
        if let configFile {
            try config.apply(fileAt: configFile)
        }
        try applyFlags(to: &config)
        return try config.validated()
    }

    private func applyFlags(to config: inout ProxyConfig) throws(ConfigError) {
        if let listen {
            (config.listenHost, config.listenPort) = try ConfigSyntax.listenAddress(listen, field: "--listen")
        }
        try set(&config.workers, workers, "--workers", ConfigSyntax.integer)
        if !routes.isEmpty {
            config.routes = try routes.map { spec throws(ConfigError) in try RouteConfig(flag: spec) }
        }
        if let defaultRoute { config.defaultRoute = defaultRoute }
        try set(&config.prefix, prefix, "--prefix", ConfigSyntax.byteSize)
        try set(&config.maxPrefix, maxPrefix, "--max-prefix", ConfigSyntax.byteSize)
        if let coalesce { config.coalesce = coalesce }
        try set(&config.cacheFor, cacheFor, "--cache-for", ConfigSyntax.duration)
        try set(&config.maxConnections, maxConnections, "--max-connections", ConfigSyntax.integer)
        try set(&config.maxConnectionsPerHost, maxConnectionsPerHost, "--max-connections-per-host", ConfigSyntax.integer)
        try set(&config.maxKeepalive, maxKeepalive, "--max-keepalive", ConfigSyntax.integer)
        try set(&config.keepaliveExpiry, keepaliveExpiry, "--keepalive-expiry", ConfigSyntax.duration)
        try set(&config.connectTimeout, connectTimeout, "--connect-timeout", ConfigSyntax.duration)
        try set(&config.readTimeout, readTimeout, "--read-timeout", ConfigSyntax.duration)
        try set(&config.totalTimeout, totalTimeout, "--total-timeout", ConfigSyntax.duration)
        try set(&config.poolTimeout, poolTimeout, "--pool-timeout", ConfigSyntax.duration)
        try set(&config.maxStreams, maxStreams, "--max-streams", ConfigSyntax.integer)
        try set(&config.maxUpstreamsPerStream, maxUpstreamsPerStream, "--max-upstreams-per-stream", ConfigSyntax.integer)
        try set(&config.streamBuffer, streamBuffer, "--stream-buffer", ConfigSyntax.byteSize)
        try set(&config.drainLimit, drainLimit, "--drain-limit", ConfigSyntax.byteSize)
        try set(&config.heartbeat, heartbeat, "--heartbeat", ConfigSyntax.duration)
        if !cors.isEmpty { config.cors = cors }
        if let corsCredentials { config.corsCredentials = corsCredentials }
        if let caFile { config.caFile = caFile }
        if let resolvConf { config.resolvConf = resolvConf }
        if let hostsFile { config.hostsFile = hostsFile }
        if let upstreamHTTP { config.upstreamHTTP = upstreamHTTP }
        try set(&config.maxStreamsPerConnection, maxStreamsPerConnection, "--max-streams-per-connection", ConfigSyntax.integer)
        try set(&config.shutdownGrace, shutdownGrace, "--shutdown-grace", ConfigSyntax.duration)
        try set(&config.requestHeaderTimeout, requestHeaderTimeout, "--request-header-timeout", ConfigSyntax.duration)
        if let reusePort { config.reusePort = reusePort }
        if let logLevel { config.logLevel = logLevel }
    }

    /// Parses `text`, when the flag was given, into `target`, naming `flag` in errors.
    private func set<Value>(
        _ target: inout Value, _ text: String?, _ flag: String,
        _ parse: (String, String) throws(ConfigError) -> Value
    ) throws(ConfigError) {
        if let text { target = try parse(text, flag) }
    }

    private static let defaults = ProxyConfig()

    /// Help text ending in the setting's default, so `--help` documents the defaults of §3.
    private static func help(_ abstract: String, default value: some CustomStringConvertible, _ valueName: String = "n") -> ArgumentHelp {
        ArgumentHelp("\(abstract) (default: \(value))", valueName: valueName)
    }

    /// `5.0` as `5s`, as a duration is usually written.
    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(value)s"
    }
}
