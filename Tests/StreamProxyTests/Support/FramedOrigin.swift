import Foundation

/// How a scripted response delimits its body.
enum Framing: String, CaseIterable, Sendable {
    case contentLength = "Content-Length"
    case chunked
    /// Ended by the origin closing the connection.
    case close
}

/// A response written in exact pieces: each piece is one `send` (a chunk of its own when
/// chunked), with a pause after it so it arrives as a read of its own. The last piece carries
/// the end of the body in the same send: the terminating chunk, or the FIN (the socket is
/// corked, so data and FIN leave in one segment).
struct FramedResponse: Sendable {
    var body: [UInt8]
    var framing: Framing
    var headers: [(String, String)] = [("Content-Type", "text/plain")]
    /// The body's pieces (sizes, in order); the rest of the body, if any, is one last piece.
    var pieces: [Int] = []
    /// Pause after each piece but the last.
    var pauseMilliseconds = 3
    /// Sends the end of the body (terminating chunk, FIN) this much later instead of with the
    /// last piece.
    var endDelayMilliseconds: Int?

    /// Pieces of `size` bytes each.
    static func split(_ body: [UInt8], by size: Int) -> [Int] {
        Array(repeating: size, count: (body.count + size - 1) / size)
    }

    func write(to c: ScriptedConnection) {
        var head = "HTTP/1.1 200 OK\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        switch framing {
        case .contentLength: head += "Content-Length: \(body.count)\r\n"
        case .chunked: head += "Transfer-Encoding: chunked\r\n"
        case .close: head += "Connection: close\r\n"
        }
        guard c.write(head + "\r\n") else { return }
        // The pieces that hold the body (the last one cut to fit), then its rest as one more.
        var sizes: [Int] = []
        var covered = 0
        for size in pieces where covered < body.count {
            sizes.append(min(size, body.count - covered))
            covered += sizes.last!
        }
        if covered < body.count { sizes.append(body.count - covered) }
        var at = 0
        for (k, size) in sizes.enumerated() {
            let piece = Array(body[at..<min(body.count, at + size)])
            at += piece.count
            let last = k == sizes.count - 1
            var bytes = framing == .chunked ? chunk(piece) : piece
            if last && endDelayMilliseconds == nil {
                if framing == .chunked { bytes += Array("0\r\n\r\n".utf8) }
                if framing == .close {
                    c.writeAndShutdown(bytes)
                    return
                }
            }
            guard c.write(bytes) else { return }
            if !last { c.pause(milliseconds: pauseMilliseconds) }
        }
        if let delay = endDelayMilliseconds {
            c.pause(milliseconds: delay)
            if framing == .chunked { c.write("0\r\n\r\n") }
            if framing == .close { c.writeAndShutdown([]) }
        }
    }

    private func chunk(_ piece: [UInt8]) -> [UInt8] {
        Array((String(piece.count, radix: 16) + "\r\n").utf8) + piece + Array("\r\n".utf8)
    }
}

/// An origin of scripted responses by path, on a ``ScriptedHTTPServer`` (one connection at a
/// time, so each stream should have one upstream on it). Counts requests per path.
final class FramedOrigin: @unchecked Sendable {
    private let server: ScriptedHTTPServer
    private let lock = NSLock()
    private var responses: [String: FramedResponse] = [:]
    private var served: [String: Int] = [:]
    /// The heads of the requests served, last first.
    private var requestHeads: [String] = []

    init() throws {
        let box = Box()
        server = try ScriptedHTTPServer { c in box.origin?.handle(c) }
        box.origin = self
    }

    var port: UInt16 { server.port }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func set(_ path: String, _ response: FramedResponse) {
        lock.withLock { responses[path] = response }
    }

    /// The header lines of the last request (after its request line).
    var lastRequestHeaders: [String] {
        lock.withLock { requestHeads.first.map { $0.components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty } } ?? [] }
    }

    /// The values of every `name` field of the last request, in order (the name in any case).
    func lastRequestValues(_ name: String) -> [String] {
        let prefix = name.lowercased() + ":"
        return lastRequestHeaders.filter { $0.lowercased().hasPrefix(prefix) }
            .map { String($0.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces) }
    }

    /// The encodings the last request announced (`Accept-Encoding`).
    var lastAcceptEncoding: String? { lastRequestValues("Accept-Encoding").first }

    func stop() { server.stop() }

    private func handle(_ c: ScriptedConnection) {
        let response: FramedResponse? = lock.withLock {
            requestHeads.insert(c.requestHead, at: 0)
            served[c.path, default: 0] += 1
            return responses[c.path]
        }
        guard let response else {
            c.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return
        }
        response.write(to: c)
    }

    private final class Box: @unchecked Sendable {
        weak var origin: FramedOrigin?
    }
}

/// Compressed fixtures made by the command-line tools of each coding.
enum Compress {
    /// `coding` is an HTTP content coding: gzip, deflate (zlib), br or zstd.
    static func run(_ coding: String, _ input: [UInt8]) throws -> [UInt8] {
        let command: [String]
        switch coding {
        case "gzip": command = ["gzip", "-c", "-9", "-n"]
        case "br": command = ["brotli", "-c", "-q", "11"]
        case "zstd": command = ["zstd", "-c", "-q", "-19"]
        case "deflate": return try zlib(input)
        default: throw CompressError(message: "unknown coding \(coding)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = command
        let stdin = Pipe(), stdout = Pipe()
        p.standardInput = stdin
        p.standardOutput = stdout
        try p.run()
        stdin.fileHandleForWriting.write(Data(input))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, !out.isEmpty else {
            throw CompressError(message: "\(command[0]) exited \(p.terminationStatus)")
        }
        return Array(out)
    }

    /// HTTP's `deflate` is the zlib format: gzip's raw deflate data (between its 10-byte header,
    /// which `-n` keeps free of optional fields, and its 8-byte trailer) in a zlib header and
    /// Adler-32 trailer, so that no tool beyond gzip is needed.
    private static func zlib(_ input: [UInt8]) throws -> [UInt8] {
        let gzip = try run("gzip", input)
        guard gzip.count > 18, gzip[3] == 0 else { throw CompressError(message: "unexpected gzip header") }
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in input {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        let adler = b << 16 | a
        return [0x78, 0xDA] + gzip[10..<(gzip.count - 8)] + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: adler >> $0) }
    }

    struct CompressError: Error { let message: String }
}
