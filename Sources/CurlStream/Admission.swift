/// Which waiting transfer runs next, within the connection limits.
///
/// A transfer runs when its host has an idle connection in this multi (libcurl will reuse it)
/// or when the process-wide ``ConnectionBudget`` grants a lease for a new one. Waiting transfers
/// queue per host; a free slot goes to the oldest waiting transfer whose host can take it, so a
/// host at its limit holds back nobody else. Hosts are interned to small integers when a
/// transfer arrives: no string hashing and no scan of waiting transfers on the hot path.
struct Admission {
    let ledger: ConnectionLedger
    private(set) var waiting = 0
    /// Transfers holding a connection (or about to open one), per local host id.
    private var active: [Int] = []
    private var queues: [FIFO<Waiting>] = []
    /// Hosts with at least one waiting transfer.
    private var hostsWaiting: Set<Int> = []
    private var sequence: UInt64 = 0
    /// Hosts that could not get a lease in the current pass.
    private var starved: Set<Int> = []

    struct Waiting {
        let transfer: Transfer
        let sequence: UInt64
    }

    init(ledger: ConnectionLedger) { self.ledger = ledger }

    /// The local id of `hostKey`.
    mutating func host(_ hostKey: String) -> Int {
        let id = ledger.host(hostKey)
        while active.count <= id {
            active.append(0)
            queues.append(FIFO())
        }
        return id
    }

    /// Queues `t` (whose `host` is set) behind earlier transfers.
    mutating func enqueue(_ t: Transfer) {
        sequence += 1
        queues[t.host].append(Waiting(transfer: t, sequence: sequence))
        hostsWaiting.insert(t.host)
        waiting += 1
    }

    /// Takes the oldest waiting transfer that may run now: on an idle connection of its host,
    /// or with a new lease (then `t.reservedLease` is set).
    mutating func admitNext() -> Transfer? {
        starved.removeAll(keepingCapacity: true)
        while !hostsWaiting.isEmpty {
            var best: (host: Int, sequence: UInt64)?
            for h in hostsWaiting where !starved.contains(h) {
                if let head = queues[h].first, best == nil || head.sequence < best!.sequence {
                    best = (h, head.sequence)
                }
            }
            guard let h = best?.host else { return nil }
            let idle = ledger.leases[h] - active[h]
            var reserved = false
            if idle <= 0 || queues[h].first!.transfer.needsNewConnection {
                guard ledger.reserve(h) else {
                    starved.insert(h)
                    continue
                }
                reserved = true
            }
            let w = queues[h].popFirst()!
            if queues[h].isEmpty { hostsWaiting.remove(h) }
            waiting -= 1
            active[h] += 1
            w.transfer.reservedLease = reserved
            return w.transfer
        }
        return nil
    }

    /// The transfer no longer holds a connection (its own, reserved, or reused).
    mutating func release(_ t: Transfer) {
        active[t.host] -= 1
        if t.reservedLease {
            t.reservedLease = false
            ledger.unreserve(t.host)
        }
    }

    /// Removes a waiting transfer (cancelled or expired).
    mutating func withdraw(_ t: Transfer) {
        if queues[t.host].remove(where: { $0.transfer === t }) {
            waiting -= 1
            if queues[t.host].isEmpty { hostsWaiting.remove(t.host) }
        }
    }

    /// The waiting transfer that has waited longest.
    var oldestWaiting: Transfer? {
        var best: Waiting?
        for h in hostsWaiting {
            if let head = queues[h].first, best == nil || head.sequence < best!.sequence { best = head }
        }
        return best?.transfer
    }
}

/// A first-in first-out queue over an array, O(1) amortised at both ends.
struct FIFO<Element> {
    private var items: [Element] = []
    private var start = 0

    var isEmpty: Bool { start == items.count }
    var first: Element? { isEmpty ? nil : items[start] }

    mutating func append(_ e: Element) { items.append(e) }

    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let e = items[start]
        start += 1
        compact()
        return e
    }

    /// Removes the first element matching `match`; returns whether one was found.
    mutating func remove(where match: (Element) -> Bool) -> Bool {
        guard let i = items[start...].firstIndex(where: match) else { return false }
        if i == start {
            start += 1
            compact()
        } else {
            items.remove(at: i)
        }
        return true
    }

    private mutating func compact() {
        if start == items.count {
            items.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1024 && start * 2 > items.count {
            items.removeFirst(start)
            start = 0
        }
    }
}
