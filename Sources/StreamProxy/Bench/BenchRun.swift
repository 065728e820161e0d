import EventLoop
import Histogram

/// How the load generator paces streams.
enum BenchLoad: Sendable {
    /// `concurrency` streams open at all times; each is replaced when it ends.
    case closed(concurrency: Int)
    /// `rate` new streams per second on a fixed schedule, whatever the server does.
    case open(rate: Double)
}

/// When a run stops starting streams.
enum BenchLimit: Sendable {
    case duration(Double)
    case count(Int)
}

/// Runs streams against a target on one event loop and collects what the report needs.
final class BenchRun {
    private let loop: EventLoop
    private let target: BenchTarget
    private let load: BenchLoad
    private let limit: BenchLimit
    private let streamTimeout: Double
    private let keepAlive: Bool
    /// The request every stream sends, built once.
    private let request: [UInt8]
    private var streams: [ObjectIdentifier: BenchStream] = [:]
    /// Connections whose last response ended cleanly and that the server keeps open, ready for
    /// the next stream (as `wrk` and browsers reuse them).
    private var idle: [TCPConnection] = []
    private var ticker: LoopTimer?
    private var timeoutSweep: LoopTimer?
    private var progressTimer: LoopTimer?
    private(set) var startedAt = ContinuousClock.now
    private(set) var endedAt: ContinuousClock.Instant?
    private var stoppedStarting = false
    var onFinished: (() -> Void)?
    var onProgress: ((BenchRun) -> Void)?

    private(set) var result = BenchResult()

    /// - Parameter keepAlive: reuse connections between streams; false opens a new connection
    ///   for every stream.
    /// - Parameter target: resolved (``BenchTarget/resolved()``): the loop never waits on a lookup.
    init(loop: EventLoop, target: BenchTarget, load: BenchLoad, limit: BenchLimit, streamTimeout: Double, keepAlive: Bool = true) {
        precondition(target.address != nil, "BenchTarget.resolved() before the run")
        self.loop = loop
        self.keepAlive = keepAlive
        self.request = target.request(keepAlive: keepAlive)
        self.target = target
        self.load = load
        self.limit = limit
        self.streamTimeout = streamTimeout
    }

    var open: Int { streams.count }

    func start() {
        startedAt = .now
        switch load {
        case .closed(let c):
            for _ in 0..<c { startStream(scheduled: .now) }
        case .open(let rate):
            // Streams are due at startedAt + k / rate. The timer wakes at the next due time
            // (the loop's timers are precise), starts every stream that is due, late or not, and
            // measures each from its due time.
            var k = 0
            let timer = LoopTimer(loop: loop) { [unowned self] in
                let now = ContinuousClock.now
                var next = self.startedAt
                while !self.stoppedStarting {
                    let due = self.startedAt + .seconds(Double(k) / rate)
                    next = due
                    guard due <= now else { break }
                    k += 1
                    self.startStream(scheduled: due)
                }
                if !self.stoppedStarting {
                    let wait = now.duration(to: next)
                    self.ticker?.schedule(after: max(0, wait.seconds))
                }
            }
            ticker = timer
            timer.schedule(after: 0)
        }
        if case .duration(let seconds) = limit {
            let stopTimer = LoopTimer(loop: loop) { [unowned self] in self.stopStarting() }
            stopTimer.schedule(after: seconds)
            self.stopTimer = stopTimer
        }
        let sweep = LoopTimer(loop: loop) { [unowned self] in self.sweepTimeouts() }
        sweep.schedule(after: 0.25)
        timeoutSweep = sweep
        let progress = LoopTimer(loop: loop) { [unowned self] in
            self.onProgress?(self)
            self.progressTimer?.schedule(after: 1)
        }
        progress.schedule(after: 1)
        progressTimer = progress
    }

    private var stopTimer: LoopTimer?

    private func startStream(scheduled: ContinuousClock.Instant) {
        if case .count(let n) = limit, result.started >= n {
            stopStarting()
            return
        }
        result.started += 1
        do {
            let reused = idle.popLast()
            if reused != nil { result.connectionsReused += 1 }
            let s = try BenchStream(loop: loop, target: target, request: request, scheduled: scheduled, reusing: reused)
            streams[ObjectIdentifier(s)] = s
            result.mostOpen = max(result.mostOpen, streams.count)
            s.onEnd = { [unowned self] stream, outcome, connection in self.ended(stream, outcome, connection) }
        } catch {
            result.record(outcome: .connection(0))
        }
    }

    private func ended(_ s: BenchStream, _ outcome: BenchStream.Outcome, _ connection: TCPConnection?) {
        streams[ObjectIdentifier(s)] = nil
        result.record(stream: s, outcome: outcome)
        if let connection {
            if keepAlive && !stoppedStarting { park(connection) } else { connection.close() }
        }
        if case .closed = load, !stoppedStarting {
            startStream(scheduled: .now)
        }
        if stoppedStarting && streams.isEmpty { finish() }
    }

    private func park(_ connection: TCPConnection) {
        connection.onEnd = { [unowned self, unowned connection] _ in
            self.idle.removeAll { $0 === connection }
        }
        idle.append(connection)
    }

    private func stopStarting() {
        guard !stoppedStarting else { return }
        stoppedStarting = true
        endedAt = .now
        ticker = nil
        for c in idle { c.close() }
        idle.removeAll()
        if streams.isEmpty { finish() }
    }

    private func sweepTimeouts() {
        let now = ContinuousClock.now
        for s in Array(streams.values) where s.scheduled.duration(to: now) > .seconds(streamTimeout) {
            s.abandon(.timeout)
        }
        timeoutSweep?.schedule(after: 0.25)
    }

    private func finish() {
        timeoutSweep = nil
        progressTimer = nil
        stopTimer = nil
        if endedAt == nil { endedAt = .now }
        let callback = onFinished
        onFinished = nil
        callback?()
    }
}

/// Everything a run measured.
struct BenchResult {
    var started = 0
    var completed = 0
    /// Completed streams without an `error` event: every upstream delivered its prefix. A stream
    /// whose upstreams all failed (say, at poolTimeout) still completes, so `completed` alone
    /// would count a proxy that fails fast as a fast one.
    var completedClean = 0
    var events = 0
    var bodyBytes = 0
    var mostOpen = 0
    /// Streams that went out on a connection an earlier stream had used.
    var connectionsReused = 0
    /// Outcomes other than completed, by kind: `http 503`, `error event: dns`, `reset`, ...
    var errors: [String: Int] = [:]
    /// Microseconds from the stream's due time.
    var firstByte = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    var firstChunk = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    var done = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)

    mutating func record(stream s: BenchStream, outcome: BenchStream.Outcome) {
        if s.reconnected { connectionsReused -= 1 }
        events += s.events
        bodyBytes += s.bodyBytes
        for kind in s.errorKinds { errors["error event: \(kind)", default: 0] += 1 }
        func micros(_ t: ContinuousClock.Instant?) -> UInt64? {
            guard let t else { return nil }
            let d = s.scheduled.duration(to: t)
            return UInt64(max(0, d.microseconds))
        }
        if let v = micros(s.firstByte) { _ = firstByte.record(v) }
        if let v = micros(s.firstChunk) { _ = firstChunk.record(v) }
        if outcome == .completed, let v = micros(s.doneAt) { _ = done.record(v) }
        if outcome == .completed && s.errorKinds.isEmpty { completedClean += 1 }
        record(outcome: outcome)
    }

    mutating func record(outcome: BenchStream.Outcome) {
        switch outcome {
        case .completed: completed += 1
        case .httpStatus(let code): errors["http \(code)", default: 0] += 1
        case .connection(let e): errors[e == 104 ? "reset" : (e == 111 ? "refused" : "connection error \(e)"), default: 0] += 1
        case .incomplete: errors["ended without done", default: 0] += 1
        case .timeout: errors["timeout", default: 0] += 1
        }
    }
}
