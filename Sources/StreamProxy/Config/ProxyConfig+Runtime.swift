import CurlStream
import EventLoop

/// The settings of the lower layers, taken from the user's configuration.
extension ProxyConfig {
    /// The upstream transfers' settings (the connection limits go to the ConnectionBudget).
    var transferOptions: TransferOptions {
        var o = TransferOptions()
        o.keepaliveExpiry = keepaliveExpiry
        o.connectTimeout = connectTimeout
        o.totalTimeout = totalTimeout
        o.poolTimeout = poolTimeout
        o.drainLimit = drainLimit
        o.caFile = caFile
        o.resolver = ResolverSettings(resolvConf: resolvConf, hostsFile: hostsFile)
        o.upstreamHTTP = UpstreamHTTP(rawValue: upstreamHTTP) ?? .auto
        o.maxStreamsPerConnection = maxStreamsPerConnection
        return o
    }

    /// The client side's settings.
    var serverOptions: HTTPServerOptions {
        var o = HTTPServerOptions()
        o.requestHeaderTimeout = requestHeaderTimeout
        let limits = o
        o.limitResponse = { limit in (jsonType.1, ErrorResponse.tooLarge(limit, options: limits).body) }
        return o
    }
}
