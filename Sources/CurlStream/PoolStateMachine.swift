/// One worker's upstream pool: which transfer gets a connection and when, within the
/// process-wide ``ConnectionBudget``.
///
/// A value type that takes events and appends actions; it never touches libcurl, a socket or a
/// clock (time comes in as `now`), so every decision is tested without I/O. Its owner
/// (``CurlMulti``) feeds it what libcurl reports and runs the actions after libcurl returns.
///
/// Per host it counts the leases this worker holds (`open`: sockets, and leases granted to
/// transfers that have not opened their socket yet) and the transfers holding a connection
/// (`busy`); `open - busy` is the idle connections libcurl keeps for reuse. A transfer starts
/// at once on an idle connection or with a new lease; else it waits in its host's FIFO, and the
/// host is blocked on its own limit or on the total. Every ending returns what it held exactly
/// once, and each return is offered first to this worker's waiters (its host's FIFO, then hosts
/// blocked on the total, oldest block first), then to other workers by a poke. A connection that
/// goes idle with nobody here wanting it is handed to a waiting worker after `handoverDelay`, and
/// two busy workers settle at an even split of a limit (``owesPeers(_:)``). No operation scans
/// the waiting transfers.
///
/// A host that answers in HTTP/2 (``protocolSeen(host:multiplexed:_:)``) is *multiplexed*: each of
/// its connections carries up to `maxStreamsPerConnection` transfers, so its waiters start
/// without a lease while its connections have free streams (``freeStreams(_:)``), and take a
/// lease (a new connection, one at a time) only beyond that. The limits still count connections
/// (leases); a multiplexed connection counts as idle only when the counts prove it (`open − busy`).
/// Until an HTTPS host's first response shows which it is, one transfer probes it (+Probe).
struct PoolStateMachine {
    typealias Instant = ContinuousClock.Instant

    let budget: ConnectionBudget
    /// This pool's index among the budget's workers.
    let worker: Int
    let poolTimeout: Duration
    /// Transfers one connection of a multiplexed host carries at once.
    let maxStreamsPerConnection: Int
    /// Transfers to `https:` hosts wait to multiplex (CURLOPT_PIPEWAIT: upstreamHTTP auto, see
    /// Transfer+Setup): such a host is probed until its protocol is known.
    let probesProtocol: Bool

    var hosts: [Host] = []
    private var hostIDs: [String: Int] = [:]
    var waiters: [TransferID: Waiter] = [:]
    /// Every wait in arrival order (deadlines are arrival + poolTimeout, so also deadline order);
    /// entries of transfers no longer waiting are skipped when they reach the front.
    var expiries = FIFO<Entry>()
    var running: [TransferID: Running] = [:]
    /// Hosts blocked on the total, in the order they blocked (each at most once).
    var totalQueue = FIFO<Int>()
    private var sequence: UInt64 = 0
    /// Waiting transfers of hosts blocked on the total (published in the budget).
    var waitingOnTotal = 0
    /// Hosts with idle connections (published idle > 0).
    var idleHosts = Set<Int>()
    /// Hosts with idle connections that other workers wait for, to hand over after the delay.
    var pendingHandover = Set<Int>()
    var handoverScheduled = false
    /// How long a connection that went idle stays offered to this worker's own next transfers
    /// before it is handed over to another worker that waits (the shell's timer; the value is
    /// here so that the decision and its delay are documented together). Each hand-over costs
    /// the other worker a new connection, and on two busy cores a client's next stream often
    /// comes more than 5 ms after its last: at 5 ms, W8 (TLS, c=10, two workers sharing 10
    /// connections) handed over thousands of connections in some 10 s runs (reuse 97.9%, each
    /// reconnect about 1 ms of CPU); at 20 ms, 27 to 90 a run; at 50 ms, 1 to 44.
    static let handoverDelay: Duration = .milliseconds(20)

    struct Host {
        let budget: HostBudget
        var queue = FIFO<Entry>()
        /// Live entries of `queue`.
        var waiting = 0
        var open = 0
        var busy = 0
        /// Transfers holding a lease that no socket has taken yet (counted in `open` and `busy`).
        var reserved = 0
        var block = Block.none
        var inTotalQueue = false
        /// A give-up found no idle socket although the counts said so: not offered as idle
        /// again until the counts change.
        var idleSuspect = false
        /// Give-ups under way whose lease is owed to other workers (see `owesPeers`): not
        /// taken back by this worker's waiters.
        var owedGiveUps = 0
        var published = (host: 0, total: 0, idle: 0, held: 0)
        /// Responses arrive in HTTP/2: a connection carries several transfers.
        var multiplexed = false
        /// Transfers the connections were carrying when libcurl found them all full (the server
        /// allows fewer streams than maxStreamsPerConnection): the most assumed until the host
        /// gains a lease, a new connection shows up, or one goes idle.
        var fullAt: Int?
        /// Transfers opening a new connection of a multiplexed host (`opensConnection`), and
        /// those of them whose socket is open.
        var connecting = 0
        var connectingSockets = 0
        /// No response has shown yet whether the host multiplexes: one transfer runs (`probe`).
        var awaitsProtocol = false
        var probe: TransferID?
        /// Until when the other waiters are held for the probe's head; past it they take leases
        /// as for an HTTP/1.1 host (see PoolStateMachine+Probe). Nil: no probe has run yet.
        var holdUntil: Instant?
        var holdReleased = false

        var idle: Int { idleSuspect ? 0 : max(0, open - busy) }
    }

    enum Block: Equatable {
        case none
        /// The host is at `maxConnectionsPerHost` (all workers together).
        case onHost
        /// The process is at `maxConnections`.
        case onTotal
    }

    init(budget: ConnectionBudget, worker: Int, poolTimeout: Duration, maxStreamsPerConnection: Int = 100,
         probesProtocol: Bool = false) {
        precondition(worker < budget.workers && maxStreamsPerConnection > 0)
        self.budget = budget
        self.worker = worker
        self.poolTimeout = poolTimeout
        self.maxStreamsPerConnection = maxStreamsPerConnection
        self.probesProtocol = probesProtocol
    }

    /// The local id of `hostKey`.
    mutating func host(_ hostKey: String) -> Int {
        if let id = hostIDs[hostKey] { return id }
        let id = hosts.count
        hostIDs[hostKey] = id
        var host = Host(budget: budget.host(hostKey))
        host.awaitsProtocol = probesProtocol && hostKey.hasPrefix("https:")
        hosts.append(host)
        return id
    }

    /// Transfers waiting for a connection.
    var waitingCount: Int { waiters.count }
    /// Transfers holding a connection or a lease.
    var runningCount: Int { running.count }
    /// Whether `id` waits for a connection, and if so whether only a new one will do.
    func waits(_ id: TransferID) -> (waiting: Bool, needsNewConnection: Bool) {
        guard let w = waiters[id] else { return (false, false) }
        return (true, w.needsNewConnection)
    }

    // MARK: - Events

    /// `id` wants a connection to `host`. `needsNewConnection`: it was refused a lease when
    /// libcurl did not reuse the idle connection it was admitted for, so it now waits for a lease.
    mutating func request(_ id: TransferID, host h: Int, now: Instant, needsNewConnection: Bool = false,
                          _ actions: inout [PoolAction]) {
        precondition(waiters[id] == nil && running[id] == nil, "transfer \(id) is already known")
        sequence += 1
        waiters[id] = Waiter(host: h, sequence: sequence, deadline: now + poolTimeout, needsNewConnection: needsNewConnection)
        hosts[h].queue.append(Entry(id: id, sequence: sequence))
        hosts[h].waiting += 1
        expiries.append(Entry(id: id, sequence: sequence))
        let reuses = startsWithoutLease(h, needsNewConnection: needsNewConnection)
        if hosts[h].block == .none || reuses {
            // Transfers of other hosts that wait for the total came first: a free lease is theirs.
            if waitingOnTotal > 0 && !reuses { serveTotal(&actions) }
            admit(h, &actions)
            if hosts[h].probe != nil, hosts[h].holdUntil == nil { hosts[h].holdUntil = now + probeHold }
        } else {
            // One more waiter of a blocked host: idle connections here or on other workers may
            // serve it as they served the first.
            publish(h)
            freeCapacity(for: h, hosts[h].block, &actions)
            pokeHolders(for: h, hosts[h].block, &actions)
        }
    }

    /// A waiting transfer is withdrawn (its consumer cancelled it).
    mutating func cancelWaiting(_ id: TransferID) {
        guard let w = waiters.removeValue(forKey: id) else { return }
        dequeued(w.host)
    }

    /// libcurl opens a socket for `id` to `host`. Returns whether it may: a transfer that holds
    /// a lease uses it; any other (it was expected to reuse a connection, or a redirect took it
    /// to another host) needs one now, and if none is free the socket is refused (the shell
    /// then sends the transfer back with ``requeue(_:now:_:)``).
    mutating func socketOpening(_ id: TransferID, host h: Int, _ actions: inout [PoolAction]) -> Bool {
        if var r = running[id], r.reserved, r.host == h {
            r.reserved = false
            running[id] = r
            hosts[h].reserved -= 1
            // A new connection of a multiplexed host: its streams count once it shows up.
            if hosts[h].multiplexed && !r.opensConnection {
                r.opensConnection = true
                hosts[h].connecting += 1
            }
            if r.opensConnection { hosts[h].connectingSockets += 1 }
            running[id] = r
            // Its transfer no longer counts on the others' streams.
            if hosts[h].waiting > 0 && startsWithoutLease(h, needsNewConnection: false) { admit(h, reuseOnly: true, &actions) }
            return true
        }
        // On a multiplexed host libcurl found every stream taken: one new connection at a time
        // (libcurl does not multiplex onto one still being set up, so each would open its own).
        if hosts[h].multiplexed && hosts[h].connecting > 0 { return false }
        guard budget.tryAcquire(hosts[h].budget) == .granted else { return false }
        hosts[h].open += 1
        hosts[h].fullAt = nil
        if hosts[h].multiplexed, var r = running[id], r.host == h {
            r.opensConnection = true
            running[id] = r
            hosts[h].connecting += 1
            hosts[h].connectingSockets += 1
        }
        changed(h)
        // The transfer did not take the idle connection it was admitted for: a waiter may.
        if hosts[h].waiting > 0 && startsWithoutLease(h, needsNewConnection: false) { admit(h, &actions) }
        var forTotal = budget.waitingOnTotal.load(ordering: .sequentiallyConsistent)
        releaseUnwanted(h, forTotal: &forTotal, deferringPeers: true, &actions)
        return true
    }

    /// `id` was admitted with a lease but libcurl reused an idle connection: the lease returns.
    mutating func reservationUnused(_ id: TransferID, _ actions: inout [PoolAction]) {
        guard var r = running[id], r.reserved else { return }
        r.reserved = false
        if r.opensConnection {
            r.opensConnection = false
            hosts[r.host].connecting -= 1
        }
        running[id] = r
        hosts[r.host].reserved -= 1
        leaseReturned(r.host, &actions)
    }

    /// A connection to `host` is gone: libcurl closed it, the shell found it closed, or the
    /// shell gave it up after ``PoolAction/giveUpIdle(host:)``. Its lease returns.
    mutating func socketGone(host h: Int, _ actions: inout [PoolAction]) {
        leaseReturned(h, &actions)
    }

    /// The shell found no idle connection to give up.
    mutating func noIdleConnection(host h: Int, _ actions: inout [PoolAction]) {
        hosts[h].owedGiveUps = max(0, hosts[h].owedGiveUps - 1)
        hosts[h].idleSuspect = true
        publish(h)
    }

    /// `id` left the multi handle, however it ended (done, error, cut, drained, cancelled,
    /// timed out). Its connection, if libcurl kept it, is idle now; a lease it never used returns.
    mutating func transferEnded(_ id: TransferID, _ actions: inout [PoolAction]) {
        guard let r = running.removeValue(forKey: id) else { return }
        let h = r.host
        hosts[h].busy -= 1
        let probed = hosts[h].probe == id
        if probed { hosts[h].probe = nil }
        if r.opensConnection { connectionShown(r, &actions) }
        if r.reserved {
            hosts[h].reserved -= 1
            hosts[h].idleSuspect = false
            leaseReturned(h, &actions)
        } else {
            changed(h)
            reconsider(h, deferringPeers: true, &actions)
        }
        // Its connection never showed up, or it ended before its response told the protocol:
        // the waiters that waited for it try again (the oldest probes next).
        if (r.opensConnection || probed) && hosts[h].waiting > 0 { admit(h, &actions) }
    }

    /// libcurl refused `id` a socket (``socketOpening(_:host:_:)`` returned false): it left the
    /// multi handle and waits again, now for a lease of its own. On a multiplexed host libcurl
    /// wanted a new connection because every stream was taken: the host's connections carry no
    /// more than they do now, until it gains a lease.
    mutating func requeue(_ id: TransferID, now: Instant, _ actions: inout [PoolAction]) {
        guard let h = running[id]?.host else { return }
        if hosts[h].multiplexed { hosts[h].fullAt = min(hosts[h].fullAt ?? .max, hosts[h].busy - 1) }
        transferEnded(id, &actions)
        request(id, host: h, now: now, needsNewConnection: true, &actions)
    }

    /// Returns every lease this pool holds and withdraws what it published (the multi and its
    /// connections are gone).
    mutating func close() {
        for h in hosts.indices {
            for _ in 0..<hosts[h].open { budget.release(hosts[h].budget) }
            hosts[h].open = 0
            hosts[h].busy = 0
            hosts[h].reserved = 0
            hosts[h].connecting = 0
            hosts[h].connectingSockets = 0
            hosts[h].probe = nil
            hosts[h].waiting = 0
            hosts[h].block = .none
            publish(h)
        }
        waiters.removeAll()
        running.removeAll()
    }
}
