import CurlStream
import EventLoop

/// One client's SSE stream on a worker loop: the thin owner of a ``FanOutSession``.
///
/// It feeds the session what happens (the response started, transfer events, the client's
/// queue drained or the client left, its timer, shutdown) and does what the session says:
/// writes frames to the response, starts and stops transfers, arms the timer, ends the response,
/// and reports metrics. Transfer events are answered with the session's directive; commands
/// (start, stop, resume) are only ever run from the client's side of the loop, never from
/// inside a transfer's callback.
///
/// The worker keeps it alive; it reports its end through `onFinished`.
final class StreamSession: TransferConsumer {
    private var session: FanOutSession
    private let requests: [TransferRequest]
    /// Set when the route coalesces: its upstreams' fetches are shared with other streams.
    private let sharing: TransferSharing?
    /// The transfer of each upstream while the session may still hear from it.
    private var transfers: [TransferID?]
    private let stream: HTTPResponseStream
    private let curl: CurlMulti
    private let loop: EventLoop
    private let scratch: SessionScratch
    private var timer: LoopTimer?
    private let metrics: WorkerMetrics
    /// Bytes queued for the client when last reported to `metrics`.
    private var reportedQueue = 0
    private var isFinished = false

    /// Called once when the stream is over (done written, or the client left).
    var onFinished: ((StreamSession) -> Void)?

    init(request: StreamRequest, settings: StreamSettings, stream: HTTPResponseStream, curl: CurlMulti,
         scratch: SessionScratch, metrics: WorkerMetrics) {
        let now = ContinuousClock.now
        self.session = FanOutSession(
            route: request.route.name, urls: request.route.upstreams.map(\.url),
            settings: .init(prefix: request.prefix, order: request.order, streamBuffer: settings.streamBuffer,
                            heartbeat: .seconds(settings.heartbeat), readTimeout: .seconds(settings.readTimeout),
                            retryMilliseconds: settings.retryMilliseconds),
            transcoders: scratch.transcoders, upstreamsJSON: request.route.upstreamsJSON, at: now)
        self.requests = request.route.upstreams
        self.sharing = request.route.coalesce ? TransferSharing(prefix: request.prefix, cacheFor: request.route.cacheFor) : nil
        self.transfers = Array(repeating: nil, count: request.route.upstreams.count)
        self.stream = stream
        self.curl = curl
        self.loop = curl.loop
        self.scratch = scratch
        self.metrics = metrics
    }

    /// Sends `retry` and `open` at once, then starts every upstream transfer.
    func start() {
        loop.preconditionInEventLoop()
        stream.onClose = { [unowned self] in self.clientLeft() }
        stream.onDrain = { [unowned self] in self.clientDrained() }
        timer = LoopTimer(loop: loop) { [unowned self] in self.timerFired() }
        session.open(at: .now, into: &scratch.output)
        act()
    }

    /// Ends the stream early because the server is shutting down: each upstream still open is
    /// stopped and ends with an `error` of kind `shutdown`, and `done` says so.
    func shutdown() {
        loop.preconditionInEventLoop()
        guard !isFinished else { return }
        metrics.shutdownStreams.increment()
        session.shutdown(at: .now, into: &scratch.output)
        act()
    }

    // MARK: - Transfer events (inside libcurl's callbacks for head and body)

    func transfer(_ i: Int, _ event: TransferEvent) -> TransferDirective {
        let now = ContinuousClock.now
        var directive = TransferDirective.proceed
        switch event {
        case .connecting:
            session.connecting(i, at: now, into: &scratch.output)
        case .head(let head):
            directive = session.head(i, head, at: now, into: &scratch.output)
        case .body(let bytes):
            directive = session.bytes(i, bytes, at: now, into: &scratch.output)
        case .end:
            transfers[i] = nil
            session.ended(i, at: now, into: &scratch.output)
        case .failed(let error):
            transfers[i] = nil
            session.failed(i, kind: error.kind.rawValue, message: error.message, at: now, into: &scratch.output)
        case .unsettled:
            transfers[i] = nil
            session.unsettled(i, at: now, into: &scratch.output)
        }
        if directive == .finish || directive == .cancel { transfers[i] = nil }
        assert(scratch.output.commands.isEmpty, "a transfer's own event is answered by its directive")
        act()
        return directive
    }

    // MARK: - The client's side

    private func clientDrained() {
        reportQueue(0)
        guard !isFinished else { return }
        let now = ContinuousClock.now
        session.clientDrained(at: now)
        // Resuming delivers held bytes at once, which may fill the queue and pause the stream
        // again: then the session hands out no more.
        while let i = session.nextResume(at: now, into: &scratch.output) {
            act()
            if let id = transfers[i] { curl.resume(id) }
        }
    }

    private func clientLeft() {
        guard !isFinished else { return }
        metrics.clientsGone.increment()
        session.clientGone(into: &scratch.output)
        act()
    }

    private func timerFired() {
        session.timerFired(at: .now, into: &scratch.output)
        act()
    }

    // MARK: - Acting on the output

    /// Does what the session's last event asked, in order: write, report, arm, run commands,
    /// end. Leaves the scratch output empty for the next event.
    private func act() {
        let out = scratch
        if !out.output.frames.isEmpty {
            stream.write(out.output.frames)
            out.output.frames.removeAll(keepingCapacity: true)
            let queued = stream.queuedBytes
            reportQueue(queued)
            if session.written(queued: queued) { metrics.pauses.increment() }
        }
        if out.output.bytesForwarded > 0 {
            metrics.bytesForwarded.increment(by: Int64(out.output.bytesForwarded))
            out.output.bytesForwarded = 0
        }
        if let ttfb = out.output.ttfbMilliseconds {
            metrics.ttfb.record(ttfb)
            out.output.ttfbMilliseconds = nil
        }
        if let wake = out.output.wake {
            out.output.wake = nil
            timer?.schedule(after: max(0, ContinuousClock.now.duration(to: wake).seconds))
        }
        if !out.output.commands.isEmpty {
            // Starting or stopping a transfer never calls back into this session.
            swap(&out.output.commands, &out.commands)
            for command in out.commands { run(command) }
            out.commands.removeAll(keepingCapacity: true)
        }
        if let end = out.output.end {
            out.output.end = nil
            if end == .done { stream.end() }
            close()
        }
    }

    private func run(_ command: FanOutSession.Command) {
        switch command {
        case .start(let i):
            if let sharing {
                transfers[i] = curl.start(requests[i], sharing: sharing, consumer: self, tag: i)
            } else {
                transfers[i] = curl.start(requests[i], consumer: self, tag: i)
            }
        case .stop(let i):
            guard let id = transfers[i] else { return }
            transfers[i] = nil
            curl.cancel(id)
        }
    }

    private func reportQueue(_ queued: Int) {
        guard queued != reportedQueue else { return }
        metrics.clientQueuedBytes.increment(by: Double(queued - reportedQueue))
        reportedQueue = queued
    }

    private func close() {
        isFinished = true
        reportQueue(0)
        timer = nil
        stream.onClose = nil
        stream.onDrain = nil
        let callback = onFinished
        onFinished = nil
        callback?(self)
    }
}

/// What a worker's sessions build their output in. An event's output is acted on before the
/// next event, so one per worker serves every session on it: steady streaming allocates
/// nothing, and an idle stream holds no frame memory.
final class SessionScratch {
    var output = SessionOutput()
    /// Commands being run (swapped out of `output`, so running them can never disturb it).
    var commands: [FanOutSession.Command] = []
    /// The worker's iconv descriptors, reused by its sessions; the common charsets are opened
    /// here, when the worker starts, so serving them loads no gconv module on the loop.
    let transcoders = TranscoderPool(opening: Charset.common)
}
