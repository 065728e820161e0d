/// The pool's deadlines: waits end after `poolTimeout`, in arrival order.
extension PoolStateMachine {
    /// Fails every transfer whose wait reached its deadline.
    mutating func expire(now: Instant, _ actions: inout [PoolAction]) {
        releaseSlowProbes(now: now, &actions)
        while let e = expiries.first {
            guard let w = waiters[e.id], w.sequence == e.sequence else {
                expiries.popFirst()
                continue
            }
            guard w.deadline <= now else { return }
            expiries.popFirst()
            waiters[e.id] = nil
            dequeued(w.host)
            actions.append(.timedOut(e.id))
        }
    }

    /// When the longest wait ends, if any transfer waits, or a hold for a probe ends first.
    mutating func nextDeadline() -> Instant? {
        var wait: Instant?
        while let e = expiries.first {
            if let w = waiters[e.id], w.sequence == e.sequence {
                wait = w.deadline
                break
            }
            expiries.popFirst()
        }
        guard let hold = nextHoldEnd else { return wait }
        return min(hold, wait ?? hold)
    }
}
