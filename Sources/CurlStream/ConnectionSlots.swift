/// Counts connection slots in use, in all and per `scheme://host:port`.
///
/// With HTTP/1.1 one active transfer holds one connection, so admitting transfers against
/// these counts keeps upstream connections within `maxConnections` and `maxConnectionsPerHost`.
struct ConnectionSlots {
    let maxTotal: Int
    let maxPerHost: Int
    private(set) var total = 0
    private var perHost: [String: Int] = [:]

    init(maxTotal: Int, maxPerHost: Int) {
        self.maxTotal = maxTotal
        self.maxPerHost = maxPerHost
    }

    var hasFreeSlot: Bool { total < maxTotal }

    func canAcquire(_ host: String) -> Bool {
        total < maxTotal && perHost[host, default: 0] < maxPerHost
    }

    mutating func acquire(_ host: String) {
        total += 1
        perHost[host, default: 0] += 1
    }

    mutating func release(_ host: String) {
        total -= 1
        let left = perHost[host, default: 1] - 1
        perHost[host] = left == 0 ? nil : left
    }
}

/// Transfers waiting for a slot, oldest first.
struct TransferQueue {
    private var items: [Transfer] = []
    private var start = 0

    var isEmpty: Bool { start == items.count }
    var head: Transfer? { isEmpty ? nil : items[start] }

    mutating func append(_ t: Transfer) { items.append(t) }

    func first(where match: (Transfer) -> Bool) -> Transfer? {
        items[start...].first(where: match)
    }

    mutating func remove(_ t: Transfer) {
        guard let i = items[start...].firstIndex(where: { $0 === t }) else { return }
        if i == start {
            start += 1
            if start > 64, start * 2 > items.count {
                items.removeFirst(start)
                start = 0
            }
        } else {
            items.remove(at: i)
        }
    }
}
