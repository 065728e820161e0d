import CurlStream
import EventLoop

/// The decisions of one client's fan-out stream (PRODUCT.md §5), with no I/O.
///
/// Events go in: the stream opened, an upstream got its slot, sent its head, bytes, ended or
/// failed, the client's queue grew or drained, the client left, the timer fired, the server
/// shuts down. Actions come out in a ``SessionOutput``: SSE bytes to write, upstreams to start
/// or stop, when to wake next, whether the stream is over; an upstream's own event is answered
/// with a ``TransferDirective`` (go on, pause, finish), never with a command, so the owner never
/// calls into the transfer layer from inside its callbacks.
///
/// It owns prefix accounting, charsets and UTF-8 boundaries, exact truncation, completion and
/// sequential order, backpressure, the heartbeat, the read timeout and the `done` summary. Time is a parameter: every event says
/// when it happened, so tests drive it with a clock of their own.
package struct FanOutSession {
    package typealias Instant = ContinuousClock.Instant

    package struct Settings: Equatable {
        package var prefix: Int
        package var order: StreamOrder
        /// Bytes queued for the client before upstreams are paused.
        package var streamBuffer: Int
        /// Silence before a `: ping` comment.
        package var heartbeat: Duration
        /// An upstream that has its slot and sends nothing for this long fails with `timeout`.
        package var readTimeout: Duration
        /// The `retry:` hint sent first.
        package var retryMilliseconds: Int

        package init(prefix: Int, order: StreamOrder, streamBuffer: Int, heartbeat: Duration, readTimeout: Duration,
                     retryMilliseconds: Int) {
            self.prefix = prefix
            self.order = order
            self.streamBuffer = streamBuffer
            self.heartbeat = heartbeat
            self.readTimeout = readTimeout
            self.retryMilliseconds = retryMilliseconds
        }
    }

    /// What the owner does to upstream transfers.
    package enum Command: Equatable {
        case start(Int)
        /// Cancel at once. The session has ended the upstream already (with an `error` written,
        /// or with nothing when the client left).
        case stop(Int)
    }

    /// How the stream ended.
    package enum End: Equatable {
        /// `done` was written: end the response once the frames are written.
        case done
        /// The client left: nothing more is written.
        case clientGone
    }

    let route: String
    let upstreamsJSON: [UInt8]
    let settings: Settings
    /// The worker's iconv descriptors (converting is not I/O: tests use real ones too).
    let transcoders: TranscoderPool
    var upstreams: [UpstreamProgress]
    var sse = SSEEncoder()
    /// Sequential order: the upstream whose events flow now.
    var turn = 0
    var okCount = 0
    var failedCount = 0
    /// The client's queue is over `streamBuffer`: upstreams' bytes are refused.
    package internal(set) var isPaused = false
    package internal(set) var isOver = false
    var shuttingDown = false
    var openedAt: Instant
    /// When something was last written to the client (the heartbeat's clock).
    var lastWrite: Instant
    /// The instant the owner's timer is armed for.
    var wakeAt: Instant?
    /// The time of the event being handled.
    var now: Instant

    /// - Parameter upstreamsJSON: the `open` event's `upstreams` array, as ``upstreamsJSON(_:)``
    ///   writes it for `urls`: a route's is the same for every stream, so it is built once.
    package init(route: String, urls: [String], settings: Settings, transcoders: TranscoderPool = TranscoderPool(),
                 upstreamsJSON: [UInt8]? = nil, at now: Instant) {
        self.upstreamsJSON = upstreamsJSON ?? Self.upstreamsJSON(urls)
        self.route = route
        self.settings = settings
        self.transcoders = transcoders
        self.upstreams = urls.map { UpstreamProgress(url: $0, at: now) }
        self.openedAt = now
        self.lastWrite = now
        self.now = now
    }

    // MARK: - The client's side

    /// The response has started: `retry` and `open` go out at once, every upstream starts.
    package mutating func open(at now: Instant, into out: inout SessionOutput) {
        self.now = now
        openedAt = now
        sse.retry(milliseconds: settings.retryMilliseconds, into: &out.frames)
        let (route, prefix, order, upstreamsJSON) = (route, settings.prefix, settings.order, upstreamsJSON)
        sse.event(.open, into: &out.frames) { w in
            w.raw("{"); w.key("route"); w.string(route)
            w.comma(); w.key("prefix"); w.int(prefix)
            w.comma(); w.key("order"); w.string(order.rawValue)
            w.comma(); w.key("upstreams"); w.bytes.append(contentsOf: upstreamsJSON)
            w.raw("}")
        }
        wrote()
        for i in upstreams.indices { out.commands.append(.start(i)) }
        if upstreams.isEmpty { finish(into: &out) }
        arm(into: &out)
    }

    /// `[{"i":0,"url":"..."}, ...]`: the upstreams as the `open` event lists them.
    package static func upstreamsJSON(_ urls: [String]) -> [UInt8] {
        var w = JSONWriter()
        w.raw("[")
        for (i, url) in urls.enumerated() {
            if i > 0 { w.comma() }
            w.raw("{"); w.key("i"); w.int(i); w.comma(); w.key("url"); w.string(url); w.raw("}")
        }
        w.raw("]")
        return w.bytes
    }

    /// The owner wrote the frames; the client's queue now holds `queued` bytes. Returns true
    /// when this pauses the stream: upstreams' bytes are refused until the client drains.
    package mutating func written(queued: Int) -> Bool {
        guard !isPaused, !isOver, queued > settings.streamBuffer else { return false }
        isPaused = true
        return true
    }

    /// Everything queued has reached the client's socket. Refused upstreams are then resumed
    /// one at a time with ``nextResume(at:into:)``.
    package mutating func clientDrained(at now: Instant) {
        self.now = now
        isPaused = false
    }

    /// The next upstream to resume, while the stream is not paused (resuming one delivers its
    /// held bytes, which may fill the queue again: then the rest stay refused).
    package mutating func nextResume(at now: Instant, into out: inout SessionOutput) -> Int? {
        self.now = now
        guard !isPaused, !isOver, let i = upstreams.firstIndex(where: { $0.phase == .refused }) else { return nil }
        upstreams[i].phase = .running
        upstreams[i].lastActivity = now
        arm(into: &out)
        return i
    }

    /// The client went away: every upstream still open stops; nothing more is written.
    package mutating func clientGone(into out: inout SessionOutput) {
        guard !isOver else { return }
        for i in upstreams.indices where upstreams[i].isOpen {
            release(i)
            out.commands.append(.stop(i))
        }
        over(.clientGone, into: &out)
    }

    /// The server is shutting down: every upstream still open stops and ends with an `error` of
    /// kind `shutdown`, and `done` says so.
    package mutating func shutdown(at now: Instant, into out: inout SessionOutput) {
        self.now = now
        guard !isOver else { return }
        shuttingDown = true
        for i in upstreams.indices where upstreams[i].isOpen {
            out.commands.append(.stop(i))
            if upstreams[i].phase == .settling {
                // Its prefix is all forwarded; whether more followed is not known.
                upstreams[i].dropHeld()
                end(i, truncated: true, into: &out)
            } else {
                fail(i, kind: "shutdown", message: "the server is shutting down", into: &out)
            }
        }
    }

    /// The owner's timer fired: a `: ping` after `heartbeat` of silence, a `timeout` error for
    /// each upstream silent for `readTimeout`, then the timer is armed for the next deadline.
    package mutating func timerFired(at now: Instant, into out: inout SessionOutput) {
        self.now = now
        wakeAt = nil
        guard !isOver else { return }
        // Timers may fire up to a millisecond early (libevent rounds); that counts as due.
        let slack = Duration.milliseconds(1)
        if lastWrite + settings.heartbeat <= now + slack {
            sse.comment("ping", into: &out.frames)
            wrote()
        }
        for i in upstreams.indices where upstreams[i].phase == .running
            && upstreams[i].lastActivity + settings.readTimeout <= now + slack {
            out.commands.append(.stop(i))
            fail(i, kind: "timeout",
                 message: "no data from \(upstreams[i].url) for \(formatSeconds(settings.readTimeout.seconds))",
                 into: &out)
        }
        arm(into: &out)
    }
}
