import CurlStream
import Foundation

/// Checks a whole configuration before anything starts, so that a bad value fails at once with a
/// message naming its field, instead of as odd behaviour under load.
extension ProxyConfig {
    /// The log levels of swift-log, lowest first.
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// Durations are capped at a day: longer is a mistake for a proxy whose transfers are bounded
    /// prefixes, and the cap keeps conversions to integer milliseconds (libcurl) from overflowing.
    static let longestDuration = 86_400.0

    /// `self` if every field is usable, else the first problem found.
    public func validated() throws(ConfigError) -> ProxyConfig {
        try checkListen()
        try check(workers, in: 1...256, "workers")
        // The limits that other checks use as bounds come first.
        try checkPositive(maxPrefix, "maxPrefix")
        try checkPositive(maxUpstreamsPerStream, "maxUpstreamsPerStream")
        try checkRoutes()
        try checkCoalescing()
        try check(prefix, in: 1...maxPrefix, "prefix", bounds: "1 and maxPrefix (\(maxPrefix))")
        // The connection limits hold for the whole process whatever `workers` is; a per-host
        // limit above the total is simply capped by it.
        try checkPositive(maxConnections, "maxConnections")
        try checkPositive(maxConnectionsPerHost, "maxConnectionsPerHost")
        try checkNotNegative(maxKeepalive, "maxKeepalive")
        try checkDuration(keepaliveExpiry, "keepaliveExpiry")
        try checkDuration(connectTimeout, "connectTimeout")
        try checkDuration(readTimeout, "readTimeout")
        try checkDuration(totalTimeout, "totalTimeout")
        try checkDuration(poolTimeout, "poolTimeout")
        try checkPositive(maxStreams, "maxStreams")
        try checkPositive(streamBuffer, "streamBuffer")
        try checkNotNegative(drainLimit, "drainLimit")
        try checkDuration(heartbeat, "heartbeat")
        try checkCORS()
        try checkCAFile()
        // Without /etc/resolv.conf the resolver asks 127.0.0.1, as glibc does; a file named
        // in the configuration must be there.
        if resolvConf != ProxyConfig().resolvConf { try checkReadable(resolvConf, "resolvConf") }
        try checkReadable(hostsFile, "hostsFile")
        guard UpstreamHTTP(rawValue: upstreamHTTP) != nil else {
            throw ConfigError(field: "upstreamHTTP", problem: "must be \"auto\" or \"1.1\", got \(ConfigSyntax.quoted(upstreamHTTP))")
        }
        try check(maxStreamsPerConnection, in: 1...1000, "maxStreamsPerConnection")
        try checkDuration(shutdownGrace, "shutdownGrace", allowZero: true)
        try checkDuration(requestHeaderTimeout, "requestHeaderTimeout")
        guard Self.logLevels.contains(logLevel) else {
            throw ConfigError(field: "logLevel", problem: "must be one of \(Self.logLevels.joined(separator: ", ")), got \(ConfigSyntax.quoted(logLevel))")
        }
        return self
    }

    private func checkListen() throws(ConfigError) {
        let hostCharacters = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: ".-:%_"))
        guard !listenHost.isEmpty, listenHost.unicodeScalars.allSatisfy({ $0.isASCII && hostCharacters.contains($0) }) else {
            throw ConfigError(field: "listen", problem: "expected a host name or IP address, got \(ConfigSyntax.quoted(listenHost))")
        }
    }

    /// Durations only: a `cacheFor` where nothing coalesces is inert (every combination a
    /// user can write starts, PRODUCT.md §3), and ``warnings`` says so.
    private func checkCoalescing() throws(ConfigError) {
        try checkDuration(cacheFor, "cacheFor", allowZero: true)
        for route in routes {
            if let own = route.cacheFor { try checkDuration(own, "routes.\(route.name).cacheFor", allowZero: true) }
        }
    }

    /// Settings that are valid but do nothing, for the log at start.
    public var warnings: [String] {
        var out: [String] = []
        let inert = "has no effect: only shared fetches are cached (set \"coalesce\": true or --coalesce)"
        for route in routes {
            if let own = route.cacheFor, own > 0, !(route.coalesce ?? coalesce) {
                out.append("routes.\(route.name).cacheFor \(inert)")
            }
        }
        let someCoalesce = routes.isEmpty ? coalesce : routes.contains { $0.coalesce ?? coalesce }
        if cacheFor > 0, !someCoalesce { out.append("cacheFor \(inert)") }
        return out
    }

    private func checkRoutes() throws(ConfigError) {
        var names = Set<String>()
        for route in routes {
            try route.check(maxUpstreams: maxUpstreamsPerStream, maxPrefix: maxPrefix)
            guard names.insert(route.name).inserted else {
                throw ConfigError(field: "routes", problem: "duplicate route name \(ConfigSyntax.quoted(route.name))")
            }
        }
        guard let defaultRoute else { return }
        guard !routes.isEmpty else {
            throw ConfigError(field: "defaultRoute", problem: "no routes are configured (the built-in demo route is the default)")
        }
        guard names.contains(defaultRoute) else {
            throw ConfigError(field: "defaultRoute", problem: "no route is named \(ConfigSyntax.quoted(defaultRoute)) (routes: \(routes.map(\.name).joined(separator: ", ")))")
        }
    }

    private func checkCORS() throws(ConfigError) {
        for (index, origin) in cors.enumerated() where origin != "*" && !Self.isOrigin(origin) {
            throw ConfigError(field: "cors[\(index)]", problem: "expected \"*\" or an origin like \"https://example.com\" or \"http://localhost:3000\" (no path), got \(ConfigSyntax.quoted(origin))")
        }
        // Browsers refuse credentials with a wildcard; answering every origin instead would let
        // any site make credentialed requests, so the origins must be listed.
        guard !(corsCredentials && cors.contains("*")) else {
            throw ConfigError(field: "corsCredentials", problem: "cannot be combined with cors \"*\"; list the allowed origins instead")
        }
    }

    /// `scheme://host[:port]` exactly as a browser sends it in `Origin`, nothing more.
    private static func isOrigin(_ text: String) -> Bool {
        guard let parts = URLComponents(string: text), let scheme = parts.scheme,
              ["http", "https"].contains(scheme), let host = parts.host, !host.isEmpty
        else { return false }
        return parts.path.isEmpty && parts.user == nil && parts.password == nil
            && parts.query == nil && parts.fragment == nil
            && parts.port.map({ (1...65535).contains($0) }) ?? true
    }

    private func checkCAFile() throws(ConfigError) {
        guard let caFile else { return }
        let data: Data
        do {
            data = try ConfigFile.contents(of: caFile)
        } catch {
            throw ConfigError(field: "caFile", problem: "cannot read \(ConfigSyntax.quoted(caFile)): \(error.reason)")
        }
        guard data.range(of: Data("-----BEGIN CERTIFICATE-----".utf8)) != nil else {
            throw ConfigError(field: "caFile", problem: "\(ConfigSyntax.quoted(caFile)) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
    }

    /// The resolver's files are read by each worker when it starts: one that cannot be read
    /// stops the program now rather than leaving a worker without name servers.
    private func checkReadable(_ path: String, _ field: String) throws(ConfigError) {
        do {
            _ = try ConfigFile.contents(of: path)
        } catch {
            throw ConfigError(field: field, problem: "cannot read \(ConfigSyntax.quoted(path)): \(error.reason)")
        }
    }

    private func checkPositive(_ value: Int, _ field: String) throws(ConfigError) {
        guard value > 0 else { throw ConfigError(field: field, problem: "must be a positive integer, got \(value)") }
    }

    private func checkNotNegative(_ value: Int, _ field: String) throws(ConfigError) {
        guard value >= 0 else { throw ConfigError(field: field, problem: "must be 0 or more, got \(value)") }
    }

    private func check(_ value: Int, in range: ClosedRange<Int>, _ field: String, bounds: String? = nil) throws(ConfigError) {
        guard range.contains(value) else {
            throw ConfigError(field: field, problem: "must be between \(bounds ?? "\(range.lowerBound) and \(range.upperBound)"), got \(value)")
        }
    }

    /// At least a millisecond, the finest resolution the event loops and libcurl use (or exactly
    /// 0 with `allowZero`), and at most a day.
    private func checkDuration(_ seconds: Double, _ field: String, allowZero: Bool = false) throws(ConfigError) {
        guard (0.001...Self.longestDuration).contains(seconds) || (allowZero && seconds == 0) else {
            let range = "\(allowZero ? "0 or " : "")between 0.001 and \(Int(Self.longestDuration)) seconds"
            throw ConfigError(field: field, problem: "must be \(range), got \(seconds)")
        }
    }
}
