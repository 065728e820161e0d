import Glibc
import Testing
@testable import CurlStream

/// A worker's poke link is read under a generic lock on every poke. Reading a closure through
/// an `inout` of a generic value re-abstracts it and writes it back wrapped in two more thunks,
/// so a link kept that way grew by two frames per poke: after hours under load each poke
/// walked a chain thousands of thunks deep (40% of the CPU of a reconnecting load), and the
/// chain would finally overflow the stack. The link must stay the closure it was given.
@Suite struct ConnectionBudgetPokeTests {
    @Test func pokingDoesNotDeepenTheCallThatDeliversIt() {
        let budget = ConnectionBudget(maxConnections: 4, maxConnectionsPerHost: 4, maxKeepalive: 4, workers: 2)
        let depths = StackDepths()
        budget.connect(worker: 1) { depths.record() }
        for _ in 0..<2_000 {
            budget.poke(1)
            budget.pokeReceived(1)
        }
        #expect(depths.count == 2_000)
        // The same call delivers the first poke and the last: the same depth (2,000 pokes of
        // the defect added 4,000 thunk frames).
        #expect(depths.spread == 0, "the poke's call grew \(depths.spread) frames deeper over 2,000 pokes")
        budget.disconnect(worker: 1)
        budget.poke(1)
        #expect(depths.count == 2_000)
    }
}

/// How many frames lie under each call, to tell how deep below the caller it ran. Counted by
/// unwinding (`backtrace`), not from a local's address: AddressSanitizer moves locals to a
/// heap-allocated fake stack.
private final class StackDepths: @unchecked Sendable {
    private(set) var count = 0
    private var shallowest = Int.max
    private var deepest = Int.min
    static let limit: Int32 = 256

    @inline(never) func record() {
        var frames = [UnsafeMutableRawPointer?](repeating: nil, count: Int(Self.limit))
        // glibc's backtrace(3), which Swift's Glibc module does not export.
        typealias Backtrace = @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int32) -> Int32
        let backtrace = unsafeBitCast(dlsym(nil, "backtrace")!, to: Backtrace.self)
        let depth = Int(backtrace(&frames, Self.limit))
        count += 1
        shallowest = min(shallowest, depth)
        deepest = max(deepest, depth)
    }

    /// Frames the deepest call had beyond the shallowest (at most `limit` can be counted).
    var spread: Int { deepest - shallowest }
}
