import EventLoop

/// One body being sent by the test origin: written a slice at a time as the client drains it,
/// at a fixed rate, or up to a stall or reset point.
final class OriginResponse {
    private let loop: EventLoop
    private let stream: HTTPResponseStream
    private let kind: OriginBody
    private let length: Int
    private let options: OriginOptions
    private var timer: LoopTimer?
    /// Body bytes written so far.
    private(set) var sent = 0
    private(set) var abandoned = false
    private(set) var didReset = false
    private var done = false
    var onFinished: ((OriginResponse) -> Void)?

    init(loop: EventLoop, stream: HTTPResponseStream, kind: OriginBody, length: Int, options: OriginOptions) {
        self.loop = loop
        self.stream = stream
        self.kind = kind
        self.length = length
        self.options = options
    }

    func start() {
        stream.onClose = { [unowned self] in
            self.abandoned = self.sent < self.length
            self.finish()
        }
        if options.rate > 0 {
            timer = LoopTimer(loop: loop) { [unowned self] in self.tick() }
            tick()
        } else {
            stream.onDrain = { [unowned self] in self.writeMore() }
            writeMore()
        }
    }

    /// The most that may be written before a stall or reset point.
    private var limit: Int {
        min(length, options.stallAfter ?? Int.max, options.resetAfter ?? Int.max)
    }

    private func writeMore() {
        guard !done else { return }
        let n = min(options.chunk, limit - sent)
        if n > 0 {
            write(n)
        }
        if sent >= limit { reachedLimit() }
    }

    /// Rate mode: every tick, the bytes due for it. Ticks are 10 ms apart, or longer for slow
    /// rates so that each write carries 64 bytes (a thousand streams trickling at 100 B/s are then
    /// 1,600 writes a second, not 100,000 one-byte writes).
    private func tick() {
        guard !done else { return }
        let interval = Self.tickInterval(rate: options.rate, chunk: options.chunk)
        let n = min(max(1, Int((Double(options.rate) * interval).rounded())), options.chunk, limit - sent)
        if n > 0 { write(n) }
        if sent >= limit {
            reachedLimit()
        } else {
            timer?.schedule(after: interval)
        }
    }

    /// 10 ms, or the time `rate` takes to make a write of 64 bytes (or of `chunk`, if smaller),
    /// at most a second.
    static func tickInterval(rate: Int, chunk: Int) -> Double {
        max(0.01, min(1, Double(min(64, chunk)) / Double(rate)))
    }

    private func write(_ n: Int) {
        stream.write(kind.slice(offset: sent, count: n))
        sent += n
    }

    private func reachedLimit() {
        if let r = options.resetAfter, sent >= r, sent < length {
            // Let the bytes so far reach the socket first: a reset discards what is unsent.
            if stream.queuedBytes > 0 {
                timer = nil
                stream.onDrain = { [unowned self] in self.reset() }
            } else {
                reset()
            }
        } else if options.stallAfter.map({ sent >= $0 && sent < length }) == true {
            // Hold the connection open, silent, until the client gives up.
            stream.onDrain = nil
            timer = nil
        } else if sent >= length {
            stream.end()
            finish()
        }
    }

    private func reset() {
        didReset = true
        stream.resetConnection()
        finish()
    }

    private func finish() {
        guard !done else { return }
        done = true
        timer = nil
        stream.onClose = nil
        stream.onDrain = nil
        stream.end()
        let callback = onFinished
        onFinished = nil
        callback?(self)
    }
}
