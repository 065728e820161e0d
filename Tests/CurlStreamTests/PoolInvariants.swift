import Testing
@testable import CurlStream

/// What must hold after every step of a ``PoolSimulation``.
extension PoolSimulation {
    var hostCount: Int { workers.map { $0.pool.hosts.count }.max() ?? 0 }

    /// The books: leases equal sockets plus unspent leases of admitted transfers, per worker and
    /// host; the budget's counters are their sums; nothing exceeds a limit.
    func checkBooks(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var total = 0
        for h in 0..<hostCount {
            var hostOpen = 0
            for (n, w) in workers.enumerated() where h < w.pool.hosts.count {
                let p = w.pool.hosts[h]
                let admitted = w.admitted.values.filter { $0.host == h }.count
                let connected = w.connected.values.filter { $0 == h }.count
                let waiting = w.waiting.filter { w.hostOf[$0] == h }.count
                #expect(p.open == w.sockets(h) + w.reservations(h),
                        "worker \(n) host \(h): leases \(p.open) vs sockets \(w.sockets(h)) + reservations \(w.reservations(h)) after \(step)",
                        sourceLocation: sourceLocation)
                #expect(p.busy == admitted + connected, "worker \(n) host \(h): busy after \(step)", sourceLocation: sourceLocation)
                #expect(p.waiting == waiting, "worker \(n) host \(h): waiting after \(step)", sourceLocation: sourceLocation)
                hostOpen += p.open
            }
            let b = workers[0].pool.hosts[h].budget
            #expect(hostOpen == b.open.load(ordering: .relaxed), "host \(h) budget after \(step)", sourceLocation: sourceLocation)
            #expect(hostOpen <= budget.maxConnectionsPerHost, "host \(h) over its limit after \(step)", sourceLocation: sourceLocation)
            total += hostOpen
        }
        #expect(total == budget.openConnections, "budget total after \(step)", sourceLocation: sourceLocation)
        #expect(total <= budget.maxConnections, "over maxConnections after \(step)", sourceLocation: sourceLocation)
        let idle = workers.reduce(0) { sum, w in sum + w.pool.hosts.reduce(0) { $0 + $1.idle } }
        #expect(idle == budget.idleConnections, "published idle after \(step)", sourceLocation: sourceLocation)
        #expect(idle <= budget.maxKeepalive,
                "\(idle) idle, over maxKeepalive after \(step): \(workers.map { $0.pool.hosts.map(\.summary) })", sourceLocation: sourceLocation)
    }

    /// Once every poke is delivered, no transfer waits while it could run: its host and the
    /// total are at their limits, its own worker has no idle connection it could reuse, and no
    /// worker keeps an idle connection that nobody there wants while others wait for its lease.
    /// Waiters of a multiplexed host may instead wait for the connection being opened for them,
    /// and those of a host whose protocol is unknown for the response of the transfer probing it.
    func checkNobodyStarves(_ step: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for (n, w) in workers.enumerated() {
            for id in w.waiting {
                let h = w.hostOf[id]!
                let hostOpen = w.pool.hosts[h].budget.open.load(ordering: .relaxed)
                let full = hostOpen >= budget.maxConnectionsPerHost || budget.openConnections >= budget.maxConnections
                // A multiplexed host's waiters also wait for a connection being opened for them
                // (its streams count once it is up; see checkNoStreamLeftFree).
                let multiplexed = w.pool.hosts[h].multiplexed
                let waitsForConnection = multiplexed && w.pool.hosts[h].connecting > 0 || w.pool.waitsForProbe(h)
                #expect(full || waitsForConnection,
                        "worker \(n): \(id) waits for host \(h) with a slot free after \(step): \(w.pool.hosts[h].summary)",
                        sourceLocation: sourceLocation)
                let waits = w.pool.waits(id)
                #expect(waits.waiting, "worker \(n): \(id) unknown to the pool after \(step)", sourceLocation: sourceLocation)
                // Waiters held for a probe wait behind the oldest, which needs a new connection.
                if w.pool.hosts[h].idle > 0 && !multiplexed && !w.pool.waitsForProbe(h) {
                    #expect(waits.needsNewConnection, "worker \(n): \(id) waits beside an idle connection after \(step): \(w.pool.hosts[h].summary)",
                            sourceLocation: sourceLocation)
                }
                // One that waits for a connection being opened needs no lease.
                for (m, other) in workers.enumerated() where !waitsForConnection {
                    for x in other.pool.hosts.indices where other.pool.hosts[x].idle > 0 && other.pool.hosts[x].waiting == 0 {
                        let useful = x == h || budget.openConnections >= budget.maxConnections
                            && hostOpen < budget.maxConnectionsPerHost
                        #expect(!useful,
                                "worker \(m) keeps an idle connection to host \(x) while worker \(n) waits for host \(h) after \(step)",
                                sourceLocation: sourceLocation)
                    }
                }
            }
        }
    }
}

extension PoolStateMachine.Host {
    /// The counts, for failure messages.
    var summary: String {
        "open \(open) busy \(busy) reserved \(reserved) waiting \(waiting) block \(block) idle \(idle)"
            + (awaitsProtocol ? " awaits protocol, probe \(probe.map(String.init(describing:)) ?? "none")" : "")
            + (multiplexed ? " multiplexed, connecting \(connecting) (\(connectingSockets) sockets), fullAt \(fullAt.map(String.init) ?? "-")" : "")
    }
}
