/// A first-in first-out queue over an array, O(1) amortised at both ends. Removal from the
/// middle is left to the owner (mark the entry stale and skip it when it reaches the front),
/// so that no operation scans the queue.
struct FIFO<Element> {
    private var items: [Element] = []
    private var start = 0

    var isEmpty: Bool { start == items.count }
    var count: Int { items.count - start }
    var first: Element? { isEmpty ? nil : items[start] }

    mutating func append(_ e: Element) { items.append(e) }

    @discardableResult
    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let e = items[start]
        start += 1
        if start == items.count {
            items.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1024 && start * 2 > items.count {
            items.removeFirst(start)
            start = 0
        }
        return e
    }
}
