// StreamProxy comparison peer: the same SSE fan-out written the way a Hummingbird 2 user would.
//
// GET /stream/<route> fetches the route's upstreams concurrently (a task group, one child per
// upstream, all on one shared AsyncHTTPClient) and streams back, as Server-Sent Events in
// completion order, a bounded prefix of each body as its bytes arrive (PRODUCT.md §5).
// The children send their events into an AsyncStream that the response body writer drains.
//
// Usage: HBPeer [PORT]     routes: ROUTES = JSON, or the path of a JSON file:
//   {"w1": {"prefix": 50, "upstreams": ["http://127.0.0.1:19501/bytes/1024", ...]}}

import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

let maxPrefix = 1 << 20

// MARK: Routes

struct Route: Decodable, Sendable {
    var upstreams: [String]
    var prefix: Int

    enum CodingKeys: String, CodingKey { case upstreams, prefix }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        upstreams = try c.decode([String].self, forKey: .upstreams)
        if let text = try? c.decode(String.self, forKey: .prefix) {  // "4KiB", as StreamProxy takes
            let units = ["KiB": 1024, "MiB": 1 << 20, "KB": 1000, "MB": 1_000_000, "B": 1]
            let unit = units.first { text.hasSuffix($0.key) }
            guard let n = Int(text.dropLast(unit?.key.count ?? 0)) else {
                throw DecodingError.dataCorruptedError(forKey: .prefix, in: c, debugDescription: "bad size \(text)")
            }
            prefix = n * (unit?.value ?? 1)
        } else {
            prefix = try c.decodeIfPresent(Int.self, forKey: .prefix) ?? 1024
        }
    }
}

func loadRoutes() throws -> [String: Route] {
    guard let raw = ProcessInfo.processInfo.environment["ROUTES"], !raw.isEmpty else {
        fatalError("ROUTES is not set (JSON, or the path of a JSON file)")
    }
    let json = raw.hasPrefix("{") ? Data(raw.utf8) : try Data(contentsOf: URL(fileURLWithPath: raw))
    struct Config: Decodable { var routes: [String: Route] }
    if let config = try? JSONDecoder().decode(Config.self, from: json) { return config.routes }
    return try JSONDecoder().decode([String: Route].self, from: json)
}

// MARK: Events (PRODUCT.md §5)

struct Open: Encodable {
    struct Upstream: Encodable { var i: Int; var url: String }
    var route: String, prefix: Int, order = "completion", upstreams: [Upstream]
}
struct Head: Encodable { var i: Int, status: UInt, contentType: String?, ttfbMs: Double }
struct Chunk: Encodable { var i: Int, text: String }
struct End: Encodable { var i: Int, bytes: Int, truncated: Bool, ms: Double }
struct Failure: Encodable { var i: Int, url: String, kind: String, message: String }
struct Done: Encodable { var ok: Int, failed: Int, ms: Double }

/// One event ready to frame: its name and its JSON data line.
struct Event: Sendable {
    var name: String
    var json: String
    var isFinal: Bool { name == "end" || name == "error" }

    init(_ name: String, _ data: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.name = name
        self.json = String(decoding: (try? encoder.encode(data)) ?? Data("{}".utf8), as: UTF8.self)
    }

    func frame(id: String) -> ByteBuffer {
        ByteBuffer(string: "event: \(name)\nid: \(id)\ndata: \(json)\n\n")
    }
}

func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    return (ms * 10).rounded() / 10
}

/// How many bytes at the end of `bytes` are an incomplete UTF-8 character (held back, never split).
func incompleteSuffix(_ bytes: [UInt8]) -> Int {
    for back in stride(from: 1, through: min(3, bytes.count), by: 1) {
        let byte = bytes[bytes.count - back]
        if byte & 0xC0 == 0x80 { continue }  // continuation byte: keep looking for the lead
        let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
        return length > back ? back : 0
    }
    return 0
}

func errorKind(_ error: any Error) -> String {
    switch error {
    case let error as HTTPClientError:
        switch error {
        case .connectTimeout, .readTimeout, .deadlineExceeded: return "timeout"
        case .remoteConnectionClosed: return "reset"
        case .getConnectionFromPoolTimeout: return "pool"
        case .tlsHandshakeTimeout: return "tls"
        default: return "protocol"
        }
    case let error as HTTPParserError where error == .invalidEOFState: return "reset"  // closed mid-body
    case is HTTPParserError: return "protocol"
    case is NIOConnectionError: return "connect"
    case let error as IOError where error.errnoCode == ECONNREFUSED: return "connect"
    case let error as IOError where error.errnoCode == ECONNRESET: return "reset"
    default: return "protocol"
    }
}

// MARK: One upstream

/// Fetches one upstream and sends head, chunks of its first `prefix` bytes, then end (or error).
func fetch(
    _ i: Int, _ url: String, prefix: Int, start: ContinuousClock.Instant,
    client: HTTPClient, events: AsyncStream<Event>.Continuation
) async {
    do {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        events.yield(Event("head", Head(
            i: i, status: response.status.code, contentType: response.headers.first(name: "content-type"),
            ttfbMs: milliseconds(since: start))))
        let length = response.headers.first(name: "content-length").flatMap { Int($0) }
        var received = 0, forwarded = 0, truncated = false
        var pending: [UInt8] = []  // an incomplete character carried to the next read
        for try await buffer in response.body {
            pending += buffer.readableBytesView.prefix(prefix - received)
            received += buffer.readableBytes
            let full = received >= prefix
            if full { truncated = received > prefix || (length ?? .max) > prefix }  // length unknown: say so
            // A character cut by the prefix limit is never sent; an ill-formed tail at the end is.
            let hold = full && !truncated ? 0 : incompleteSuffix(pending)
            if pending.count > hold {
                events.yield(Event("chunk", Chunk(i: i, text: String(decoding: pending.dropLast(hold), as: UTF8.self))))
                forwarded += pending.count - hold
                pending.removeFirst(pending.count - hold)
            }
            if truncated { break }  // leaving the loop drops the body: AsyncHTTPClient closes the connection
        }
        if !truncated && !pending.isEmpty {  // the body ended inside a character
            events.yield(Event("chunk", Chunk(i: i, text: String(decoding: pending, as: UTF8.self))))
            forwarded += pending.count
        }
        events.yield(Event("end", End(i: i, bytes: forwarded, truncated: truncated, ms: milliseconds(since: start))))
    } catch {
        events.yield(Event("error", Failure(i: i, url: url, kind: errorKind(error), message: "\(error)")))
    }
}

// MARK: The server

func jsonError(_ status: HTTPResponse.Status, _ body: [String: String]) -> Response {
    let data = (try? JSONEncoder().encode(body)) ?? Data()
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// GET /stream/<route>: open, then every upstream's events as they come, then done.
/// HB_KEEPALIVE=1: keep the client's connection for the next stream (no inbound-close watch, so no
/// `Connection: close`); unset: the ordinary SSE way, cancelled when the client closes, one
/// connection per stream. bench/notes.md has what each costs.
let keepAlive = ProcessInfo.processInfo.environment["HB_KEEPALIVE"] == "1"

func stream(_ request: Request, _ context: BasicRequestContext, routes: [String: Route], client: HTTPClient) -> Response {
    let name = context.parameters.get("route") ?? ""
    guard let route = routes[name] else {
        return jsonError(.notFound, ["error": "unknown route \(name)", "routes": routes.keys.sorted().joined(separator: ",")])
    }
    if request.headers[HTTPField.Name("Last-Event-ID")!] == "done" { return Response(status: .noContent) }
    var prefix = route.prefix
    if let value = request.uri.queryParameters.get("prefix") {
        guard let n = Int(value), (1...maxPrefix).contains(n) else {
            return jsonError(.badRequest, ["error": "prefix must be an integer in 1...\(maxPrefix)", "parameter": "prefix"])
        }
        prefix = n
    }
    let start = ContinuousClock.now
    let upstreams = route.upstreams
    var headers: HTTPFields = [
        .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache",
        HTTPField.Name("X-Accel-Buffering")!: "no",
    ]
    // consumeWithCancellationOnInboundClose leaves the connection unusable afterwards: say so.
    if !keepAlive { headers[.connection] = "close" }
    return Response(status: .ok, headers: headers, body: ResponseBody { [prefix] writer in
        func events() async throws {
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            let open = Open(route: name, prefix: prefix, upstreams: upstreams.enumerated().map { .init(i: $0, url: $1) })
            try await writer.write(Event("open", open).frame(id: "1"))
            let (events, continuation) = AsyncStream.makeStream(of: Event.self)
            var id = 1, ok = 0, failed = 0
            try await withThrowingDiscardingTaskGroup { group in
                for (i, url) in upstreams.enumerated() {
                    group.addTask {
                        await fetch(i, url, prefix: prefix, start: start, client: client, events: continuation)
                    }
                }
                for await event in events {
                    id += 1
                    try await writer.write(event.frame(id: String(id)))
                    if event.isFinal {
                        if event.name == "end" { ok += 1 } else { failed += 1 }
                        if ok + failed == upstreams.count { break }
                    }
                }
            }
            continuation.finish()
            let done = Done(ok: ok, failed: failed, ms: milliseconds(since: start))
            try await writer.write(Event("done", done).frame(id: "done"))
        }
        if keepAlive {
            // No watch on the inbound side, so the connection carries the next request; a client
            // that leaves is noticed only when a write to it fails, which ends the group.
            try await events()
        } else {
            // Hummingbird's tool for long-lived responses such as SSE: if the client closes its
            // connection, the operation is cancelled, and with it the task group and its transfers.
            try await request.body.consumeWithCancellationOnInboundClose { _ in try await events() }
        }
        try await writer.finish(nil)
    })
}

@main
struct HBPeer {
    static func main() async throws {
        let routes = try loadRoutes()
        let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8080
        // One shared client; its connection pool is per host (no process-wide cap, no separate
        // idle cap): idle connections close after 5 s, at most 10 concurrent HTTP/1 connections per host.
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .seconds(5), read: .seconds(15)),
            connectionPool: .init(idleTimeout: .seconds(5), concurrentHTTP1ConnectionsPerHostSoftLimit: 10)
        )
        // CA_FILE: a PEM file of CAs trusted beside the system's, for HTTPS upstreams with a
        // private CA (as StreamProxy's caFile).
        if let caFile = ProcessInfo.processInfo.environment["CA_FILE"] {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(caFile)]
            configuration.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let router = Router()
        router.get("healthz") { _, _ in "ok" }
        router.get("stream/:route") { request, context in
            stream(request, context, routes: routes, client: client)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        do {
            try await app.runService()
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
