import Testing
@testable import CurlStream

/// libcurl 7.88's HTTP/2 behaviour in the simulation, for hosts in ``PoolSimulation/multiplexed``:
/// a transfer takes a stream of an up connection with room (one without streams first), waits
/// (PIPEWAIT) while the host's first connection is being set up, and otherwise opens a socket of
/// its own; a response head tells the pool the protocol; a cut resets only its stream.
extension PoolSimulation {
    /// Connects admitted transfer `id` of a multiplexed host as libcurl would.
    func connectMultiplexed(_ w: Int, _ id: TransferID) {
        guard let s = workers[w].admitted[id], let limit = multiplexed[s.host] else { return }
        let conns = workers[w].streams[s.host, default: [:]]
        let open = conns.filter { workers[w].up.contains($0.key) && $0.value < limit }
        if let c = open.min(by: { ($0.value > 0 ? 1 : 0, $0.key) < ($1.value > 0 ? 1 : 0, $1.key) })?.key {
            workers[w].admitted[id] = nil
            workers[w].streams[s.host]![c]! += 1
            attach(w, id, host: s.host, connection: c)
            if s.lease { run(w) { $0.pool.reservationUnused(id, &$1) } }
            return
        }
        // PIPEWAIT: nothing is known of the host yet, and its first connection is on its way.
        if workers[w].up.isDisjoint(with: conns.keys), !conns.isEmpty { return }
        workers[w].admitted[id] = nil
        var ok = false
        run(w) { ok = $0.pool.socketOpening(id, host: s.host, &$1) }
        if ok {
            let c = workers[w].nextConnection
            workers[w].nextConnection += 1
            workers[w].streams[s.host, default: [:]][c] = 1
            attach(w, id, host: s.host, connection: c)
        } else {
            workers[w].waiting.insert(id)
            workers[w].leased.remove(id)
            run(w) { $0.pool.requeue(id, now: now, &$1) }
        }
    }

    private func attach(_ w: Int, _ id: TransferID, host: Int, connection c: Int) {
        workers[w].connected[id] = host
        workers[w].connectionOf[id] = c
        workers[w].headDue.insert(id)
    }

    /// `id`'s response head arrives, in HTTP/2 from a multiplexed host (its connection is up),
    /// else in HTTP/1.1.
    func head(_ w: Int, _ id: TransferID) {
        guard workers[w].headDue.remove(id) != nil, let h = workers[w].connected[id] else { return }
        let c = workers[w].connectionOf[id]
        if let c { workers[w].up.insert(c) }
        workers[w].answered.insert(h)
        run(w) { $0.pool.protocolSeen(host: h, multiplexed: c != nil, &$1) }
        run(w) { $0.pool.responded(id, &$1) }
    }

    /// A transfer of a multiplexed host ends: its stream is reset or done, the connection stays,
    /// unless `keepConnection` is false and it was the connection's last stream (the server
    /// closed it).
    func endMultiplexed(_ w: Int, _ id: TransferID, keepConnection: Bool) {
        guard let h = workers[w].connected.removeValue(forKey: id), let c = workers[w].connectionOf.removeValue(forKey: id) else { return }
        workers[w].headDue.remove(id)
        workers[w].streams[h]![c]! -= 1
        // A connection whose first transfer ended without a response is usable all the same.
        workers[w].up.insert(c)
        if !keepConnection && workers[w].streams[h]![c] == 0 {
            workers[w].streams[h]![c] = nil
            workers[w].up.remove(c)
            run(w) { $0.pool.socketGone(host: h, &$1) }
        }
        run(w) { $0.pool.transferEnded(id, &$1) }
    }

    /// What must hold for multiplexed hosts after every step: streams within libcurl's limit,
    /// the reservations the pool counts, and an idle count that never exceeds the connections
    /// that really carry no stream.
    func checkStreams(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for (n, w) in workers.enumerated() {
            for (h, limit) in multiplexed where h < w.pool.hosts.count {
                let conns = w.streams[h, default: [:]]
                #expect(conns.values.allSatisfy { $0 <= limit }, "worker \(n) host \(h): streams over \(limit) after \(step)",
                        sourceLocation: sourceLocation)
                let p = w.pool.hosts[h]
                #expect(p.reserved == w.reservations(h), "worker \(n) host \(h): reserved after \(step)", sourceLocation: sourceLocation)
                let empty = conns.values.filter { $0 == 0 }.count
                #expect(p.idle <= empty, "worker \(n) host \(h): \(p.idle) idle counted, \(empty) without streams after \(step)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// Once every poke is delivered: no transfer waits for a multiplexed host while the pool
    /// sees a free stream, or while an up connection of its worker has one that no started
    /// transfer is about to take.
    func checkNoStreamLeftFree(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for (n, w) in workers.enumerated() {
            // Once libcurl refused a stream (the server allows fewer than maxStreamsPerConnection)
            // the pool takes the count it carried then as the most, until a stream ends, a
            // connection goes idle or the host gains a lease.
            for (h, limit) in multiplexed where h < w.pool.hosts.count && w.pool.hosts[h].multiplexed && w.pool.hosts[h].fullAt == nil {
                guard w.waiting.contains(where: { w.hostOf[$0] == h }) else { continue }
                #expect(w.pool.freeStreams(h) == 0, "worker \(n) host \(h): waits with \(w.pool.freeStreams(h)) streams free after \(step): \(w.pool.hosts[h].summary) conns \(w.streams[h, default: [:]]) up \(w.up) waits \(w.waiting.filter { w.hostOf[$0] == h }.map { w.pool.waits($0) })",
                        sourceLocation: sourceLocation)
                let free = w.streams[h, default: [:]].filter { w.up.contains($0.key) }.reduce(0) { $0 + limit - $1.value }
                let coming = w.admitted.values.filter { $0.host == h }.count
                #expect(free <= coming, "worker \(n) host \(h): waits beside \(free) free streams (\(coming) started) after \(step): \(w.pool.hosts[h].summary) conns \(w.streams[h, default: [:]]) up \(w.up)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// What must hold for hosts whose transfers wait to multiplex (PIPEWAIT): until a response
    /// head has come from one on a worker, that worker has at most one transfer running that
    /// was started with a lease, and at most one connection being opened, and its pool still
    /// awaits the protocol (more lease holders would wait for the first connection, and libcurl
    /// would open a connection for each of them beyond a full one).
    func checkProbes(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for (n, w) in workers.enumerated() {
            for h in pipewait where h < w.pool.hosts.count {
                let p = w.pool.hosts[h]
                guard !w.answered.contains(h) else {
                    #expect(!p.awaitsProtocol && p.probe == nil, "worker \(n) host \(h): answered, still probed after \(step)",
                            sourceLocation: sourceLocation)
                    continue
                }
                let leased = w.leased.filter { w.hostOf[$0] == h }.count
                // Past probeHold without a head, the waiters take leases as for HTTP/1.1.
                guard !p.holdReleased else { continue }
                #expect(leased <= 1, "worker \(n) host \(h): \(leased) transfers started with a lease before the first head after \(step): \(p.summary)",
                        sourceLocation: sourceLocation)
                let opening = w.streams[h, default: [:]].keys.filter { !w.up.contains($0) }.count
                #expect(opening <= 1, "worker \(n) host \(h): \(opening) connections opening before the first head after \(step)",
                        sourceLocation: sourceLocation)
                #expect(p.awaitsProtocol && (leased == 0 || p.probe != nil),
                        "worker \(n) host \(h): \(leased) started with a lease, no probe after \(step): \(p.summary)",
                        sourceLocation: sourceLocation)
            }
        }
    }
}
