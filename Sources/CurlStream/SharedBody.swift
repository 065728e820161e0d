/// The body bytes one shared fetch holds: its prefix, once, whatever the number of readers.
///
/// Its own storage, not an array, so that a reader handed a range reads it in place while the
/// fetch's table changes around it (a reader may finish, and the fetch be forgotten, during the
/// call); the owner keeps a reference for the call. Bytes are only ever appended, outside any
/// reader's call, and never beyond `limit`.
final class SharedBody {
    private var storage: UnsafeMutableRawPointer?
    private var capacity = 0
    private(set) var count = 0
    let limit: Int
    private let counters: CurlMultiCounters

    init(limit: Int, counters: CurlMultiCounters) {
        self.limit = limit
        self.counters = counters
    }

    deinit {
        counters.sharedBytes.subtract(count, ordering: .relaxed)
        storage?.deallocate()
    }

    /// Appends `bytes`, growing by doubling up to `limit` (a declared length, when known, sizes
    /// it at once: `expected`).
    func append(_ bytes: UnsafeRawBufferPointer, expected: Int64? = nil) {
        guard !bytes.isEmpty else { return }
        let needed = count + bytes.count
        precondition(needed <= limit, "a shared body holds at most its prefix")
        if needed > capacity {
            var grown = max(needed, min(limit, max(capacity * 2, 16 * 1024)))
            if let expected, expected > 0 { grown = max(needed, min(limit, Int(clamping: expected))) }
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: grown, alignment: 1)
            if let storage {
                fresh.copyMemory(from: storage, byteCount: count)
                storage.deallocate()
            }
            storage = fresh
            capacity = grown
        }
        (storage! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count = needed
        counters.sharedBytes.add(bytes.count, ordering: .relaxed)
    }

    /// Bytes `range` (within `count`), valid during `body`.
    func withBytes<R>(_ range: Range<Int>, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        precondition(range.upperBound <= count, "a reader reads only held bytes")
        return body(UnsafeRawBufferPointer(start: storage.map { $0 + range.lowerBound }, count: range.count))
    }
}
