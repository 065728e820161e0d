import CEvent
import Synchronization

/// The process-wide upstream connection limits, shared by every ``CurlMulti``.
///
/// A *lease* is the right to hold one open upstream connection (in use or idle). A multi takes a
/// lease before libcurl opens a connection and gives it back when libcurl closes it, so open
/// connections never exceed `maxConnections` in all or `maxConnectionsPerHost` to one host,
/// however many workers there are. Taking and returning a lease is a couple of atomic
/// operations; there is no lock on that path.
///
/// When a multi cannot get a lease it may be because another multi holds idle connections:
/// it then asks the others (``requestIdleRelease(for:)``) to close theirs, and every multi that
/// waits is woken when a lease comes back.
public final class ConnectionBudget: Sendable {
    public let maxConnections: Int
    public let maxConnectionsPerHost: Int
    private let open = Atomic<Int>(0)
    private let hosts = Mutex<[String: HostLeases]>([:])
    private let members = Mutex<[BudgetMember]>([])
    /// Members with transfers waiting for a lease; checked before taking the members lock.
    private let waitingMembers = Atomic<Int>(0)

    public init(maxConnections: Int, maxConnectionsPerHost: Int) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerHost = maxConnectionsPerHost
    }

    /// Connections open now, process-wide.
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// The most connections open at once since start.
    public var peakConnections: Int { peak.load(ordering: .relaxed) }
    private let peak = Atomic<Int>(0)

    /// Whether the process-wide limit is reached while some multi waits for a lease.
    var totalStarved: Bool {
        waitingMembers.load(ordering: .relaxed) > 0 && open.load(ordering: .relaxed) >= maxConnections
    }

    /// The lease counter of `hostKey` (created on first use; a multi caches it).
    func host(_ hostKey: String) -> HostLeases {
        hosts.withLock { table in
            if let h = table[hostKey] { return h }
            let h = HostLeases(key: hostKey)
            table[hostKey] = h
            return h
        }
    }

    /// Takes a lease for one connection to `host`; false at either limit.
    func tryAcquire(_ host: HostLeases) -> Bool {
        guard Self.increment(open, below: maxConnections) else { return false }
        guard Self.increment(host.open, below: maxConnectionsPerHost) else {
            open.subtract(1, ordering: .acquiringAndReleasing)
            return false
        }
        let now = open.load(ordering: .relaxed)
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (done, current) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if done { break }
            seen = current
        }
        return true
    }

    /// Returns a lease and wakes the multis waiting for one (the lock is taken only when some
    /// multi waits, i.e. when the limits are actually reached).
    func release(_ host: HostLeases) {
        host.open.subtract(1, ordering: .acquiringAndReleasing)
        open.subtract(1, ordering: .acquiringAndReleasing)
        guard waitingMembers.load(ordering: .acquiring) > 0 else { return }
        for m in members.withLock({ $0 }) where m.waiting.load(ordering: .relaxed) { m.wake() }
    }

    /// Records whether `member` has transfers waiting for a lease.
    func setWaiting(_ member: BudgetMember, _ waiting: Bool) {
        guard member.waiting.exchange(waiting, ordering: .acquiringAndReleasing) != waiting else { return }
        if waiting {
            waitingMembers.add(1, ordering: .acquiringAndReleasing)
        } else {
            waitingMembers.subtract(1, ordering: .acquiringAndReleasing)
        }
    }

    /// Asks every other multi to close idle connections to `host` (or to any host when the
    /// process-wide limit is what is full).
    func requestIdleRelease(for host: HostLeases, from requester: BudgetMember) {
        let anyHost = open.load(ordering: .relaxed) >= maxConnections
        for m in members.withLock({ $0 }) where m !== requester {
            m.wantIdleReleased(anyHost ? nil : host)
        }
    }

    func join(_ member: BudgetMember) { members.withLock { $0.append(member) } }

    func leave(_ member: BudgetMember) {
        setWaiting(member, false)
        members.withLock { $0.removeAll { $0 === member } }
    }

    private static func increment(_ counter: borrowing Atomic<Int>, below limit: Int) -> Bool {
        var current = counter.load(ordering: .relaxed)
        while current < limit {
            let (done, now) = counter.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if done { return true }
            current = now
        }
        return false
    }
}

/// Leases held for one `scheme://host:port`, process-wide.
final class HostLeases: Sendable {
    let key: String
    let open = Atomic<Int>(0)
    /// Multis that have transfers waiting for a lease to this host: a multi that finishes a
    /// transfer to it then closes the connection instead of keeping it idle.
    let starvedMembers = Atomic<Int>(0)
    init(key: String) { self.key = key }
}

/// One multi's membership of a budget: how the budget wakes it from another thread.
final class BudgetMember: Sendable {
    /// The multi has transfers waiting for a lease.
    let waiting = Atomic<Bool>(false)
    private let wakePending = Atomic<Bool>(false)
    private let idleWanted = Mutex<(any: Bool, hosts: Set<String>)>((false, []))
    private let event: WakeableEvent

    init(event: WakeableEvent) { self.event = event }

    func wake() {
        if wakePending.exchange(true, ordering: .acquiringAndReleasing) == false { event.activate() }
    }

    func wantIdleReleased(_ host: HostLeases?) {
        idleWanted.withLock { w in
            if let host { w.hosts.insert(host.key) } else { w.any = true }
        }
        wake()
    }

    /// On the multi's loop: clears the wake and takes the idle-release requests made since.
    func takeRequests() -> (any: Bool, hosts: Set<String>) {
        wakePending.store(false, ordering: .releasing)
        return idleWanted.withLock { w in
            defer { w = (false, []) }
            return w
        }
    }
}

/// A libevent event that other threads may activate (the base has pthread locking enabled).
struct WakeableEvent: @unchecked Sendable {
    let raw: OpaquePointer
    func activate() { event_active(raw, Int32(CEvent_EV_TIMEOUT), 0) }
}
