import Foundation
import StreamTestSupport

/// An SSE response read event by event: `HTTPStreamReader` + `SSEParser`.
///
/// For tests that act mid-stream: wait for the `open` event, then stop reading or `close()`.
/// Events are stamped with the time their last byte was read.
final class SSEClient {
    /// The underlying response (status, headers, `fd`, `close`).
    let reader: HTTPStreamReader
    /// Everything parsed so far: `events`, `comments`, `retry`, `lastEventID`, `hasPartialEvent`.
    private(set) var parser = SSEParser()
    /// Every wire byte of the body so far (de-chunked), for framing checks.
    private(set) var raw: [UInt8] = []
    private var delivered = 0

    var head: HTTPHead { reader.head }
    var events: [SSEEvent] { parser.events }
    var comments: [String] { parser.comments }

    private init(reader: HTTPStreamReader) { self.reader = reader }

    /// Sends `GET path` (plus `headers`, e.g. `Last-Event-ID`) and reads the response head.
    /// Does not check the status: a 404 or 204 is a normal outcome for some tests.
    static func open(
        port: UInt16,
        path: String,
        headers: [(String, String)] = [],
        version: String = "1.1",
        receiveBufferSize: Int32? = nil,
        timeout: Duration = RawHTTPClient.defaultTimeout
    ) throws -> SSEClient {
        SSEClient(reader: try HTTPStreamReader.open(
            port: port, path: path, headers: headers, version: version,
            receiveBufferSize: receiveBufferSize, timeout: timeout))
    }

    /// The next event not yet returned by `next`, waiting up to `timeout`; nil when the stream
    /// ended. Comments seen meanwhile are in `comments`.
    func next(timeout: Duration = RawHTTPClient.defaultTimeout) throws -> SSEEvent? {
        let deadline = ContinuousClock.now + timeout
        while delivered == parser.events.count {
            guard let bytes = try reader.readSome(timeout: deadline - .now) else { return nil }
            raw += bytes
            parser.feed(bytes, at: .now)
        }
        delivered += 1
        return parser.events[delivered - 1]
    }

    /// Skips events until one named `event` (e.g. "done"); nil if the stream ends first.
    func next(named event: String, timeout: Duration = RawHTTPClient.defaultTimeout) throws -> SSEEvent? {
        let deadline = ContinuousClock.now + timeout
        while let e = try next(timeout: deadline - .now) {
            if e.event == event { return e }
        }
        return nil
    }

    /// Reads to the end of the stream; returns all events of the stream (also earlier ones).
    @discardableResult
    func readToEnd(timeout: Duration = RawHTTPClient.defaultTimeout) throws -> [SSEEvent] {
        let deadline = ContinuousClock.now + timeout
        while try next(timeout: deadline - .now) != nil {}
        return parser.events
    }

    /// Drops the connection mid-stream, like a client going away (`reset`: RST instead of FIN).
    func close(reset: Bool = false) { reader.close(reset: reset) }
}

/// Reads a whole SSE response from `GET path`: head, every event (stamped with its arrival
/// time) and every comment. `timeout` bounds the whole stream.
func readSSE(
    port: UInt16,
    path: String,
    headers: [(String, String)] = [],
    version: String = "1.1",
    timeout: Duration = RawHTTPClient.defaultTimeout
) throws -> (head: HTTPHead, events: [SSEEvent], comments: [String]) {
    let deadline = ContinuousClock.now + timeout
    let client = try SSEClient.open(port: port, path: path, headers: headers, version: version, timeout: timeout)
    let events = try client.readToEnd(timeout: deadline - .now)
    return (client.head, events, client.comments)
}

/// Runs a real `curl -N -sS --max-time T url` (plus `extraArgs`, e.g. `["--http1.0"]`) and
/// parses its stdout with `SSEParser`, because "works with `curl -N`" is a promise of the
/// product. Events are stamped when curl hands their bytes over. `exitCode` is curl's (28 means
/// it hit --max-time); `stderr` has curl's error message, if any.
func readSSEWithCurl(
    url: String,
    timeout: Duration = RawHTTPClient.defaultTimeout,
    extraArgs: [String] = []
) throws -> (events: [SSEEvent], stderr: String, exitCode: Int32) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
    process.arguments = ["-N", "-sS", "--max-time", String(format: "%.3f", seconds)] + extraArgs + [url]
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = FileHandle.nullDevice
    try process.run()

    // Backstop in case curl ignores --max-time: kill it a little later so the test cannot hang.
    let pid = process.processIdentifier
    let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds + 5, execute: watchdog)
    defer { watchdog.cancel() }

    // stdout is read on this thread so each event gets its real arrival time; stderr is tiny
    // with -sS and is read after stdout ends.
    var parser = SSEParser()
    let fd = stdout.fileHandleForReading.fileDescriptor
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            parser.feed(buffer[0..<n], at: .now)
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            break
        }
    }
    let errorText = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (parser.events, errorText, process.terminationStatus)
}
