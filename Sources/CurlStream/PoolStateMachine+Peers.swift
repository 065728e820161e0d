/// The pool's events from other workers: a poke (a lease came free, or an idle connection here
/// is wanted) and the delayed hand-over of idle connections; and when a connection is worth
/// more to another worker.
extension PoolStateMachine {
    /// Another worker poked this one: a lease may be free, or it holds idle connections that
    /// another worker waits for.
    mutating func poked(_ actions: inout [PoolAction]) {
        for h in hosts.indices where hosts[h].block == .onHost { admit(h, &actions) }
        serveTotal(&actions)
        // Still waiting (a lease handed over here was taken by another transfer first): the
        // workers holding idle connections hear of it again.
        for h in hosts.indices where hosts[h].waiting > 0 && hosts[h].block != .none {
            pokeHolders(for: h, hosts[h].block, &actions)
        }
        // Leases handed to this worker beyond what it still needs (its waiters left meanwhile)
        // go on to the others that wait, or they would stay free while those wait.
        for h in hosts.indices where budget.hasRoom(hosts[h].budget) {
            for w in budget.wanting(hosts[h].budget, excluding: worker) { actions.append(.poke(worker: w)) }
        }
        var forTotal = budget.waitingOnTotal.load(ordering: .sequentiallyConsistent)
        for h in idleHosts.sorted() { releaseUnwanted(h, forTotal: &forTotal, deferringPeers: true, &actions) }
    }

    /// ``PoolAction/scheduleHandover`` is due: idle connections still unwanted here go to the
    /// other workers that wait for them, and leases this worker left to others that they did
    /// not take go to its own waiters.
    mutating func handover(_ actions: inout [PoolAction]) {
        handoverScheduled = false
        budget.published[worker].handoverPending.store(false, ordering: .sequentiallyConsistent)
        // Leases left to other workers that they did not take go to the waiters here.
        // (Waiters of a multiplexed host may be blocked on nothing: they waited for a connection
        // being opened.)
        for h in hosts.indices where hosts[h].waiting > 0 && (hosts[h].block != .none || hosts[h].multiplexed) {
            admit(h, &actions)
        }
        serveTotal(&actions)
        // Every idle host, not only those that scheduled it: what other workers wait for now
        // may differ from what they waited for then (a connection offered may have been reused
        // here, and another left idle).
        let due = pendingHandover.union(idleHosts).sorted()
        pendingHandover.removeAll()
        for h in due { reconsider(h, deferringPeers: false, &actions) }
    }

    /// Whether this worker, though its own transfers wait for `h`, should let a connection to `h`
    /// go to another worker: one that waits (for `h`, or for the total) while it holds clearly
    /// fewer leases than its fair share, and this worker more. The share is the limit split evenly
    /// among the workers that wait, so that two busy workers settle at half each instead of the
    /// first one keeping every connection (each hand-over costs a new connection, so it stops
    /// once the split is even).
    /// `taking`: leases this worker would add by keeping what is at stake (1 for a lease just
    /// returned; 0 for an idle connection, already counted).
    mutating func owesPeers(_ h: Int, taking: Int = 0) -> Bool {
        let b = hosts[h].budget
        if b.waitingSum.load(ordering: .sequentiallyConsistent) > b.waiting[worker].value {
            let share = max(1, budget.maxConnectionsPerHost / budget.competing(b.waiting, me: worker))
            if hosts[h].open + taking > share && budget.anyShort(of: share, waiting: b.waiting, held: b.held, excluding: worker) {
                return true
            }
        }
        if budget.waitingOnTotal.load(ordering: .sequentiallyConsistent) > waitingOnTotal {
            let waits = budget.published.map(\.waitingOnTotal), held = budget.published.map(\.held)
            let share = max(1, budget.maxConnections / budget.competing(waits, me: worker))
            if held[worker].value + taking > share && budget.anyShort(of: share, waiting: waits, held: held, excluding: worker) {
                return true
            }
        }
        return false
    }
}
