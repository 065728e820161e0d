import Testing
@testable import StreamProxy

/// A clock the test moves by hand: the plans are fed its `now`, nothing sleeps.
private struct TestClock {
    private(set) var now = ContinuousClock.now

    mutating func advance(by duration: Duration) { now += duration }
}

/// `serve`'s shutdown: the first signal drains with a deadline, the second stops, and so do the
/// last stream's end and the deadline.
@Suite struct ShutdownPlanTests {
    @Test func firstSignalDrainsUntilTheGraceEnds() {
        var clock = TestClock()
        var plan = ShutdownPlan(grace: .seconds(10))
        #expect(plan.signal(now: clock.now) == .drain(until: clock.now + .seconds(10)))
        clock.advance(by: .seconds(4))
        #expect(plan.timerFired(now: clock.now) == .wait(until: clock.now + .seconds(6)), "a timer that fires early is re-armed")
        clock.advance(by: .seconds(6))
        #expect(plan.timerFired(now: clock.now) == .stop)
        #expect(plan.signal(now: clock.now) == .none, "stopped for good")
        #expect(plan.streamsEnded(now: clock.now) == .none)
    }

    @Test func secondSignalStopsAtOnce() {
        var clock = TestClock()
        var plan = ShutdownPlan(grace: .seconds(10))
        _ = plan.signal(now: clock.now)
        clock.advance(by: .milliseconds(300))
        #expect(plan.signal(now: clock.now) == .stop)
        clock.advance(by: .seconds(10))
        #expect(plan.timerFired(now: clock.now) == .none, "the grace timer has nothing left to stop")
    }

    @Test func theLastStreamEndingStopsBeforeTheDeadline() {
        var clock = TestClock()
        var plan = ShutdownPlan(grace: .seconds(10))
        #expect(plan.streamsEnded(now: clock.now) == .none, "no stop while serving")
        _ = plan.signal(now: clock.now)
        clock.advance(by: .seconds(2))
        #expect(plan.streamsEnded(now: clock.now) == .stop)
        #expect(plan.timerFired(now: clock.now + .seconds(8)) == .none)
    }

    @Test func noGraceStopsAtTheFirstTimer() {
        let clock = TestClock()
        var plan = ShutdownPlan(grace: .zero)
        #expect(plan.signal(now: clock.now) == .drain(until: clock.now))
        #expect(plan.timerFired(now: clock.now) == .stop)
    }
}

/// A worker's last step: finish when every ended stream has flushed, or at the bound.
@Suite struct FlushPlanTests {
    @Test func nothingQueuedFinishesAtOnce() {
        let clock = TestClock()
        var plan = FlushPlan(now: clock.now, unflushed: 0)
        #expect(plan.start(now: clock.now) == .finish)
        #expect(plan.timerFired(now: clock.now + .seconds(1)) == .none, "finished once")
    }

    @Test func finishesWhenTheLastStreamFlushes() {
        var clock = TestClock()
        var plan = FlushPlan(now: clock.now, unflushed: 3)
        #expect(plan.start(now: clock.now) == .wait(until: clock.now + FlushPlan.defaultBound))
        clock.advance(by: .milliseconds(5))
        #expect(plan.flushed(now: clock.now) == .none)
        #expect(plan.flushed(now: clock.now) == .none)
        #expect(plan.unflushed == 1)
        clock.advance(by: .milliseconds(40))
        #expect(plan.flushed(now: clock.now) == .finish)
        #expect(plan.flushed(now: clock.now) == .none, "a late flush does not finish twice")
        #expect(plan.timerFired(now: clock.now + .seconds(1)) == .none)
    }

    @Test func aClientThatDoesNotReadHoldsItUpOnlyUntilTheBound() {
        var clock = TestClock()
        var plan = FlushPlan(now: clock.now, unflushed: 2, bound: .milliseconds(250))
        let deadline = clock.now + .milliseconds(250)
        #expect(plan.start(now: clock.now) == .wait(until: deadline))
        #expect(plan.flushed(now: clock.now) == .none)
        clock.advance(by: .milliseconds(100))
        #expect(plan.timerFired(now: clock.now) == .wait(until: deadline), "early: wait on")
        clock.advance(by: .milliseconds(150))
        #expect(plan.timerFired(now: clock.now) == .finish)
        #expect(plan.unflushed == 1, "the stuck stream is left to the teardown")
        #expect(plan.flushed(now: clock.now) == .none)
    }

    @Test func aFlushAfterTheBoundFinishes() {
        var clock = TestClock()
        var plan = FlushPlan(now: clock.now, unflushed: 2)
        _ = plan.start(now: clock.now)
        clock.advance(by: .seconds(2))
        #expect(plan.flushed(now: clock.now) == .finish, "past the bound, whatever event comes first finishes")
    }
}
