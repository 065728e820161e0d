import CEvent
import Synchronization

/// A share of the upstream connection limits: the most connections one ``CurlMulti`` may hold
/// open (in use or idle), in all and to one host.
///
/// A *lease* is the right to hold one open connection. The multi takes a lease before libcurl
/// opens a connection (in our open-socket callback) and gives it back when libcurl closes it, so
/// open connections never exceed the share. The proxy gives each worker a fixed share of the
/// configured limits, so the limits hold for the whole process with no state shared between
/// workers. Counters are atomic only so that metrics can read them from another thread.
public final class ConnectionBudget: Sendable {
    public let maxConnections: Int
    public let maxConnectionsPerHost: Int
    private let open = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    private let hosts = Mutex<[String: HostLeases]>([:])

    public init(maxConnections: Int, maxConnectionsPerHost: Int) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerHost = maxConnectionsPerHost
    }

    /// Connections open now.
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// The most connections open at once since start.
    public var peakConnections: Int { peak.load(ordering: .relaxed) }

    /// The lease counter of `hostKey` (created on first use; the ledger caches it).
    func host(_ hostKey: String) -> HostLeases {
        hosts.withLock { table in
            if let h = table[hostKey] { return h }
            let h = HostLeases(key: hostKey)
            table[hostKey] = h
            return h
        }
    }

    /// Takes a lease for one connection to `host`; false at either limit. Only the owning
    /// multi's loop takes and returns leases (one writer), so check-then-add is exact.
    func tryAcquire(_ host: HostLeases) -> Bool {
        guard open.load(ordering: .relaxed) < maxConnections,
              host.open.load(ordering: .relaxed) < maxConnectionsPerHost else { return false }
        host.open.add(1, ordering: .relaxed)
        let now = open.add(1, ordering: .relaxed).newValue
        if now > peak.load(ordering: .relaxed) { peak.store(now, ordering: .relaxed) }
        return true
    }

    /// Returns a lease.
    func release(_ host: HostLeases) {
        host.open.subtract(1, ordering: .relaxed)
        open.subtract(1, ordering: .relaxed)
    }
}

/// Leases held for one `scheme://host:port`.
final class HostLeases: Sendable {
    let key: String
    let open = Atomic<Int>(0)
    init(key: String) { self.key = key }
}
