import EventLoop

/// One SSE stream opened by the load generator, from connect to its end.
final class BenchStream {
    /// How a stream ended, as reported.
    enum Outcome: Equatable {
        /// `done` arrived and the body ended.
        case completed
        /// A status other than 200.
        case httpStatus(Int)
        /// The connection failed or was reset (errno).
        case connection(Int32)
        /// The body ended without `done`.
        case incomplete
        /// No end within the stream timeout.
        case timeout
    }

    /// When it was due to start (open loop: its slot in the schedule; closed loop: when it was
    /// opened). Latencies are measured from here, so a slow server cannot hide queueing.
    let scheduled: ContinuousClock.Instant
    private var connection: TCPConnection?
    private var parser = SSEResponseParser()
    private(set) var firstByte: ContinuousClock.Instant?
    private(set) var firstChunk: ContinuousClock.Instant?
    private(set) var doneAt: ContinuousClock.Instant?
    private(set) var events = 0
    private(set) var errorKinds: [String] = []
    private var status = 0
    private var finished = false
    var onEnd: ((BenchStream, Outcome) -> Void)?

    init(loop: EventLoop, target: BenchTarget, scheduled: ContinuousClock.Instant) throws {
        self.scheduled = scheduled
        let c = try TCPConnection(loop: loop, host: target.host, port: target.port)
        connection = c
        let request = target.request
        c.onConnect = { [unowned c] in c.write(request) }
        c.onData = { [unowned self] bytes in self.received(bytes) }
        c.onEnd = { [unowned self] end in
            switch end {
            case .closed:
                var parsed: [SSEResponseParser.Event] = []
                self.parser.closed { parsed.append($0) }
                for e in parsed { self.handle(e) }
                if !self.finished { self.finish(self.status != 200 && self.status != 0 ? .httpStatus(self.status) : .incomplete) }
            case .error(let e): self.finish(.connection(e))
            case .local: break
            }
        }
    }

    var bodyBytes: Int { parser.bodyBytes }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if firstByte == nil { firstByte = .now }
        // Handled after feed returns: handling may end the stream, which reads the parser.
        var parsed: [SSEResponseParser.Event] = []
        parser.feed(bytes) { parsed.append($0) }
        for e in parsed where !finished { handle(e) }
    }

    private func handle(_ e: SSEResponseParser.Event) {
        switch e {
        case .head(let s):
            status = s
            if s != 200 { finish(.httpStatus(s)) }
        case .event(let name, let kind):
            events += 1
            if name == "chunk", firstChunk == nil { firstChunk = .now }
            if name == "error" { errorKinds.append(kind ?? "unknown") }
            if name == "done" { doneAt = .now }
        case .end:
            finish(doneAt != nil ? .completed : .incomplete)
        }
    }

    /// Gives up on the stream (timeout or end of run).
    func abandon(_ outcome: Outcome) { finish(outcome) }

    private func finish(_ outcome: Outcome) {
        guard !finished else { return }
        finished = true
        connection?.close()
        connection = nil
        let callback = onEnd
        onEnd = nil
        callback?(self, outcome)
    }
}
