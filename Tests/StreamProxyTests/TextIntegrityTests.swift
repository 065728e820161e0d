import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Upstream bytes become safe, whole-character text (issue 2, PRODUCT.md §5).
@Suite(.serialized)
struct TextIntegrityTests {
    /// Multi-byte characters straddling the origin's 7-byte writes and the prefix limit: every
    /// chunk is valid UTF-8, nothing is split, and the prefix stops before the cut character.
    @Test func multiByteCharactersAreNeverSplit() throws {
        let pattern = OriginBody.utf8Pattern
        // Cut the prefix inside the 4-byte U+1D11E (𝄞) of the second repetition.
        let clef = Array("𝄞".utf8)
        let first = try #require(pattern.indices.first { pattern[$0...].starts(with: clef) })
        let prefix = pattern.count + first + 2
        let cluster = try TestCluster(routes: ["u": ["/utf8/5000?chunk=7", "/utf8/5000?chunk=5"]], prefix: prefix)
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/u")
        let shape = try StreamShape(events, upstreams: 2)
        let body = OriginBody.utf8.slice(offset: 0, count: pattern.count + first)
        let expected = try #require(String(validating: body, as: UTF8.self))
        for i in 0..<2 {
            let chunks = try shape.byUpstream[i]!.filter { $0.event == "chunk" }.map { try #require($0.json().string("text")) }
            #expect(!chunks.isEmpty)
            for c in chunks { #expect(!c.contains("\u{FFFD}"), "a chunk carries a replacement character: \(c)") }
            #expect(chunks.joined() == expected)
            let end = try #require(try shape.end(of: i))
            #expect(end.int("bytes") == pattern.count + first, "bytes counts raw bytes forwarded")
            #expect(end.bool("truncated") == true)
        }
    }

    /// A body containing SSE framing stays inside one JSON string: no extra event appears.
    @Test func upstreamBytesCannotForgeEvents() throws {
        let cluster = try TestCluster(routes: ["inject": ["/inject"]], prefix: 4096)
        defer { cluster.stop() }
        let client = try SSEClient.open(port: cluster.proxyPort, path: "/stream/inject")
        let events = try client.readToEnd(timeout: .seconds(10))
        #expect(events.map(\.event) == ["open", "head", "chunk", "end", "done"])
        let text = try events[2].json().string("text")
        #expect(text == String(decoding: OriginBody.injectionBody, as: UTF8.self))
        // On the wire, every data line is one line of JSON.
        let wire = String(decoding: client.raw, as: UTF8.self)
        let eventLines = wire.split(separator: "\n").filter { $0.hasPrefix("event:") }
        #expect(eventLines == ["event: open", "event: head", "event: chunk", "event: end", "event: done"])
        #expect(!wire.contains("\r"))
    }
}
