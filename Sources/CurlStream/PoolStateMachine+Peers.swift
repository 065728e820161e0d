/// The pool's events from other workers: a poke (a lease came free, or an idle connection here
/// is wanted) and the delayed hand-over of idle connections.
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
        for h in hosts.indices where hosts[h].waiting > 0 && hosts[h].block != .none { admit(h, &actions) }
        serveTotal(&actions)
        // Every idle host, not only those that scheduled it: what other workers wait for now
        // may differ from what they waited for then (a connection offered may have been reused
        // here, and another left idle).
        let due = pendingHandover.union(idleHosts).sorted()
        pendingHandover.removeAll()
        for h in due { reconsider(h, deferringPeers: false, &actions) }
    }
}
