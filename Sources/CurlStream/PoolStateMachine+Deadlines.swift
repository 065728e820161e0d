/// The pool's deadlines: waits end after `poolTimeout`, in arrival order.
extension PoolStateMachine {
    /// Fails every transfer whose wait reached its deadline.
    mutating func expire(now: Instant, _ actions: inout [PoolAction]) {
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

    /// When the longest wait ends, if any transfer waits.
    mutating func nextDeadline() -> Instant? {
        while let e = expiries.first {
            if let w = waiters[e.id], w.sequence == e.sequence { return w.deadline }
            expiries.popFirst()
        }
        return nil
    }
}
