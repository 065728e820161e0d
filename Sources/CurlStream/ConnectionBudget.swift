import EventLoop
import Synchronization

/// The upstream connection limits of the whole process, shared by every worker's pool.
///
/// A *lease* is the right to hold one open connection. A worker takes one before libcurl may
/// open a socket and returns it exactly once, when the socket is gone or given up; so open
/// connections never exceed `maxConnections` in all or `maxConnectionsPerHost` to one host,
/// whatever the number of workers, and any one worker may hold every lease. The counters are
/// atomics (compare-and-swap, no lock): every worker takes and returns leases on its own thread.
///
/// Workers cannot hand each other libcurl connections, so the budget also carries what they need
/// to cooperate (Envoy's shape: per-worker pools under process-wide budgets): each worker
/// publishes how many of its transfers wait (per host, and for the total) and how many idle
/// connections it holds (per host). A worker that returns a lease pokes the workers that wait;
/// a worker that waits pokes the ones holding idle connections, which give one up on their own
/// thread. Pokes are coalesced (one in flight per worker) and rare: they happen only while some
/// transfer waits.
public final class ConnectionBudget: Sendable {
    public let maxConnections: Int
    /// The per-host limit as it applies: the configured one, capped by `maxConnections`.
    public let maxConnectionsPerHost: Int
    /// Idle connections kept for reuse, in all.
    public let maxKeepalive: Int
    /// How many worker pools share the budget (indices `0..<workers`).
    public let workers: Int

    private let open = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)
    /// Idle connections held, all workers together.
    let idle = Atomic<Int>(0)
    /// Transfers waiting because the total is reached, all workers together.
    let waitingOnTotal = Atomic<Int>(0)
    let published: [PublishedWorker]
    /// Looked up once per host and worker (the pool keeps the result); a pthread lock, which
    /// ThreadSanitizer sees (see ``PthreadLock``).
    private let hosts = PthreadLock<[String: HostBudget]>([:])

    public init(maxConnections: Int, maxConnectionsPerHost: Int, maxKeepalive: Int, workers: Int = 1) {
        precondition(maxConnections > 0 && maxConnectionsPerHost > 0 && maxKeepalive >= 0 && workers > 0)
        self.maxConnections = maxConnections
        self.maxConnectionsPerHost = min(maxConnectionsPerHost, maxConnections)
        self.maxKeepalive = maxKeepalive
        self.workers = workers
        published = (0..<workers).map { _ in PublishedWorker() }
    }

    /// Connections open now (sockets plus leases about to become sockets).
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// The most connections open at once since start.
    public var peakConnections: Int { peak.load(ordering: .relaxed) }

    /// Idle connections held by all workers.
    public var idleConnections: Int { idle.load(ordering: .relaxed) }

    /// The budget of `hostKey` (created on first use; pools cache it, so this lock is taken once
    /// per host and worker, not per transfer).
    func host(_ hostKey: String) -> HostBudget {
        hosts.withLock { table in
            if let h = table[hostKey] { return h }
            let h = HostBudget(key: hostKey, workers: workers)
            table[hostKey] = h
            return h
        }
    }

    enum Grant: Equatable {
        case granted
        /// The host is at `maxConnectionsPerHost`.
        case hostFull
        /// The process is at `maxConnections`.
        case totalFull
    }

    /// Takes a lease for one connection to `host`, if both limits allow it.
    func tryAcquire(_ host: HostBudget) -> Grant {
        var h = host.open.load(ordering: .sequentiallyConsistent)
        while true {
            guard h < maxConnectionsPerHost else { return .hostFull }
            let (done, now) = host.open.compareExchange(expected: h, desired: h + 1, ordering: .sequentiallyConsistent)
            if done { break }
            h = now
        }
        var t = open.load(ordering: .sequentiallyConsistent)
        while true {
            guard t < maxConnections else {
                host.open.subtract(1, ordering: .sequentiallyConsistent)
                return .totalFull
            }
            let (done, now) = open.compareExchange(expected: t, desired: t + 1, ordering: .sequentiallyConsistent)
            if done { break }
            t = now
        }
        peak.raise(toAtLeast: t + 1)
        return .granted
    }

    /// Whether a lease of `host` could be taken now.
    func hasRoom(_ host: HostBudget) -> Bool {
        host.open.load(ordering: .sequentiallyConsistent) < maxConnectionsPerHost
            && open.load(ordering: .sequentiallyConsistent) < maxConnections
    }

    /// Returns a lease. The caller then pokes the workers that wait (``wanting(_:excluding:)``):
    /// they published their wait before retrying, and sequentially consistent order means
    /// either their retry sees this release or this worker sees their wait.
    func release(_ host: HostBudget) {
        host.open.subtract(1, ordering: .sequentiallyConsistent)
        open.subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Workers other than `me` with transfers that a lease of `host` would let run.
    func wanting(_ host: HostBudget, excluding me: Int) -> [Int] {
        guard host.waitingSum.load(ordering: .sequentiallyConsistent) > 0
                || waitingOnTotal.load(ordering: .sequentiallyConsistent) > 0 else { return [] }
        return (0..<workers).filter { w in
            w != me && (host.waiting[w].value > 0 || published[w].waitingOnTotal.value > 0)
        }
    }

    /// How many workers compete for a limit: `me`, and every other worker with transfers
    /// waiting (`waiting` per worker).
    func competing(_ waiting: [Counter], me: Int) -> Int {
        1 + waiting.indices.filter { $0 != me && waiting[$0].value > 0 }.count
    }

    /// Whether a worker other than `me` waits while clearly short of `share`: holding under
    /// three quarters of it. The margin keeps two busy workers from trading connections back
    /// and forth as their demand shifts a little (each trade costs a new connection).
    func anyShort(of share: Int, waiting: [Counter], held: [Counter], excluding me: Int) -> Bool {
        waiting.indices.contains { $0 != me && waiting[$0].value > 0 && held[$0].value * 4 < share * 3 }
    }

    /// Workers other than `me` holding idle connections to `host` (or to any host, if nil).
    func holdingIdle(_ host: HostBudget?, excluding me: Int) -> [Int] {
        (0..<workers).filter { w in
            w != me && (host.map { $0.idle[w].value > 0 } ?? (published[w].idle.value > 0))
        }
    }

    /// Where pokes for worker `n` go: set once by its pool's owner, on the worker's thread.
    func connect(worker n: Int, poke: @escaping @Sendable () -> Void) {
        published[n].link.withLock { $0 = PokeLink(poke) }
    }

    /// Worker `n` is looking at its pool: pokes sent from now on are new.
    func pokeReceived(_ n: Int) {
        published[n].pokePending.store(false, ordering: .releasing)
    }

    func disconnect(worker n: Int) {
        published[n].link.withLock { $0 = nil }
    }

    /// Asks worker `n` to look at its pool again (retry waiting transfers, give up idle
    /// connections others wait for). At most one poke per worker is in flight.
    func poke(_ n: Int) {
        guard !published[n].pokePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let link = published[n].link.withLock { $0 }
        if let link { link.poke() } else { published[n].pokePending.store(false, ordering: .releasing) }
    }
}

/// What one worker publishes to the others.
final class PublishedWorker: Sendable {
    /// Its transfers waiting because the total is reached.
    let waitingOnTotal = Counter()
    /// Its idle connections, all hosts.
    let idle = Counter()
    /// The leases it holds, all hosts.
    let held = Counter()
    /// A poke is on its way to this worker (cleared by the worker before it looks).
    let pokePending = Atomic<Bool>(false)
    /// A hand-over is scheduled on this worker: it will look at what others wait for when it
    /// runs (it clears this first), so poking it about its idle connections meanwhile is moot.
    let handoverPending = Atomic<Bool>(false)
    let link = PthreadLock<PokeLink?>(nil)
}

/// A worker's poke, boxed. A closure kept directly in the generic lock would be re-abstracted
/// by every `withLock` that reads it (`inout` of a generic value) and written back wrapped in
/// two more thunks: one deeper call per poke, without end. A class reference is not.
final class PokeLink: Sendable {
    let poke: @Sendable () -> Void
    init(_ poke: @escaping @Sendable () -> Void) { self.poke = poke }
}

/// The budget of one `scheme://host:port`.
final class HostBudget: Sendable {
    let key: String
    /// Leases held, all workers together.
    let open = Atomic<Int>(0)
    /// Transfers waiting for this host because it is at its limit, per worker, and their sum.
    let waiting: [Counter]
    let waitingSum = Atomic<Int>(0)
    /// Idle connections to this host, per worker.
    let idle: [Counter]
    /// Leases of this host held, per worker.
    let held: [Counter]

    init(key: String, workers: Int) {
        self.key = key
        waiting = (0..<workers).map { _ in Counter() }
        idle = (0..<workers).map { _ in Counter() }
        held = (0..<workers).map { _ in Counter() }
    }
}

/// One atomic integer in its own object, so that arrays of them can exist.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    var value: Int { atomic.load(ordering: .sequentiallyConsistent) }
    /// Sets the value (single writer) and returns the change.
    func set(_ v: Int) -> Int {
        v - atomic.exchange(v, ordering: .sequentiallyConsistent)
    }
}

extension Atomic<Int> {
    /// Raises the value to at least `v`.
    func raise(toAtLeast v: Int) {
        var current = load(ordering: .relaxed)
        while current < v {
            let (done, now) = compareExchange(expected: current, desired: v, ordering: .relaxed)
            if done { return }
            current = now
        }
    }
}
