import Testing
@testable import EventLoop

/// The slowloris deadline as a value, on a test clock: no sockets, no sleeps.
@Suite struct FirstRequestDeadlinesTests {
    private let t0 = ContinuousClock.now
    private func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .seconds(seconds) }

    @Test func aConnectionPastItsDeadlineIsClosedOneCheckLater() {
        var d = FirstRequestDeadlines<Int>(timeout: .seconds(10))
        d.accepted(1, now: at(0))
        #expect(d.nextWake == .at(at(10)))
        var closed = d.expire(now: at(9.999))
        #expect(closed.isEmpty)
        #expect(d.nextWake == .at(at(10)))
        // Noticed at the deadline: one more turn for bytes a busy loop has not read yet.
        closed = d.expire(now: at(10))
        #expect(closed.isEmpty)
        #expect(d.nextWake == .nextTurn)
        closed = d.expire(now: at(10))
        #expect(closed == [1])
        #expect(d.nextWake == nil)
        #expect(d.connections.isEmpty)
    }

    @Test func aRequestInTheGraceTurnSavesTheConnection() {
        var d = FirstRequestDeadlines<Int>(timeout: .seconds(1))
        d.accepted(1, now: at(0))
        var closed = d.expire(now: at(5))
        #expect(closed.isEmpty)
        var wasAwaiting = d.firstRequest(1)
        #expect(wasAwaiting)
        closed = d.expire(now: at(5))
        #expect(closed.isEmpty)
        #expect(d.nextWake == nil)
        wasAwaiting = d.firstRequest(1)
        #expect(!wasAwaiting, "a second request is not a first one")
    }

    @Test func deadlinesRunInAcceptOrderAndEachIsItsOwn() {
        var d = FirstRequestDeadlines<Int>(timeout: .seconds(10))
        d.accepted(1, now: at(0))
        d.accepted(2, now: at(3))
        d.accepted(3, now: at(4))
        let wasAwaiting = d.firstRequest(1)
        #expect(wasAwaiting)
        #expect(d.nextWake == .at(at(13)), "the next deadline is the earliest still awaiting")
        var closed = d.expire(now: at(13.5))
        #expect(closed.isEmpty)
        #expect(d.nextWake == .nextTurn)
        closed = d.expire(now: at(13.5))
        #expect(closed == [2])
        #expect(d.nextWake == .at(at(14)))
        // A check late enough finds 3 overdue and closes it at the next.
        closed = d.expire(now: at(20))
        #expect(closed.isEmpty)
        closed = d.expire(now: at(20))
        #expect(closed == [3])
        #expect(d.nextWake == nil)
    }

    @Test func aReusedKeyIsANewConnection() {
        // A freed bufferevent's address can come back for a later connection: the earlier
        // connection's deadline must not close it.
        var d = FirstRequestDeadlines<Int>(timeout: .seconds(10))
        d.accepted(7, now: at(0))
        let wasAwaiting = d.firstRequest(7)
        #expect(wasAwaiting)
        d.accepted(7, now: at(8))
        var closed = d.expire(now: at(10))
        #expect(closed.isEmpty)
        #expect(d.nextWake == .at(at(18)))
        closed = d.expire(now: at(18))
        #expect(closed.isEmpty)
        closed = d.expire(now: at(18))
        #expect(closed == [7])
    }

    @Test func manyConnectionsStayOrderedThroughCompaction() {
        var d = FirstRequestDeadlines<Int>(timeout: .seconds(1))
        for i in 0..<1000 { d.accepted(i, now: at(Double(i) / 100)) }
        for i in stride(from: 0, to: 1000, by: 2) {
            let wasAwaiting = d.firstRequest(i)
            #expect(wasAwaiting)
        }
        var closed: [Int] = []
        for step in 0...1200 {
            let now = at(Double(step) / 100)
            closed += d.expire(now: now)
            if d.nextWake == .nextTurn { closed += d.expire(now: now) }
        }
        #expect(closed == Array(stride(from: 1, to: 1000, by: 2)))
        #expect(d.nextWake == nil)
        #expect(d.connections.isEmpty)
    }
}
