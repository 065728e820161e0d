import CurlStream
import EventLoop
import StreamProxy

/// A ``FanOutSession`` driven by hand, with a clock of the test's own: feeds it events, keeps
/// what it wrote (parsed as a browser would), the commands it gave and the timer it asked for.
/// No sockets, no threads, no sleeping: time moves only when the test says.
package struct SessionHarness {
    package typealias Instant = ContinuousClock.Instant

    package var session: FanOutSession
    package var output = SessionOutput()
    /// The test's clock.
    package private(set) var now: Instant
    /// Every byte the session wrote, in order.
    package private(set) var wire: [UInt8] = []
    package private(set) var parser = SSEParser()
    /// Every command, in order.
    package private(set) var commands: [FanOutSession.Command] = []
    /// The instant the session last asked to be woken at.
    package private(set) var wake: Instant?
    package private(set) var end: FanOutSession.End?
    package private(set) var bytesForwarded = 0
    package private(set) var ttfbs: [Double] = []
    /// The client's queue as the harness reports it after each write (set it to test pauses).
    package var queued = 0

    package static let defaultSettings = FanOutSession.Settings(
        prefix: 10, order: .completion, streamBuffer: 1_000, heartbeat: .seconds(15), readTimeout: .seconds(5),
        retryMilliseconds: 2000)

    package init(upstreams: Int, settings: FanOutSession.Settings = defaultSettings,
                 transcoders: TranscoderPool = TranscoderPool()) {
        now = ContinuousClock.now
        let urls = (0..<upstreams).map { "http://u\($0).test/x" }
        session = FanOutSession(route: "r", urls: urls, settings: settings, transcoders: transcoders, at: now)
    }

    package var events: [SSEEvent] { parser.events }
    package var names: [String] { events.map(\.event) }
    package var comments: [String] { parser.comments }

    package mutating func advance(_ d: Duration) { now += d }

    /// Moves the clock to the requested wake-up and fires the timer.
    package mutating func fireTimer() {
        guard let wake else { return }
        self.wake = nil
        if wake > now { now = wake }
        session.timerFired(at: now, into: &output)
        collect()
    }

    package mutating func open() {
        session.open(at: now, into: &output)
        collect()
    }

    package mutating func connecting(_ i: Int) {
        session.connecting(i, at: now, into: &output)
        collect()
    }

    @discardableResult
    package mutating func head(_ i: Int, status: Int = 200, type: String? = "text/plain", length: Int64? = nil,
                               encoding: String? = nil) -> TransferDirective {
        let head = TransferHead(status: status, contentType: type, contentLength: length, contentEncoding: encoding)
        let d = session.head(i, head, at: now, into: &output)
        collectUpstreamEvent()
        return d
    }

    @discardableResult
    package mutating func bytes(_ i: Int, _ data: [UInt8]) -> TransferDirective {
        let d = data.withUnsafeBytes { session.bytes(i, $0, at: now, into: &output) }
        collectUpstreamEvent()
        return d
    }

    @discardableResult
    package mutating func bytes(_ i: Int, _ text: String) -> TransferDirective { bytes(i, Array(text.utf8)) }

    package mutating func ended(_ i: Int) {
        session.ended(i, at: now, into: &output)
        collectUpstreamEvent()
    }

    /// The verdict after `settle`: the body did not end within the same read.
    package mutating func unsettled(_ i: Int) {
        session.unsettled(i, at: now, into: &output)
        collectUpstreamEvent()
    }

    package mutating func failed(_ i: Int, kind: String = "reset", message: String = "connection reset") {
        session.failed(i, kind: kind, message: message, at: now, into: &output)
        collectUpstreamEvent()
    }

    package mutating func drained() -> [Int] {
        queued = 0
        session.clientDrained(at: now)
        var resumed: [Int] = []
        while let i = session.nextResume(at: now, into: &output) {
            resumed.append(i)
            collect()
        }
        return resumed
    }

    package mutating func clientGone() {
        session.clientGone(into: &output)
        collect()
    }

    package mutating func shutdown() {
        session.shutdown(at: now, into: &output)
        collect()
    }

    /// An upstream's own event must be answered by its directive alone.
    private mutating func collectUpstreamEvent() {
        precondition(output.commands.isEmpty, "an upstream event gave commands: \(output.commands)")
        collect()
    }

    private mutating func collect() {
        if !output.frames.isEmpty {
            wire += output.frames
            parser.feed(output.frames, at: now)
            output.frames.removeAll()
            _ = session.written(queued: queued)
        }
        commands += output.commands
        output.commands.removeAll()
        if let w = output.wake { wake = w }
        output.wake = nil
        if let e = output.end {
            precondition(end == nil, "the stream ended twice")
            end = e
        }
        output.end = nil
        bytesForwarded += output.bytesForwarded
        output.bytesForwarded = 0
        if let t = output.ttfbMilliseconds { ttfbs.append(t) }
        output.ttfbMilliseconds = nil
    }

    /// The JSON data of the events named `name`.
    package func data(_ name: String) throws -> [[String: Any]] {
        try events.filter { $0.event == name }.map { try $0.json() }
    }

    /// Upstream `i`'s chunk texts joined.
    package func text(of i: Int) throws -> String {
        try data("chunk").filter { $0.int("i") == i }.compactMap { $0.string("text") }.joined()
    }
}
