import Testing
@testable import CurlStream

/// Which fetch a reader gets, with a test clock: joining, a longer prefix, the cache window, its
/// expiry, and what is never cached.
@Suite struct SharedFetchTableTests {
    let t0 = ContinuousClock.now
    let u = "http://h/a"

    private func complete(_ table: inout SharedFetchTable, _ key: Int, status: Int = 200, at now: ContinuousClock.Instant,
                          failing: Bool = false) {
        _ = table.update(key, at: now) { f in
            f.headArrived(TransferHead(status: status, contentType: nil, contentLength: nil))
            if failing {
                f.failed(TransferError(kind: .reset, message: "reset"))
            } else {
                _ = f.bytesArrived(10)
                f.ended(TransferSummary(bytesReceived: 10, wireBytes: 10, reusedConnection: false))
            }
        }
    }

    /// Hands every reader of `key` its events to the verdict, as a reader taking it all would.
    private func drain(_ table: inout SharedFetchTable, _ key: Int, at now: ContinuousClock.Instant) {
        for id in table.fetch(key)?.order ?? [] {
            while let d = table.fetch(key)?.next(id) {
                _ = table.update(key, at: now) { $0.delivered(id, d, .proceed) }
            }
        }
    }

    @Test func readersOfOneURLJoinARunningFetchThatHoldsTheirPrefix() {
        var table = SharedFetchTable()
        let a = table.start(url: u, prefix: 100, cacheFor: .zero, reader: 1, at: t0)
        #expect(a.how == .started)
        let r1 = table.start(url: u, prefix: 100, cacheFor: .zero, reader: 2, at: t0)
        #expect(r1 == (a.key, .joined))
        let r2 = table.start(url: u, prefix: 40, cacheFor: .zero, reader: 3, at: t0)
        #expect(r2 == (a.key, .joined))
        // Another URL, or a longer prefix: a fetch of its own.
        let r3 = table.start(url: "http://h/b", prefix: 100, cacheFor: .zero, reader: 4, at: t0)
        #expect(r3.how == .started)
        let longer = table.start(url: u, prefix: 101, cacheFor: .zero, reader: 5, at: t0)
        #expect(longer.how == .started && longer.key != a.key)
        let r4 = table.start(url: u, prefix: 101, cacheFor: .zero, reader: 6, at: t0)
        #expect(r4 == (longer.key, .joined))
        #expect(table.fetch(a.key)?.order == [1, 2, 3])
    }

    @Test func theLastReaderLeavingARunningFetchForgetsIt() {
        var table = SharedFetchTable()
        let a = table.start(url: u, prefix: 100, cacheFor: .seconds(5), reader: 1, at: t0)
        _ = table.start(url: u, prefix: 100, cacheFor: .seconds(5), reader: 2, at: t0)
        let stays = table.leave(1, of: a.key)
        #expect(!stays, "another reader remains")
        let r5 = table.leave(2, of: a.key)
        #expect(r5, "the last one leaving cancels it")
        #expect(table.fetch(a.key) == nil)
        let r6 = table.start(url: u, prefix: 100, cacheFor: .seconds(5), reader: 3, at: t0)
        #expect(r6.how == .started)
    }

    @Test func aCompletedFetchServesReadersWithinTheirWindowThenIsFreed() {
        var table = SharedFetchTable()
        let a = table.start(url: u, prefix: 100, cacheFor: .seconds(1), reader: 1, at: t0)
        complete(&table, a.key, at: t0 + .milliseconds(200))
        drain(&table, a.key, at: t0 + .milliseconds(200))
        #expect(table.nextExpiry == t0 + .milliseconds(1200))
        let r7 = table.retire(at: t0 + .milliseconds(1100))
        #expect(r7.isEmpty)
        // Within the window: cached. With no window of its own (cacheFor 0): a fetch anew.
        let r8 = table.start(url: u, prefix: 100, cacheFor: .seconds(1), reader: 2, at: t0 + .milliseconds(1100))
        #expect(r8 == (a.key, .cached))
        let r9 = table.start(url: u, prefix: 100, cacheFor: .zero, reader: 3, at: t0 + .milliseconds(1100))
        #expect(r9.how == .started)
        drain(&table, a.key, at: t0 + .milliseconds(1100))
        let late = table.start(url: u, prefix: 50, cacheFor: .seconds(1), reader: 4, at: t0 + .milliseconds(1201))
        // Past it: not served (it joins the fetch reader 3 started), and retired.
        #expect(late.how == .joined && late.key != a.key)
        let r10 = table.retire(at: t0 + .milliseconds(1201))
        #expect(r10 == [a.key])
        #expect(table.fetch(a.key) == nil)
    }

    @Test func errorsAndServerErrorsAreNeverCached() {
        var table = SharedFetchTable()
        let failed = table.start(url: u, prefix: 100, cacheFor: .seconds(5), reader: 1, at: t0)
        complete(&table, failed.key, at: t0, failing: true)
        let r11 = table.start(url: u, prefix: 100, cacheFor: .seconds(5), reader: 2, at: t0)
        #expect(r11.key != failed.key,
                "a failed fetch is joined by no one")
        drain(&table, failed.key, at: t0)
        let r12 = table.retire(at: t0)
        #expect(r12.contains(failed.key), "freed once its readers have the error")

        var other = SharedFetchTable()
        let five = other.start(url: u, prefix: 100, cacheFor: .seconds(5), reader: 1, at: t0)
        complete(&other, five.key, status: 503, at: t0)
        drain(&other, five.key, at: t0)
        let r13 = other.start(url: u, prefix: 100, cacheFor: .seconds(5), reader: 2, at: t0)
        #expect(r13.how == .started)
        let r14 = other.retire(at: t0)
        #expect(r14.contains(five.key))
    }

    @Test func aFetchStillReadIsKeptPastItsWindowUntilItsReadersAreDone() {
        var table = SharedFetchTable()
        let a = table.start(url: u, prefix: 100, cacheFor: .seconds(1), reader: 1, at: t0)
        complete(&table, a.key, at: t0)
        let r15 = table.retire(at: t0 + .seconds(2))
        #expect(r15.isEmpty, "reader 1 has not read it yet")
        drain(&table, a.key, at: t0 + .seconds(2))
        let r16 = table.retire(at: t0 + .seconds(2))
        #expect(r16 == [a.key])
    }

    @Test func aLongerCompletedFetchSupersedesAShorterOneOfTheSameURL() {
        var table = SharedFetchTable()
        let short = table.start(url: u, prefix: 10, cacheFor: .seconds(5), reader: 1, at: t0)
        complete(&table, short.key, at: t0)
        drain(&table, short.key, at: t0)
        let long = table.start(url: u, prefix: 20, cacheFor: .seconds(5), reader: 2, at: t0 + .milliseconds(10))
        #expect(long.how == .started)
        #expect(table.retire(at: t0 + .milliseconds(10)).isEmpty, "the longer one has not completed yet")
        complete(&table, long.key, at: t0 + .milliseconds(20))
        drain(&table, long.key, at: t0 + .milliseconds(20))
        #expect(table.retire(at: t0 + .milliseconds(20)) == [short.key])
        let next = table.start(url: u, prefix: 5, cacheFor: .seconds(5), reader: 3, at: t0 + .milliseconds(30))
        #expect(next.key == long.key && next.how == .cached)
    }
}
