import Synchronization

/// Admission for client streams across all workers: at most `limit` open at once.
///
/// One atomic counter shared by the workers; a stream takes a place with ``tryEnter()`` and
/// gives it back with ``leave()``. No lock, one atomic operation per stream start and end.
final class StreamGate: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// Takes a place; false when `limit` streams are open.
    func tryEnter() -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = open.compareExchange(expected: current, desired: current + 1,
                                                             ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func leave() {
        open.subtract(1, ordering: .acquiringAndReleasing)
    }

    var count: Int { open.load(ordering: .relaxed) }
}
