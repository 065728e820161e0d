/// Connection slots and the transfers waiting for them.
///
/// With HTTP/1.1 one active transfer holds one connection, so admitting transfers against
/// `maxTotal` and `maxPerHost` keeps upstream connections within `maxConnections` and
/// `maxConnectionsPerHost`. Waiting transfers queue per host; a free slot goes to the oldest
/// waiting transfer whose host is below its limit, so a host at its limit holds back nobody else.
///
/// Hosts are interned to small integers when a transfer arrives, so the hot path (a slot freed,
/// a transfer admitted) does no string hashing and no scan of the waiting transfers.
struct Admission {
    let maxTotal: Int
    let maxPerHost: Int
    private(set) var active = 0
    private(set) var waiting = 0
    private var hostIDs: [String: Int] = [:]
    private var hosts: [Host] = []
    /// Hosts with at least one waiting transfer.
    private var hostsWaiting: Set<Int> = []
    private var sequence: UInt64 = 0

    private struct Host {
        var active = 0
        var queue = FIFO<Waiting>()
    }

    struct Waiting {
        let transfer: Transfer
        let sequence: UInt64
    }

    init(maxTotal: Int, maxPerHost: Int) {
        self.maxTotal = maxTotal
        self.maxPerHost = maxPerHost
    }

    /// The interned id of `hostKey`.
    mutating func host(_ hostKey: String) -> Int {
        if let id = hostIDs[hostKey] { return id }
        let id = hosts.count
        hostIDs[hostKey] = id
        hosts.append(Host())
        return id
    }

    /// Queues `t` (whose `host` is set) behind earlier transfers.
    mutating func enqueue(_ t: Transfer) {
        sequence += 1
        hosts[t.host].queue.append(Waiting(transfer: t, sequence: sequence))
        hostsWaiting.insert(t.host)
        waiting += 1
    }

    /// Takes the oldest waiting transfer that may run now and gives it a slot.
    mutating func admitNext() -> Transfer? {
        guard active < maxTotal, !hostsWaiting.isEmpty else { return nil }
        var best: (host: Int, sequence: UInt64)?
        for h in hostsWaiting where hosts[h].active < maxPerHost {
            if let head = hosts[h].queue.first, best == nil || head.sequence < best!.sequence {
                best = (h, head.sequence)
            }
        }
        guard let best, let w = hosts[best.host].queue.popFirst() else { return nil }
        if hosts[best.host].queue.isEmpty { hostsWaiting.remove(best.host) }
        waiting -= 1
        hosts[best.host].active += 1
        active += 1
        return w.transfer
    }

    /// Gives back the slot of an admitted transfer.
    mutating func release(_ t: Transfer) {
        hosts[t.host].active -= 1
        active -= 1
    }

    /// Removes a waiting transfer (cancelled or expired).
    mutating func withdraw(_ t: Transfer) {
        if hosts[t.host].queue.remove(where: { $0.transfer === t }) {
            waiting -= 1
            if hosts[t.host].queue.isEmpty { hostsWaiting.remove(t.host) }
        }
    }

    /// The waiting transfer that has waited longest.
    var oldestWaiting: Transfer? {
        var best: Waiting?
        for h in hostsWaiting {
            if let head = hosts[h].queue.first, best == nil || head.sequence < best!.sequence { best = head }
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
