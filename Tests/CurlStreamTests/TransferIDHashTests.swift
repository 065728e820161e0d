import Testing
@testable import CurlStream

/// Transfer ids hash with a multiplication, not SipHash (TransferID._rawHashValue): what the
/// books keyed by them rely on.
struct TransferIDHashTests {
    /// Any 2^k consecutive ids fall in 2^k distinct buckets of a table of that size, whatever
    /// the table's seed, so sequential ids never collide in the books' small tables.
    @Test(arguments: [0, 1, -1, 0x5DEE_CE66])
    func consecutiveIdsFillDistinctBuckets(seed: Int) {
        for bits in [4, 8, 12] {
            let size = 1 << bits
            for start in [UInt64(1), 1_000_003, UInt64.max - UInt64(size)] {
                let buckets = Set((0..<UInt64(size)).map { TransferID(raw: start + $0)._rawHashValue(seed: seed) & (size - 1) })
                #expect(buckets.count == size, "bits \(bits), from \(start), seed \(seed)")
            }
        }
    }

    /// Equal ids hash equally, and sets and dictionaries of many live ids, some removed, behave.
    @Test func dictionariesOfIdsKeepEveryEntry() {
        #expect(TransferID(raw: 42).hashValue == TransferID(raw: 42).hashValue)
        var books: [TransferID: UInt64] = [:]
        for raw in UInt64(1)...20_000 { books[TransferID(raw: raw)] = raw }
        for raw in stride(from: UInt64(1), through: 20_000, by: 3) { books[TransferID(raw: raw)] = nil }
        #expect(books.count == 20_000 - 6_667)
        #expect(books.allSatisfy { $0.key.raw == $0.value && $0.value % 3 != 1 })
        #expect(books[TransferID(raw: 2)] == 2 && books[TransferID(raw: 4)] == nil)
    }
}
