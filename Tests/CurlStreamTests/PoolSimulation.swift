import Synchronization
import Testing
@testable import CurlStream

/// Several worker pools sharing one ``ConnectionBudget``, with libcurl and the clock simulated:
/// each pool's actions are run as ``CurlMulti`` runs them, pokes between workers are queued
/// until the test delivers them, and a simulated connection cache per worker tracks which
/// sockets exist, so that the pools' books can be checked against it after every step.
final class PoolSimulation {
    let budget: ConnectionBudget
    var workers: [SimWorker]
    var now = ContinuousClock.now
    /// Pokes sent and not yet delivered (worker indices, at most one each, as the budget's).
    private(set) var pokes: [Int] = []
    let pokeBox = PokeBox()
    let poolTimeout: Duration
    private var nextID: UInt64 = 1

    /// Hosts that answer in HTTP/2, with the streams libcurl puts on one of their connections
    /// (the server's limit or maxStreamsPerConnection, whichever is lower).
    var multiplexed: [Int: Int] = [:]
    /// Whether transfers to `https:` hosts ask for HTTP/2 and wait to multiplex (upstreamHTTP
    /// auto), and the hosts whose transfers do so.
    let probesProtocol: Bool
    private(set) var pipewait: Set<Int> = []

    init(workers n: Int = 1, maxConnections: Int, perHost: Int, maxKeepalive: Int = 100,
         poolTimeout: Duration = .seconds(5), maxStreamsPerConnection: Int = 100, probesProtocol: Bool = false) {
        let budget = ConnectionBudget(maxConnections: maxConnections, maxConnectionsPerHost: perHost,
                                      maxKeepalive: maxKeepalive, workers: n)
        self.budget = budget
        self.poolTimeout = poolTimeout
        self.probesProtocol = probesProtocol
        workers = (0..<n).map {
            SimWorker(pool: PoolStateMachine(budget: budget, worker: $0, poolTimeout: poolTimeout,
                                             maxStreamsPerConnection: maxStreamsPerConnection, probesProtocol: probesProtocol))
        }
        for w in 0..<n {
            budget.connect(worker: w) { [box = pokeBox] in box.sent.withLock { $0.append(w) } }
        }
    }

    /// A host's local id on every worker (the same on each, as hosts are named in order).
    func host(_ key: String) -> Int {
        var id = 0
        for w in workers.indices { id = workers[w].pool.host(key) }
        if probesProtocol && key.hasPrefix("https:") { pipewait.insert(id) }
        return id
    }

    // MARK: - Events, each followed by the actions it returned

    /// A new transfer on worker `w` to `host`.
    @discardableResult
    func request(_ w: Int, host: Int) -> TransferID {
        let id = TransferID(raw: nextID)
        nextID += 1
        workers[w].hostOf[id] = host
        workers[w].waiting.insert(id)
        run(w) { $0.pool.request(id, host: host, now: now, &$1) }
        return id
    }

    /// libcurl connects admitted transfer `id`: it reuses an idle connection when `reuse` and
    /// one exists, else opens a socket (refused without a lease: then it is queued again).
    func connect(_ w: Int, _ id: TransferID, reuse: Bool) {
        if let h = workers[w].admitted[id]?.host, multiplexed[h] != nil { return connectMultiplexed(w, id) }
        guard let s = workers[w].admitted.removeValue(forKey: id) else { return }
        if reuse, workers[w].idle[s.host, default: 0] > 0 {
            workers[w].idle[s.host]! -= 1
            workers[w].connected[id] = s.host
            workers[w].headDue.insert(id)
            run(w) { $0.pool.reservationUnused(id, &$1) }
            return
        }
        var ok = false
        run(w) { ok = $0.pool.socketOpening(id, host: s.host, &$1) }
        if ok {
            workers[w].connected[id] = s.host
            workers[w].headDue.insert(id)
        } else {
            workers[w].waiting.insert(id)
            workers[w].leased.remove(id)
            run(w) { $0.pool.requeue(id, now: now, &$1) }
        }
    }

    /// Transfer `id` ends, connected or not. A connected one's socket is kept idle or closed
    /// (libcurl closes it while the transfer leaves the multi, before the shell reports the end).
    func end(_ w: Int, _ id: TransferID, keepConnection: Bool = true) {
        workers[w].leased.remove(id)
        if let h = workers[w].connected[id], multiplexed[h] != nil { return endMultiplexed(w, id, keepConnection: keepConnection) }
        if let h = workers[w].connected.removeValue(forKey: id) {
            workers[w].headDue.remove(id)
            if keepConnection {
                workers[w].idle[h, default: 0] += 1
            } else {
                run(w) { $0.pool.socketGone(host: h, &$1) }
            }
            run(w) { $0.pool.transferEnded(id, &$1) }
        } else if workers[w].admitted.removeValue(forKey: id) != nil {
            run(w) { $0.pool.transferEnded(id, &$1) }
        }
    }

    /// libcurl closes one idle connection to `host` (expired, or found dead).
    func closeIdle(_ w: Int, host: Int) {
        if multiplexed[host] != nil {
            guard workers[w].closeIdleConnection(host) else { return }
            run(w) { $0.pool.socketGone(host: host, &$1) }
            return
        }
        guard workers[w].idle[host, default: 0] > 0 else { return }
        workers[w].idle[host]! -= 1
        run(w) { $0.pool.socketGone(host: host, &$1) }
    }

    func cancelWaiting(_ w: Int, _ id: TransferID) {
        guard workers[w].waiting.remove(id) != nil else { return }
        workers[w].pool.cancelWaiting(id)
    }

    func advance(_ d: Duration) {
        now += d
        for w in workers.indices { run(w) { $0.pool.expire(now: now, &$1) } }
        if d >= PoolStateMachine.handoverDelay { handOver() }
    }

    /// Runs every scheduled hand-over (its delay has passed).
    func handOver() {
        for w in workers.indices where workers[w].handoverDue {
            workers[w].handoverDue = false
            run(w) { $0.pool.handover(&$1) }
        }
    }

    /// Delivers the oldest poke; false if none is pending.
    @discardableResult
    func deliverPoke() -> Bool {
        collectPokes()
        guard !pokes.isEmpty else { return false }
        let w = pokes.removeFirst()
        budget.pokeReceived(w)
        run(w) { $0.pool.poked(&$1) }
        return true
    }

    /// Delivers pokes, and runs hand-overs as their delay passes, until none is left (bounded:
    /// a livelock fails the test).
    func deliverAllPokes(_ step: String = "") {
        var n = 0
        while deliverPoke() || workers.contains(where: \.handoverDue) {
            handOver()
            n += 1
            if n > 10_000 {
                Issue.record("pokes never stop \(step)")
                return
            }
        }
    }

    private func collectPokes() {
        pokes += pokeBox.sent.withLock { p in defer { p.removeAll() }; return p }
    }

    /// Runs `event` on worker `w`'s pool, then the actions it returned, as the shell does.
    func run(_ w: Int, _ event: (inout SimWorker, inout [PoolAction]) -> Void) {
        var actions: [PoolAction] = []
        event(&workers[w], &actions)
        var i = 0
        while i < actions.count {
            let a = actions[i]
            i += 1
            workers[w].log.append(a)
            switch a {
            case .start(let id, let lease):
                #expect(workers[w].waiting.remove(id) != nil, "started a transfer that was not waiting")
                workers[w].admitted[id] = (workers[w].hostOf[id]!, lease)
                workers[w].started.append(id)
                if lease { workers[w].leased.insert(id) }
            case .timedOut(let id):
                #expect(workers[w].waiting.remove(id) != nil, "timed out a transfer that was not waiting")
                workers[w].timedOut.append(id)
            case .giveUpIdle(let h) where multiplexed[h] != nil:
                if workers[w].closeIdleConnection(h) {
                    workers[w].givenUp += 1
                    workers[w].pool.socketGone(host: h, &actions)
                } else {
                    workers[w].pool.noIdleConnection(host: h, &actions)
                }
            case .giveUpIdle(let h):
                if workers[w].idle[h, default: 0] > 0 {
                    workers[w].idle[h]! -= 1
                    workers[w].givenUp += 1
                    workers[w].pool.socketGone(host: h, &actions)
                } else {
                    workers[w].pool.noIdleConnection(host: h, &actions)
                }
            case .poke(let n):
                // The budget's hook queues it (coalesced per worker); delivery is the test's.
                budget.poke(n)
            case .scheduleHandover:
                workers[w].handoverDue = true
            }
        }
    }
}

/// One simulated worker: its pool and what its libcurl holds.
struct SimWorker {
    var pool: PoolStateMachine
    var hostOf: [TransferID: Int] = [:]
    /// Transfers the pool has not started (or sent back), as the shell sees them.
    var waiting: Set<TransferID> = []
    /// Started, not yet connected: host and whether they hold a lease.
    var admitted: [TransferID: (host: Int, lease: Bool)] = [:]
    /// Connected: the host of the socket each uses.
    var connected: [TransferID: Int] = [:]
    /// Idle sockets per host in libcurl's cache.
    var idle: [Int: Int] = [:]
    var started: [TransferID] = []
    /// Running transfers that were started with a lease.
    var leased: Set<TransferID> = []
    var timedOut: [TransferID] = []
    var givenUp = 0
    /// A hand-over was scheduled and has not run (``PoolSimulation/handOver()`` runs it).
    var handoverDue = false
    var log: [PoolAction] = []
    /// Connections to multiplexed hosts: per host, the streams on each connection (by id), and
    /// whether it is up (its first response arrived: libcurl multiplexes onto it only then).
    var streams: [Int: [Int: Int]] = [:]
    var up: Set<Int> = []
    var nextConnection = 0
    /// Connected transfers of multiplexed hosts: their connection. Connected transfers whose
    /// response head is due, and the hosts a head has come from.
    var connectionOf: [TransferID: Int] = [:]
    var headDue: Set<TransferID> = []
    var answered: Set<Int> = []

    init(pool: PoolStateMachine) { self.pool = pool }

    /// Sockets open per host: in use or idle.
    func sockets(_ h: Int) -> Int {
        if let s = streams[h] { return s.count }
        return connected.values.filter { $0 == h }.count + idle[h, default: 0]
    }

    /// Closes a connection to multiplexed host `h` that carries no stream; false if none does.
    mutating func closeIdleConnection(_ h: Int) -> Bool {
        guard let c = streams[h]?.first(where: { $0.value == 0 })?.key else { return false }
        streams[h]![c] = nil
        up.remove(c)
        return true
    }
    /// Leases granted at admission and not yet used by a socket or returned.
    func reservations(_ h: Int) -> Int { admitted.values.filter { $0.host == h && $0.lease }.count }
}

/// Pokes the budget sent (its hook is `@Sendable`, hence the lock; the test is one thread).
final class PokeBox: Sendable {
    let sent = Mutex<[Int]>([])
}
