import CurlStream
import EventLoop
import Prometheus

/// One client's SSE stream: fans out to the route's upstreams and turns their transfers into
/// the events of PRODUCT.md §5.
///
/// Lives on one worker loop, from the request until `done` is written or the client leaves.
/// The worker keeps it alive; it reports its end through `onFinished`.
final class StreamSession {
    private let request: StreamRequest
    private let settings: StreamSettings
    private let stream: HTTPResponseStream
    private let curl: CurlMulti
    private let loop: EventLoop
    private let openedAt = ContinuousClock.now
    private var upstreams: [UpstreamProgress]
    private var nextEventID = 1
    /// Sequential order: the upstream whose events flow now.
    private var turn = 0
    private var finishedCount = 0
    private var okCount = 0
    private var failedCount = 0
    /// Upstreams are paused because the client's queue is over `streamBuffer`.
    private var paused = false
    private var lastWrite = ContinuousClock.now
    private var heartbeat: LoopTimer?
    /// Where frames are built: the worker's, shared by all its sessions.
    private let scratch: FrameScratch
    private(set) var isFinished = false
    private var shuttingDown = false

    private let metrics: WorkerMetrics
    /// Bytes queued for the client when last reported to `metrics`.
    private var reportedQueue = 0

    /// Called once when the stream is over (done written, or the client left).
    var onFinished: ((StreamSession) -> Void)?

    init(request: StreamRequest, settings: StreamSettings, stream: HTTPResponseStream, curl: CurlMulti,
         scratch: FrameScratch, metrics: WorkerMetrics) {
        self.scratch = scratch
        self.request = request
        self.metrics = metrics
        self.settings = settings
        self.stream = stream
        self.curl = curl
        self.loop = curl.loop
        self.upstreams = request.route.upstreams.enumerated().map { UpstreamProgress(index: $0, request: $1) }
    }

    /// Sends `retry` and `open` at once, then starts every upstream transfer.
    func start() {
        stream.onClose = { [unowned self] in self.clientLeft() }
        stream.onDrain = { [unowned self] in self.clientDrained() }

        scratch.frame.removeAll(keepingCapacity: true)
        scratch.frame.append(contentsOf: "retry: \(settings.retryMilliseconds)\n\n".utf8)
        appendFrameHeader(.open)
        withJSON { w in
            w.raw("{"); w.key("route"); w.string(request.route.name)
            w.comma(); w.key("prefix"); w.int(request.prefix)
            w.comma(); w.key("order"); w.string(request.order.rawValue)
            w.comma(); w.key("upstreams"); w.raw("[")
            for u in upstreams {
                if u.index > 0 { w.comma() }
                w.raw("{"); w.key("i"); w.int(u.index); w.comma(); w.key("url"); w.string(u.request.url); w.raw("}")
            }
            w.raw("]}")
        }
        scratch.frame.append(contentsOf: [0x0A, 0x0A])
        send()

        for i in upstreams.indices {
            upstreams[i].transfer = curl.start(upstreams[i].request) { [unowned self] event in
                self.handle(event, from: i)
            }
        }
        let timer = LoopTimer(loop: loop) { [unowned self] in self.heartbeatDue() }
        timer.schedule(after: settings.heartbeat)
        heartbeat = timer
    }

    // MARK: - Upstream events

    private func handle(_ event: TransferEvent, from i: Int) {
        switch event {
        case .head(let head):
            let ttfb = milliseconds(since: openedAt)
            upstreams[i].contentLength = head.contentLength
            metrics.ttfb.record(ttfb)
            var w = JSONWriter()
            w.raw("{"); w.key("i"); w.int(i)
            w.comma(); w.key("status"); w.int(head.status)
            w.comma(); w.key("contentType"); w.string(head.contentType)
            w.comma(); w.key("ttfbMs"); w.milliseconds(ttfb)
            w.raw("}")
            emit(.head, payload: w.bytes, from: i)
        case .body(let bytes):
            received(bytes, from: i)
        case .end:
            guard !upstreams[i].finished else { return }
            var tail: [UInt8] = []
            let n = upstreams[i].text.flushHeld(into: &tail)
            if n > 0 {
                upstreams[i].forwarded += n
                emitChunk(text: tail[...], from: i)
            }
            ended(i, truncated: false)
        case .failed(let error):
            failed(i, kind: error.kind.rawValue, message: error.message)
        }
    }

    private func failed(_ i: Int, kind: String, message: String) {
        guard !upstreams[i].finished else { return }
        upstreams[i].transfer = nil
        var w = JSONWriter()
        w.raw("{"); w.key("i"); w.int(i)
        w.comma(); w.key("url"); w.string(upstreams[i].request.url)
        w.comma(); w.key("kind"); w.string(kind)
        w.comma(); w.key("message"); w.string(message)
        w.raw("}")
        emit(.error, payload: w.bytes, from: i)
        failedCount += 1
        upstreamFinished(i)
    }

    private func received(_ bytes: UnsafeRawBufferPointer, from i: Int) {
        guard !upstreams[i].finished else { return }
        let room = request.prefix - upstreams[i].taken
        let take = min(room, bytes.count)
        upstreams[i].taken += take
        let full = upstreams[i].taken >= request.prefix

        var text: [UInt8] = []
        text.reserveCapacity(take + 8)
        let represented = upstreams[i].text.append(UnsafeRawBufferPointer(rebasing: bytes[..<take]),
                                                    final: false, into: &text)
        upstreams[i].forwarded += represented
        if !text.isEmpty { emitChunk(text: text[...], from: i) }

        if full {
            // The prefix ends inside a character: that character is not forwarded.
            upstreams[i].text.dropHeld()
            let truncated: Bool
            if bytes.count > take {
                truncated = true
            } else if let length = upstreams[i].contentLength {
                truncated = length > Int64(upstreams[i].taken)
            } else {
                truncated = true  // unknown length: more may follow; we do not wait to find out
            }
            if let id = upstreams[i].transfer { curl.finish(id) }
            ended(i, truncated: truncated)
        }
    }

    private func emitChunk(text: ArraySlice<UInt8>, from i: Int) {
        metrics.bytesForwarded.increment(by: Int64(text.count))
        if request.order == .sequential && i != turn {
            var payload: [UInt8] = []
            payload.reserveCapacity(text.count + 24)
            appendChunkPayload(text, i, into: &payload)
            upstreams[i].held.append((.chunk, payload))
            return
        }
        scratch.frame.removeAll(keepingCapacity: true)
        appendFrameHeader(.chunk)
        appendChunkPayload(text, i, into: &scratch.frame)
        scratch.frame.append(contentsOf: [0x0A, 0x0A])
        send()
    }

    private func appendChunkPayload(_ text: ArraySlice<UInt8>, _ i: Int, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"i":"#.utf8)
        out.append(contentsOf: String(i).utf8)
        out.append(contentsOf: #","text":""#.utf8)
        out.append(contentsOf: text)
        out.append(contentsOf: #""}"#.utf8)
    }

    private func ended(_ i: Int, truncated: Bool) {
        upstreams[i].transfer = nil
        var w = JSONWriter()
        w.raw("{"); w.key("i"); w.int(i)
        w.comma(); w.key("bytes"); w.int(upstreams[i].forwarded)
        w.comma(); w.key("truncated"); w.bool(truncated)
        w.comma(); w.key("ms"); w.milliseconds(milliseconds(since: openedAt))
        w.raw("}")
        emit(.end, payload: w.bytes, from: i)
        okCount += 1
        upstreamFinished(i)
    }

    private func upstreamFinished(_ i: Int) {
        upstreams[i].finished = true
        finishedCount += 1
        if request.order == .sequential && i == turn { advanceTurn() }
        if finishedCount == upstreams.count { finish() }
    }

    /// Sequential order: hands the turn to the next unfinished upstream, flushing what each
    /// upstream on the way had held.
    private func advanceTurn() {
        while turn < upstreams.count && upstreams[turn].finished {
            turn += 1
            guard turn < upstreams.count else { break }
            let held = upstreams[turn].held
            upstreams[turn].held.removeAll()
            for item in held { write(item.name, payload: item.payload) }
        }
    }

    // MARK: - Writing

    private func emit(_ name: SSEEventName, payload: [UInt8], from i: Int) {
        if request.order == .sequential && i != turn {
            upstreams[i].held.append((name, payload))
        } else {
            write(name, payload: payload)
        }
    }

    private func write(_ name: SSEEventName, payload: [UInt8]) {
        scratch.frame.removeAll(keepingCapacity: true)
        appendFrameHeader(name)
        scratch.frame.append(contentsOf: payload)
        scratch.frame.append(contentsOf: [0x0A, 0x0A])
        send()
    }

    private func appendFrameHeader(_ name: SSEEventName) {
        scratch.frame.append(contentsOf: "event: \(name.rawValue)\nid: ".utf8)
        if name == .done {
            scratch.frame.append(contentsOf: "done".utf8)
        } else {
            scratch.frame.append(contentsOf: String(nextEventID).utf8)
            nextEventID += 1
        }
        scratch.frame.append(contentsOf: "\ndata: ".utf8)
    }

    private func withJSON(_ body: (inout JSONWriter) -> Void) {
        var w = JSONWriter()
        swap(&w.bytes, &scratch.frame)
        body(&w)
        swap(&w.bytes, &scratch.frame)
    }

    private func send() {
        stream.write(scratch.frame)
        lastWrite = .now
        let queued = stream.queuedBytes
        reportQueue(queued)
        if !paused && queued > settings.streamBuffer { pauseUpstreams() }
    }

    private func reportQueue(_ queued: Int) {
        guard queued != reportedQueue else { return }
        metrics.clientQueuedBytes.increment(by: Double(queued - reportedQueue))
        reportedQueue = queued
    }

    // MARK: - Backpressure

    private func pauseUpstreams() {
        paused = true
        metrics.pauses.increment()
        for u in upstreams { if let id = u.transfer { curl.pause(id) } }
    }

    private func clientDrained() {
        reportQueue(0)
        guard paused, !isFinished else { return }
        paused = false
        // Resuming delivers held bytes at once, which may fill the queue and pause us again:
        // then the rest stay paused.
        for u in upstreams {
            guard !paused else { break }
            if let id = u.transfer { curl.resume(id) }
        }
    }

    // MARK: - Heartbeat

    private func heartbeatDue() {
        let idle = lastWrite.duration(to: .now)
        let idleSeconds = idle.seconds
        if idleSeconds >= settings.heartbeat - 0.001 {
            scratch.frame.removeAll(keepingCapacity: true)
            scratch.frame.append(contentsOf: ": ping\n\n".utf8)
            send()
            heartbeat?.schedule(after: settings.heartbeat)
        } else {
            heartbeat?.schedule(after: settings.heartbeat - idleSeconds)
        }
    }

    // MARK: - The end

    private func finish() {
        guard !isFinished else { return }
        var w = JSONWriter()
        w.raw("{"); w.key("ok"); w.int(okCount)
        w.comma(); w.key("failed"); w.int(failedCount)
        w.comma(); w.key("ms"); w.milliseconds(milliseconds(since: openedAt))
        if shuttingDown { w.comma(); w.key("shutdown"); w.bool(true) }
        w.raw("}")
        write(.done, payload: w.bytes)
        stream.end()
        close()
    }

    /// Ends the stream early because the server is shutting down: each upstream still open is
    /// stopped and ends with an `error` of kind `shutdown`, and `done` says so.
    func shutdown() {
        guard !isFinished else { return }
        shuttingDown = true
        metrics.shutdownStreams.increment()
        cancelTransfers()
        for i in upstreams.indices where !upstreams[i].finished {
            failed(i, kind: "shutdown", message: "the server is shutting down")
        }
    }

    private func clientLeft() {
        guard !isFinished else { return }
        metrics.clientsGone.increment()
        cancelTransfers()
        close()
    }

    private func cancelTransfers() {
        for i in upstreams.indices {
            if let id = upstreams[i].transfer { curl.cancel(id) }
        }
    }

    private func close() {
        isFinished = true
        reportQueue(0)
        heartbeat = nil
        stream.onClose = nil
        stream.onDrain = nil
        let callback = onFinished
        onFinished = nil
        callback?(self)
    }
}

/// The buffer a worker's sessions build their frames in. A frame is built and handed to its
/// stream within one call, so one buffer per worker serves every session on it: steady
/// streaming allocates nothing, and an idle stream holds no frame memory.
final class FrameScratch {
    var frame: [UInt8] = []

    init() { frame.reserveCapacity(16 * 1024) }
}

func milliseconds(since start: ContinuousClock.Instant) -> Double {
    start.duration(to: .now).milliseconds
}
