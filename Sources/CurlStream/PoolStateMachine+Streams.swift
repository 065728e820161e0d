/// The pool's view of multiplexed (HTTP/2) hosts: what a response's protocol tells it, and the
/// streams a host's connections have free.
extension PoolStateMachine {
    /// A response of `host` arrived in HTTP/2 (`multiplexed`) or HTTP/1.x. Its connections are
    /// counted as carrying up to `maxStreamsPerConnection` transfers each from now on, or one:
    /// waiters may start on the free streams at once.
    mutating func protocolSeen(host h: Int, multiplexed: Bool, _ actions: inout [PoolAction]) {
        if protocolLearnt(host: h, multiplexed: multiplexed, &actions) { return }
        guard hosts[h].multiplexed != multiplexed else { return }
        hosts[h].multiplexed = multiplexed
        hosts[h].fullAt = nil
        if hosts[h].waiting > 0 { admit(h, reuseOnly: true, &actions) }
    }

    /// `id`'s response head arrived: if it opened a new connection of a multiplexed host, that
    /// connection's streams are there for the waiters.
    mutating func responded(_ id: TransferID, _ actions: inout [PoolAction]) {
        guard var r = running[id], r.opensConnection else { return }
        connectionShown(r, &actions)
        r.opensConnection = false
        running[id] = r
        hosts[r.host].fullAt = nil
        if hosts[r.host].waiting > 0 { admit(r.host, &actions) }
    }

    /// A transfer that opened a connection of a multiplexed host has had its response (or ended).
    mutating func connectionShown(_ r: Running, _ actions: inout [PoolAction]) {
        hosts[r.host].connecting -= 1
        if !r.reserved { hosts[r.host].connectingSockets -= 1 }
    }

    /// Whether a waiter of `h` starts without a lease: on a free stream of a multiplexed host,
    /// or else on an idle connection (unless libcurl refused to reuse one for it).
    func startsWithoutLease(_ h: Int, needsNewConnection: Bool) -> Bool {
        hosts[h].multiplexed ? freeStreams(h) > 0 : idle(h) > 0 && !needsNewConnection
    }

    /// Streams free on the connections of multiplexed host `h` that are up. Leases not yet taken
    /// by a socket add none, nor do connections still being opened; the transfers holding those
    /// take none (one that libcurl puts on a stream after all returns its lease, and the pool
    /// learns of a full connection from a refused socket: see `fullAt`).
    func freeStreams(_ h: Int) -> Int {
        // Field by field: a copy of the host record (its queue) on every admission was 2% of
        // the proxy's instructions.
        let (reserved, connecting) = (hosts[h].reserved, hosts[h].connectingSockets)
        let sockets = hosts[h].open - reserved - connecting
        let capacity = min(sockets * maxStreamsPerConnection, hosts[h].fullAt ?? .max)
        return max(0, capacity - (hosts[h].busy - reserved - connecting))
    }

    /// Idle connections of `h` (see ``Host/idle``), read field by field.
    func idle(_ h: Int) -> Int {
        hosts[h].idleSuspect ? 0 : max(0, hosts[h].open - hosts[h].busy)
    }
}
