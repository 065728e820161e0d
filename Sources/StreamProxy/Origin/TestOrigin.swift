import EventLoop

/// The deterministic upstream of PRODUCT.md §6, for the demo, the tests and the benchmarks.
///
/// Served alone by `stream-proxy origin` and, in demo mode, by `serve` under `/origin/`.
/// Endpoints (paths relative to the origin's root; every one takes `delay=MS` before headers):
///
/// | path | response |
/// | --- | --- |
/// | `/bytes/N` | N bytes of ASCII, with Content-Length. Options: `rate=B/s` trickle, `chunk=K` write size, `stallAfter=K` stop after K bytes and hold the connection, `resetAfter=K` reset the connection after K bytes, `status=S`, `chunked=1` no Content-Length |
/// | `/utf8/N` | N bytes of multi-byte UTF-8 text, same options |
/// | `/inject` | a body that tries to forge SSE framing |
/// | `/delay/MS` | 1 KiB after MS milliseconds |
/// | `/stall` | headers, then nothing until the client leaves |
/// | `/reset/K` | K bytes of a longer body, then a TCP reset |
/// | `/malformed` | a response that is not HTTP |
/// | `/redirect/N` | a chain of N redirects ending in 1 KiB |
/// | `/redirect-loop` | a redirect to itself, forever |
/// | `/status/S` | status S with a short body |
/// | `/stats`, `/stats/reset` | connections and bytes seen, as JSON |
final class TestOrigin {
    private let server: () -> HTTPServer?
    private let loop: EventLoop
    private var stats = OriginStats()
    /// Responses in progress, kept alive until they end or their client leaves.
    private var responses: [ObjectIdentifier: OriginResponse] = [:]
    /// Delayed replies not yet made: held here, not by themselves, so that an origin stopped
    /// before they fire frees them (and its loop) instead of leaking them.
    private var timers: [Int: LoopTimer] = [:]
    private var nextTimer = 0

    /// - Parameter server: the server whose connection counts `/stats` reports.
    init(loop: EventLoop, server: @escaping () -> HTTPServer?) {
        self.loop = loop
        self.server = server
    }

    /// Answers `request`, whose path has had any mount prefix removed (`path`).
    func handle(_ request: HTTPRequest, path: String) {
        loop.preconditionInEventLoop()
        stats.requests += 1
        guard request.method == .GET || request.method == .HEAD else {
            request.respond(status: 405, headers: [("Allow", "GET, HEAD"), jsonType],
                            body: JSONWriter.object([("error", .string("method not allowed"))]))
            return
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if parts.first != "stats" {
            stats.requestsByTarget[request.uri, default: 0] += 1
            if let open = server()?.openConnections {
                // Every connection arrives with a request, so the most connections open at any
                // request's arrival is the most open at once (stats requests excluded).
                stats.peakConnections = max(stats.peakConnections, open)
            }
        }
        let options = OriginOptions(request)
        switch (parts.first ?? "", parts.count) {
        case ("bytes", 2), ("utf8", 2):
            guard let n = Int(parts[1]), n >= 0 else { return badRequest(request, "size must be a whole number") }
            serveBody(request, kind: parts[0] == "utf8" ? .utf8 : .ascii, length: n, options: options)
        case ("inject", 1):
            serveBody(request, kind: .injection, length: OriginBody.injectionBody.count, options: options)
        case ("delay", 2):
            guard let ms = Int(parts[1]), ms >= 0 else { return badRequest(request, "delay must be milliseconds") }
            var o = options
            o.delay = Double(ms) / 1000
            serveBody(request, kind: .ascii, length: 1024, options: o)
        case ("stall", 1):
            var o = options
            o.stallAfter = 0
            serveBody(request, kind: .ascii, length: 1024, options: o)
        case ("reset", 2):
            guard let k = Int(parts[1]), k >= 0 else { return badRequest(request, "size must be a whole number") }
            var o = options
            o.resetAfter = k
            serveBody(request, kind: .ascii, length: k * 2 + 1024, options: o)
        case ("malformed", 1):
            later(options.delay) {
                // Not HTTP at all; then a real response so evhttp closes the connection cleanly.
                request.writeRaw(Array("SPDY/9 banana\r\nno: headers here\r\n\r\n".utf8))
                request.respond(status: 200, headers: [("Connection", "close")])
            }
        case ("redirect", 2):
            guard let n = Int(parts[1]), n >= 0 else { return badRequest(request, "hops must be a whole number") }
            later(options.delay) {
                if n == 0 {
                    request.respond(status: 200, headers: [("Content-Type", "text/plain")], body: OriginBody.ascii.slice(offset: 0, count: 1024))
                } else {
                    request.respond(status: 302, headers: [("Location", "\(n - 1)")], text: "redirect")
                }
            }
        case ("redirect-loop", 1):
            later(options.delay) {
                request.respond(status: 302, headers: [("Location", "redirect-loop")], text: "loop")
            }
        case ("status", 2):
            guard let s = Int(parts[1]), (100...599).contains(s) else { return badRequest(request, "status must be 100-599") }
            var o = options
            o.status = s
            serveBody(request, kind: .ascii, length: 64, options: o)
        case ("stats", 1):
            request.respond(status: 200, headers: [jsonType], body: statsJSON())
        case ("stats", 2) where parts[1] == "reset":
            stats = OriginStats(connectionsBefore: server()?.connectionsAccepted ?? 0)
            request.respond(status: 200, headers: [jsonType], body: statsJSON())
        default:
            request.respond(status: 404, headers: [jsonType], body: JSONWriter.object([
                ("error", .string("no such origin endpoint")), ("path", .string(path)),
            ]))
        }
    }

    private func serveBody(_ request: HTTPRequest, kind: OriginBody, length: Int, options: OriginOptions) {
        later(options.delay) { [unowned self] in
            var headers = [("Content-Type", kind == .ascii ? "text/plain" : "text/plain; charset=utf-8")]
            if options.isPlain && length <= OriginBody.smallBody {
                // A small body with no shaping goes out in one reply: the cheapest path, which
                // keeps the origin's share of a shared machine small in benchmarks.
                stats.bodyBytesSent += length
                request.respond(status: options.status, headers: headers, body: kind.slice(offset: 0, count: length))
                return
            }
            if !options.chunked { headers.append(("Content-Length", String(length))) }
            let stream = request.startStream(status: options.status, headers: headers)
            let response = OriginResponse(loop: loop, stream: stream, kind: kind, length: length, options: options)
            let key = ObjectIdentifier(response)
            response.onFinished = { [unowned self] r in
                self.stats.bodyBytesSent += r.sent
                if r.abandoned { self.stats.bodiesAbandoned += 1 }
                if r.didReset { self.stats.resets += 1 }
                self.responses[key] = nil
            }
            responses[key] = response
            response.start()
        }
    }

    /// Runs `body` after `seconds` (at once for 0), keeping the timer alive until it fires.
    private func later(_ seconds: Double, _ body: @escaping () -> Void) {
        guard seconds > 0 else { return body() }
        let key = nextTimer
        nextTimer += 1
        let timer = LoopTimer(loop: loop) { [unowned self] in
            body()
            timers[key] = nil
        }
        timers[key] = timer
        timer.schedule(after: seconds)
    }

    private func badRequest(_ request: HTTPRequest, _ message: String) {
        request.respond(status: 400, headers: [jsonType], body: JSONWriter.object([("error", .string(message))]))
    }

    private func statsJSON() -> [UInt8] {
        let s = server()
        return JSONWriter.object([
            ("requests", .int(stats.requests)),
            ("requestsByTarget", .object(stats.requestsByTarget.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("connectionsAccepted", .int((s?.connectionsAccepted ?? 0) - stats.connectionsBefore)),
            ("openConnections", .int(s?.openConnections ?? 0)),
            ("peakConnections", .int(stats.peakConnections)),
            ("bodyBytesSent", .int(stats.bodyBytesSent + responses.values.reduce(0) { $0 + $1.sent })),
            ("bodiesAbandoned", .int(stats.bodiesAbandoned)),
            ("resets", .int(stats.resets)),
            ("responsesInProgress", .int(responses.count)),
        ])
    }
}

/// A timer that keeps itself alive until it fires (the origin's delays are fire-and-forget).
let jsonType = ("Content-Type", "application/json")
