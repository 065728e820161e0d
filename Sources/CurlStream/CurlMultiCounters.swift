import CCurl
import Synchronization

/// What a ``CurlMulti`` has done, readable from any thread (for metrics).
///
/// Only the multi's loop writes, with relaxed atomic adds to counters no other thread writes (so
/// no contention); any thread may read them.
public final class CurlMultiCounters: Sendable {
    /// Transfers holding a connection (reading, draining or being cut).
    public let active = Atomic<Int>(0)
    /// Transfers waiting for a connection slot.
    public let queued = Atomic<Int>(0)
    public let started = Atomic<Int>(0)
    public let succeeded = Atomic<Int>(0)
    /// Transfers that ran on a new connection.
    public let connectionsOpened = Atomic<Int>(0)
    /// Transfers that ran on a kept-alive connection.
    public let connectionsReused = Atomic<Int>(0)
    /// Transfers whose remainder was read and discarded after `finish` (connection kept).
    public let drained = Atomic<Int>(0)
    /// Transfers cut after `finish` or `cancel` (connection closed).
    public let cut = Atomic<Int>(0)
    /// Idle connections given up (shut down) so that their lease could serve a waiting transfer
    /// or to keep idle connections within maxKeepalive.
    public let givenUp = Atomic<Int>(0)
    /// Times another worker asked this one to look at its pool (a lease came free, or a
    /// connection it holds idle is wanted).
    public let pokes = Atomic<Int>(0)
    /// Transfers waiting for their host's lookup (before they wait for a slot).
    public let resolving = Atomic<Int>(0)
    /// Times libcurl started resolving a host name itself (it had no address for it): each
    /// would be a resolver thread. Host names are resolved on the loop, so this stays 0.
    public let libcurlResolves = Atomic<Int>(0)
    /// Upstream response heads, by the HTTP version they came in.
    public let responsesHTTP10 = Atomic<Int>(0)
    public let responsesHTTP11 = Atomic<Int>(0)
    public let responsesHTTP2 = Atomic<Int>(0)
    /// Shared fetches (coalescing) started, readers that joined a running one, and readers
    /// served by one that completed within their `cacheFor`.
    public let sharedFetches = Atomic<Int>(0)
    public let sharedJoins = Atomic<Int>(0)
    public let sharedCacheHits = Atomic<Int>(0)
    /// Body bytes shared fetches hold now (each fetch's prefix, once).
    public let sharedBytes = Atomic<Int>(0)
    private let dns = Atomic<Int>(0)
    private let connect = Atomic<Int>(0)
    private let tls = Atomic<Int>(0)
    private let timeout = Atomic<Int>(0)
    private let reset = Atomic<Int>(0)
    private let protocolErrors = Atomic<Int>(0)
    private let pool = Atomic<Int>(0)
    private let internalErrors = Atomic<Int>(0)

    init() {}

    /// Transfers that failed with `kind`.
    public func failed(_ kind: TransferErrorKind) -> Int {
        withFailures(kind) { $0.load(ordering: .relaxed) }
    }

    /// `httpVersion`: CURLINFO_HTTP_VERSION (libcurl's CURL_HTTP_VERSION_ values).
    func recordResponse(httpVersion: Int) {
        switch httpVersion {
        case Int(CURL_HTTP_VERSION_1_0): responsesHTTP10.increment()
        case Int(CURL_HTTP_VERSION_1_1): responsesHTTP11.increment()
        case Int(CURL_HTTP_VERSION_2_0): responsesHTTP2.increment()
        default: break  // HTTP/3 is not built into this libcurl
        }
    }

    func recordFailure(_ kind: TransferErrorKind) {
        withFailures(kind) { $0.add(1, ordering: .relaxed) }
    }

    @discardableResult
    private func withFailures<R>(_ kind: TransferErrorKind, _ body: (borrowing Atomic<Int>) -> R) -> R {
        switch kind {
        case .dns: body(dns)
        case .connect: body(connect)
        case .tls: body(tls)
        case .timeout: body(timeout)
        case .reset: body(reset)
        case .protocol: body(protocolErrors)
        case .pool: body(pool)
        case .internal: body(internalErrors)
        }
    }
}

extension Atomic<Int> {
    /// `value + 1` with relaxed ordering: for counters with a single writer.
    @inline(__always) func increment() { add(1, ordering: .relaxed) }
    @inline(__always) func decrement() { subtract(1, ordering: .relaxed) }
    @inline(__always) var value: Int { load(ordering: .relaxed) }
}
