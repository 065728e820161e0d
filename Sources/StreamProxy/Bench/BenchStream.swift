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
    private let loop: EventLoop
    private let target: BenchTarget
    private let request: [UInt8]
    private var connection: TCPConnection?
    /// Whether the connection came from an earlier stream and nothing has arrived on it yet:
    /// if the server closed it meanwhile, the request is sent again on a new connection.
    private var retryable = false
    /// The kept-alive connection it started on was closed by the server; it went out again on a
    /// new one.
    private(set) var reconnected = false
    private var parser = SSEResponseParser()
    private(set) var firstByte: ContinuousClock.Instant?
    private(set) var firstChunk: ContinuousClock.Instant?
    private(set) var doneAt: ContinuousClock.Instant?
    private(set) var events = 0
    private(set) var errorKinds: [String] = []
    private var status = 0
    private var finished = false
    /// Called once with the outcome and, when the response ended cleanly on a connection the
    /// server keeps open, that connection for the next stream.
    var onEnd: ((BenchStream, Outcome, TCPConnection?) -> Void)?

    /// Starts the stream on `reused` (a kept-alive connection of an earlier stream) or on a
    /// new connection.
    init(loop: EventLoop, target: BenchTarget, request: [UInt8], scheduled: ContinuousClock.Instant,
         reusing reused: TCPConnection? = nil) throws {
        self.scheduled = scheduled
        self.loop = loop
        self.target = target
        self.request = request
        if let reused {
            retryable = true
            attach(reused)
            reused.write(request)
        } else {
            try connect()
        }
    }

    private func connect() throws {
        // BenchRun's init checked that the target is resolved.
        let c = try TCPConnection(loop: loop, host: target.address!, port: target.port)
        let request = self.request
        c.onConnect = { [unowned c] in c.write(request) }
        attach(c)
    }

    private func attach(_ c: TCPConnection) {
        connection = c
        c.onData = { [unowned self] bytes in self.received(bytes) }
        c.onEnd = { [unowned self] end in self.connectionEnded(end) }
    }

    private func connectionEnded(_ end: TCPConnection.End) {
        connection = nil
        if retryable, end != .local {
            retryable = false
            reconnected = true
            do { return try connect() } catch { return finish(.connection(0)) }
        }
        switch end {
        case .closed:
            if parser.closed() { ended() }
            if !finished { finish(status != 200 && status != 0 ? .httpStatus(status) : .incomplete) }
        case .error(let e): finish(.connection(e))
        case .local: break
        }
    }

    var bodyBytes: Int { parser.bodyBytes }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        retryable = false
        let now = ContinuousClock.now
        if firstByte == nil { firstByte = now }
        let found = parser.feed(bytes)
        if let s = found.status {
            status = s
            if s != 200 { return finish(.httpStatus(s)) }
        }
        events += found.events
        if found.sawChunk, firstChunk == nil { firstChunk = now }
        if found.sawDone, doneAt == nil { doneAt = now }
        errorKinds += found.errorKinds
        if found.ended { ended() }
    }

    private func ended() {
        finish(doneAt != nil ? .completed : .incomplete)
    }

    /// Gives up on the stream (timeout or end of run).
    func abandon(_ outcome: Outcome) { finish(outcome) }

    private func finish(_ outcome: Outcome) {
        guard !finished else { return }
        finished = true
        var keep: TCPConnection?
        if outcome == .completed, parser.connectionReusable, let c = connection {
            c.onData = nil
            c.onEnd = nil
            keep = c
        } else {
            connection?.close()
        }
        connection = nil
        let callback = onEnd
        onEnd = nil
        callback?(self, outcome, keep)
    }
}
