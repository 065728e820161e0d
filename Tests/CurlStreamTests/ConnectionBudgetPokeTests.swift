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
        // The same call delivers the first poke and the last: the same stack depth, within
        // a few frames (2,000 pokes of the defect added 4,000 thunk frames, over 60 KiB).
        #expect(depths.spread < 1_024, "the poke's stack grew \(depths.spread) bytes over 2,000 pokes")
        budget.disconnect(worker: 1)
        budget.poke(1)
        #expect(depths.count == 2_000)
    }
}

/// The stack address seen by each call, to tell how deep below the caller it ran.
private final class StackDepths: @unchecked Sendable {
    private(set) var count = 0
    private var lowest = UInt.max
    private var highest = UInt.min

    @inline(never) func record() {
        var marker = 0
        let address = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
        count += 1
        lowest = min(lowest, address)
        highest = max(highest, address)
    }

    var spread: UInt { highest - lowest }
}
