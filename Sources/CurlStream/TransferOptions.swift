import EventLoop

/// Timeouts and settings for every transfer of a ``CurlMulti``; the connection limits are the
/// ``ConnectionBudget``'s. The names and meanings follow the pool settings of well-known HTTP
/// clients (httpx, AsyncHTTPClient).
public struct TransferOptions: Sendable, Equatable {
    /// Seconds an idle connection is kept.
    public var keepaliveExpiry: Double = 5
    /// Seconds for the TCP (and TLS) connect, and for a host name lookup before it.
    public var connectTimeout: Double = 5
    /// Seconds for the whole transfer, from the moment it gets a connection slot.
    public var totalTimeout: Double = 30
    /// Seconds a transfer may wait for a connection slot.
    public var poolTimeout: Double = 5
    /// After a consumer's ``TransferDirective/finish``, a known remainder of at most this many bytes is read and
    /// discarded so the connection can be reused; a larger or unknown one is cut.
    public var drainLimit = 64 * 1024
    /// Redirects followed before the transfer fails with a protocol error.
    public var maxRedirects = 5
    /// PEM file of extra CA certificates (the system store stays trusted).
    public var caFile: String?
    /// SO_RCVBUF of upstream sockets. libcurl 7.88 keeps reading a paused transfer's socket
    /// while data is pending, buffering it; a fixed receive buffer bounds that (and TCP flow
    /// control then holds the upstream back).
    public var socketReceiveBuffer: Int32 = 64 * 1024
    /// libcurl's receive buffer per transfer (CURLOPT_BUFFERSIZE; 1 KiB to 512 KiB): the most one
    /// read takes from an upstream socket: 16 KiB, libcurl's default. Every open transfer holds
    /// one, but a body read past its prefix (a remainder drained for reuse) costs two system calls
    /// per buffer (a `recvfrom`, and libcurl's `poll` for more): at 2 KiB, draining five 64 KiB
    /// remainders took 352 system calls a stream against W1's 34, at 16 KiB 73. It costs an open
    /// stream 2 to 4 KiB more resident memory than 2 KiB (W6 in make bench: 20.4 -> 22.4 KiB).
    public var receiveBufferSize = 16 * 1024
    /// Where each worker's resolver reads its name servers and hosts file (host names are
    /// resolved on the loop; libcurl is handed the addresses).
    public var resolver = ResolverSettings()
    /// The User-Agent sent upstream.
    public var userAgent = "stream-proxy"
    /// Which HTTP versions upstream transfers may speak.
    public var upstreamHTTP = UpstreamHTTP.auto
    /// HTTP/2 streams one upstream connection carries at once (CURLMOPT_MAX_CONCURRENT_STREAMS,
    /// and the pool's count of what a multiplexed connection holds). A server that allows fewer
    /// gets more connections, within the pool's limits.
    public var maxStreamsPerConnection = 100

    public init() {}
}

/// The HTTP versions spoken to upstreams.
public enum UpstreamHTTP: String, Sendable, Equatable, CaseIterable {
    /// HTTP/2 where an HTTPS origin offers it by ALPN, multiplexing concurrent transfers to one
    /// host on one connection; HTTP/1.1 otherwise.
    case auto
    /// HTTP/1.1 only: one transfer per connection at a time.
    case http1_1 = "1.1"
}
