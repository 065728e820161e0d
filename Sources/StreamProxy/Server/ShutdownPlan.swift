// The decisions of a graceful shutdown, without I/O: the caller feeds in what happened with the
// time it happened and performs the returned action. Two stages, each owned by one loop:
// ``ShutdownPlan`` on the main thread (signals and the `shutdownGrace` deadline) and
// ``FlushPlan`` on each worker (the bound on flushing what the ended streams wrote).

/// `stream-proxy serve` from the first SIGTERM/SIGINT to the stop: the first signal drains (no
/// new connections; open streams get `grace` to finish), the second stops at once, and so does the
/// moment the last stream ends or the grace runs out.
struct ShutdownPlan {
    enum Action: Equatable {
        /// Stop taking streams and arm one timer for `until`.
        case drain(until: ContinuousClock.Instant)
        /// Stop now (streams still open get a `done` that says so).
        case stop
        /// Nothing to do; the timer fired early: arm it again for `until`.
        case wait(until: ContinuousClock.Instant)
        case none
    }

    private enum State: Equatable {
        case serving
        case draining(deadline: ContinuousClock.Instant)
        case stopped
    }

    let grace: Duration
    private var state = State.serving

    init(grace: Duration) {
        self.grace = grace
    }

    /// SIGTERM or SIGINT arrived.
    mutating func signal(now: ContinuousClock.Instant) -> Action {
        switch state {
        case .serving:
            let deadline = now + grace
            state = .draining(deadline: deadline)
            return .drain(until: deadline)
        case .draining:
            state = .stopped
            return .stop
        case .stopped:
            return .none
        }
    }

    /// Every stream has ended (reported once draining has started).
    mutating func streamsEnded(now: ContinuousClock.Instant) -> Action {
        guard case .draining = state else { return .none }
        state = .stopped
        return .stop
    }

    /// The timer armed by ``Action/drain(until:)`` fired.
    mutating func timerFired(now: ContinuousClock.Instant) -> Action {
        guard case .draining(let deadline) = state else { return .none }
        guard now >= deadline else { return .wait(until: deadline) }
        state = .stopped
        return .stop
    }
}

/// One worker's last step: its streams have been ended (each with a shutdown `done`); it stops
/// once every one of them has been handed to its socket, or after `bound` at the latest, so a
/// client that stopped reading cannot hold the process up.
struct FlushPlan {
    enum Action: Equatable {
        /// Done: release the worker.
        case finish
        /// Arm one timer for `until` (and wait for the flushes meanwhile).
        case wait(until: ContinuousClock.Instant)
        case none
    }

    /// The longest a worker waits for its clients' sockets to take the last bytes.
    static let defaultBound: Duration = .seconds(1)

    let deadline: ContinuousClock.Instant
    /// Streams whose bytes are still queued in this process.
    private(set) var unflushed: Int
    private var finished = false

    init(now: ContinuousClock.Instant, unflushed: Int, bound: Duration = FlushPlan.defaultBound) {
        self.deadline = now + bound
        self.unflushed = unflushed
    }

    /// What to do first.
    mutating func start(now: ContinuousClock.Instant) -> Action {
        decide(now: now) ?? .wait(until: deadline)
    }

    /// One more stream's bytes have left (or its connection is gone).
    mutating func flushed(now: ContinuousClock.Instant) -> Action {
        guard !finished else { return .none }
        unflushed = max(0, unflushed - 1)
        return decide(now: now) ?? .none
    }

    /// The timer armed by ``Action/wait(until:)`` fired.
    mutating func timerFired(now: ContinuousClock.Instant) -> Action {
        guard !finished else { return .none }
        return decide(now: now) ?? .wait(until: deadline)
    }

    private mutating func decide(now: ContinuousClock.Instant) -> Action? {
        guard unflushed == 0 || now >= deadline else { return nil }
        finished = true
        return .finish
    }
}
