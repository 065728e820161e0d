import Foundation
import Testing
import StreamTestSupport

/// One upstream's stream through the proxy from a ``FramedOrigin``: what its events say.
struct UpstreamOutcome {
    let head: [String: Any]
    let chunks: [String]
    let end: [String: Any]?
    let error: [String: Any]?
    /// Milliseconds from `open` to the upstream's `end` or `error`, as the proxy reports it.
    var ms: Double? { end?.double("ms") ?? error?.double("ms") }
    var text: String { chunks.joined() }
    var truncated: Bool? { end?.bool("truncated") }
    var bytes: Int? { end?.int("bytes") }
}

/// A proxy whose routes `c0`, `c1`, ... each fetch one path of a ``FramedOrigin``.
final class FidelityRig {
    let origin: FramedOrigin
    let cluster: TestCluster
    let paths: [String]

    init(responses: [FramedResponse], prefix: Int) throws {
        origin = try FramedOrigin()
        paths = responses.indices.map { "/c\($0)" }
        for (path, response) in zip(paths, responses) { origin.set(path, response) }
        var routes: [String: [String]] = [:]
        for (k, path) in paths.enumerated() { routes["c\(k)"] = [origin.url(path)] }
        cluster = try TestCluster(routes: routes, prefix: prefix)
    }

    func stop() {
        cluster.stop()
        origin.stop()
    }

    /// Streams route `c<k>` and returns its one upstream's outcome.
    func run(_ k: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> UpstreamOutcome {
        let (_, events, _) = try cluster.stream("/stream/c\(k)")
        let shape = try StreamShape(events, upstreams: 1, sourceLocation: sourceLocation)
        let evs = shape.byUpstream[0] ?? []
        let head = try evs.first { $0.event == "head" }.map { try $0.json() } ?? [:]
        let chunks = try evs.filter { $0.event == "chunk" }.map { try #require($0.json().string("text")) }
        return UpstreamOutcome(head: head, chunks: chunks, end: try shape.end(of: 0), error: try shape.error(of: 0))
    }
}

/// Deterministic test bodies.
enum FidelityBody {
    /// `count` bytes of seeded pseudo-random letters and digits (compresses to about 75%, so a
    /// long one spans many reads even when compressed).
    static func letters(_ count: Int, seed: UInt64 = 0x1234_5678) -> [UInt8] {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,".utf8)
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return alphabet[Int(state >> 33) % alphabet.count]
        }
    }
}
