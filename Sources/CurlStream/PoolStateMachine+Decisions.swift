/// The pool's decisions: who gets a connection or a lease, and when an idle connection is worth
/// more to someone else. Called by the events in PoolStateMachine.swift only.
extension PoolStateMachine {
    /// Starts waiting transfers of `h`, oldest first, while a connection or lease is to be had
    /// (`reuseOnly`: while an idle connection is, taking no lease).
    mutating func admit(_ h: Int, reuseOnly: Bool = false, _ actions: inout [PoolAction]) {
        var retried = false
        while let e = hosts[h].queue.first {
            guard let w = waiters[e.id], w.sequence == e.sequence else {
                hosts[h].queue.popFirst()
                continue
            }
            if startsWithoutLease(h, needsNewConnection: w.needsNewConnection) {
                grant(e, host: h, lease: false, &actions)
                continue
            }
            if waitsForProbe(h) {
                holdForProbe(h)
                return
            }
            if reuseOnly { return }
            if hosts[h].multiplexed && hosts[h].connecting > 0 {
                // They wait for that connection, not for a lease: nobody is asked for one.
                if hosts[h].block != .none {
                    hosts[h].block = .none
                    publish(h)
                }
                return
            }
            let result = budget.tryAcquire(hosts[h].budget)
            if result == .granted {
                hosts[h].open += 1
                hosts[h].fullAt = nil
                grant(e, host: h, lease: true, &actions)
                continue
            }
            let reason: Block = result == .hostFull ? .onHost : .onTotal
            if reason == .onTotal && !hosts[h].inTotalQueue {
                hosts[h].inTotalQueue = true
                totalQueue.append(h)
            }
            if hosts[h].block != reason {
                // Publish the wait before trying once more, so that a lease returned by another
                // worker meanwhile is either seen by the retry or followed by a poke.
                block(h, reason, &actions)
                if !retried {
                    retried = true
                    continue
                }
            }
            freeCapacity(for: h, reason, &actions)
            return
        }
        hosts[h].block = .none
        publish(h)
    }

    mutating func grant(_ e: Entry, host h: Int, lease: Bool, _ actions: inout [PoolAction]) {
        hosts[h].queue.popFirst()
        waiters[e.id] = nil
        hosts[h].waiting -= 1
        hosts[h].busy += 1
        if lease { hosts[h].reserved += 1 }
        // On a multiplexed host a lease means a new connection (the streams are taken): libcurl
        // 7.88 does not multiplex onto a connection still being set up, so the waiters after
        // this one wait for it rather than each opening their own.
        let opens = lease && hosts[h].multiplexed
        if opens { hosts[h].connecting += 1 }
        running[e.id] = Running(host: h, reserved: lease, opensConnection: opens)
        started(e.id, host: h)
        publish(h)
        actions.append(.start(e.id, lease: lease))
    }

    mutating func block(_ h: Int, _ block: Block, _ actions: inout [PoolAction]) {
        hosts[h].block = block
        publish(h)
        pokeHolders(for: h, block, &actions)
    }

    /// Workers holding idle connections that a waiter of `h` could use hear of it, unless a
    /// hand-over is already scheduled there: it reads what others wait for when it runs (the
    /// wait was published before this check, so sequentially consistent order means the
    /// hand-over sees it or this sees the flag cleared).
    mutating func pokeHolders(for h: Int, _ block: Block, _ actions: inout [PoolAction]) {
        for w in budget.holdingIdle(block == .onHost ? hosts[h].budget : nil, excluding: worker)
            where !budget.published[w].handoverPending.load(ordering: .sequentiallyConsistent) {
            actions.append(.poke(worker: w))
        }
    }

    /// `h` is blocked: idle connections of this worker that nobody here will reuse become a
    /// lease for it. For the host's own limit that is an idle connection to `h` itself (it
    /// waits for a new one because libcurl would not reuse it); for the total, one to a host
    /// nobody here waits for.
    mutating func freeCapacity(for h: Int, _ block: Block, _ actions: inout [PoolAction]) {
        switch block {
        case .onHost:
            if idle(h) > 0 { actions.append(.giveUpIdle(host: h)) }
        case .onTotal:
            if let x = idleHosts.filter({ hosts[$0].waiting == 0 }).min() {
                actions.append(.giveUpIdle(host: x))
            } else if idle(h) > 0 {
                actions.append(.giveUpIdle(host: h))
            }
        case .none:
            break
        }
    }

    mutating func scheduleHandover(_ actions: inout [PoolAction]) {
        guard !handoverScheduled else { return }
        handoverScheduled = true
        budget.published[worker].handoverPending.store(true, ordering: .sequentiallyConsistent)
        actions.append(.scheduleHandover)
    }

    /// Who gets the idle connections of `h`: this host's oldest waiter, unless a transfer for
    /// another host has waited longer for the total, or another worker that waits holds less
    /// than its fair share (then its lease is worth more there); what nobody here wants may go
    /// to other workers (see ``releaseUnwanted(_:forTotal:deferringPeers:_:)``).
    /// On a multiplexed host, waiters first take the free streams (which cost nobody a lease).
    mutating func reconsider(_ h: Int, deferringPeers: Bool, _ actions: inout [PoolAction]) {
        // A connection without streams takes transfers whatever the others carried when libcurl
        // found them full.
        if idle(h) > 0 { hosts[h].fullAt = nil }
        if hosts[h].multiplexed && hosts[h].waiting > 0 { admit(h, reuseOnly: true, &actions) }
        guard idle(h) > 0 else { return }
        if hosts[h].waiting > 0 && owesPeers(h) {
            hosts[h].owedGiveUps += 1
            actions.append(.giveUpIdle(host: h))
            return
        }
        if hosts[h].waiting > 0 && !olderWaitsOnTotal(than: h) { admit(h, &actions) }
        var forTotal = budget.waitingOnTotal.load(ordering: .sequentiallyConsistent)
        releaseUnwanted(h, forTotal: &forTotal, deferringPeers: deferringPeers, &actions)
    }

    /// Gives up idle connections to `h` that nobody here will reuse but whose leases others
    /// wait for: transfers of other workers waiting for `h`, and up to `forTotal` transfers
    /// (of any worker) waiting for the total; and any beyond maxKeepalive. Bounded by the demand
    /// seen now, so one waiter never costs a worker all its idle connections. Waiters held for a
    /// probe want none (the oldest, that would take one, needs a new connection).
    ///
    /// With `deferringPeers`, what only other workers want is handed over after
    /// ``PoolStateMachine/handoverDelay`` (see ``PoolStateMachine/handover(_:)``), if still idle
    /// then: a connection that just went idle is usually wanted here again within a moment, and
    /// each hand-over costs the other worker a new connection.
    mutating func releaseUnwanted(_ h: Int, forTotal: inout Int, deferringPeers: Bool, _ actions: inout [PoolAction]) {
        let idle = idle(h)
        guard idle > 0, hosts[h].waiting == 0 || waitsForProbe(h) || olderWaitsOnTotal(than: h) else { return }
        let b = hosts[h].budget
        var give = min(idle, max(0, b.waitingSum.load(ordering: .sequentiallyConsistent) - b.waiting[worker].value))
        let forTotalHere = min(max(0, forTotal), idle - give)
        forTotal -= forTotalHere
        give += forTotalHere
        let excess = min(idle, budget.idle.load(ordering: .relaxed) - budget.maxKeepalive)
        give = max(give, excess)
        if deferringPeers {
            // This worker's own waiters for the total take theirs at once.
            let now = max(excess, min(idle, waitingOnTotal))
            if give > now {
                pendingHandover.insert(h)
                scheduleHandover(&actions)
            }
            give = now
        }
        for _ in 0..<give { actions.append(.giveUpIdle(host: h)) }
    }

    mutating func leaseReturned(_ h: Int, _ actions: inout [PoolAction]) {
        guard hosts[h].open > 0 else {
            assertionFailure("a lease of \(hosts[h].budget.key) returned twice")
            return
        }
        budget.release(hosts[h].budget)
        hosts[h].open -= 1
        changed(h)
        // The lease is another worker's when it was given up for them, or when this worker
        // holds more than its fair share while one that waits is short of it: else a worker
        // whose transfers end by closing their connections (cut remainders) would take back
        // every lease it returns before the poked worker could, and starve it. Waiters here
        // may still reuse what else is idle.
        if hosts[h].owedGiveUps > 0 || hosts[h].waiting > 0 && owesPeers(h, taking: 1) {
            hosts[h].owedGiveUps = max(0, hosts[h].owedGiveUps - 1)
            if hosts[h].waiting > 0 && startsWithoutLease(h, needsNewConnection: false) { admit(h, reuseOnly: true, &actions) }
            for w in budget.wanting(hosts[h].budget, excluding: worker) { actions.append(.poke(worker: w)) }
            // If they do not take it, this worker's waiters do, at the hand-over.
            scheduleHandover(&actions)
            return
        }
        // Oldest first: this host's waiters, or those of hosts blocked on the total.
        if olderWaitsOnTotal(than: h) {
            serveTotal(&actions)
            if hosts[h].waiting > 0 { admit(h, &actions) }
        } else {
            if hosts[h].waiting > 0 { admit(h, &actions) }
            serveTotal(&actions)
        }
        for w in budget.wanting(hosts[h].budget, excluding: worker) { actions.append(.poke(worker: w)) }
    }

    /// Offers the total's free capacity to hosts blocked on it, in the order they blocked, until
    /// one blocks on the total again.
    mutating func serveTotal(_ actions: inout [PoolAction]) {
        var n = totalQueue.count
        while n > 0, let h = totalQueue.popFirst() {
            n -= 1
            hosts[h].inTotalQueue = false
            guard hosts[h].block == .onTotal else { continue }
            admit(h, &actions)
            if hosts[h].block == .onTotal { return }
        }
    }

    /// The first live entry of `h`'s queue (stale ones are dropped on the way).
    mutating func head(_ h: Int) -> Entry? {
        while let e = hosts[h].queue.first {
            if let w = waiters[e.id], w.sequence == e.sequence { return e }
            hosts[h].queue.popFirst()
        }
        return nil
    }

    /// Whether a host blocked on the total (other than `h`) has a waiter older than `h`'s oldest.
    mutating func olderWaitsOnTotal(than h: Int) -> Bool {
        while let x = totalQueue.first {
            guard hosts[x].block == .onTotal, let e = head(x) else {
                totalQueue.popFirst()
                hosts[x].inTotalQueue = false
                continue
            }
            guard x != h else { return false }
            guard let mine = head(h) else { return true }
            return e.sequence < mine.sequence
        }
        return false
    }

    /// A waiter of `h` left the queue without a connection.
    mutating func dequeued(_ h: Int) {
        hosts[h].waiting -= 1
        if hosts[h].waiting == 0 { hosts[h].block = .none }
        publish(h)
    }

    /// The counts of `h` changed: an idle estimate that a give-up disproved is trusted again.
    mutating func changed(_ h: Int) {
        hosts[h].idleSuspect = false
        publish(h)
    }

    /// Brings what other workers see of `h` up to date (atomics are written only on change).
    mutating func publish(_ h: Int) {
        let host = hosts[h].block == .onHost ? hosts[h].waiting : 0
        let total = hosts[h].block == .onTotal ? hosts[h].waiting : 0
        let idle = idle(h)
        let held = hosts[h].open
        let old = hosts[h].published
        guard (host, total, idle, held) != old else { return }
        hosts[h].published = (host, total, idle, held)
        let b = hosts[h].budget
        if held != old.held {
            _ = b.held[worker].set(held)
            _ = budget.published[worker].held.set(budget.published[worker].held.value + held - old.held)
        }
        if host != old.host {
            b.waitingSum.add(b.waiting[worker].set(host), ordering: .sequentiallyConsistent)
        }
        if total != old.total {
            waitingOnTotal += total - old.total
            budget.waitingOnTotal.add(budget.published[worker].waitingOnTotal.set(waitingOnTotal), ordering: .sequentiallyConsistent)
        }
        if idle != old.idle {
            _ = b.idle[worker].set(idle)
            budget.idle.add(idle - old.idle, ordering: .sequentiallyConsistent)
            _ = budget.published[worker].idle.set(budget.published[worker].idle.value + idle - old.idle)
            if idle > 0 { idleHosts.insert(h) } else { idleHosts.remove(h) }
        }
    }
}
