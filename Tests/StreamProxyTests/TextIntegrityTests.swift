import Foundation
import Testing
@testable import StreamProxy

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

    /// Invalid bytes become U+FFFD and an incomplete character at the end of the body does too.
    @Test func invalidBytesBecomeReplacementCharacters() throws {
        var out: [UInt8] = []
        var text = UTF8JSONText()
        let input: [UInt8] = [0x61, 0xFF, 0x62, 0xE2, 0x82, 0x63, 0xF0, 0x9F]
        let n = input.withUnsafeBytes { text.append($0, final: true, into: &out) }
        #expect(n == input.count)
        #expect(String(decoding: out, as: UTF8.self) == "a\u{FFFD}b\u{FFFD}c\u{FFFD}")
    }
}

/// The streaming UTF-8 to JSON-string encoder, against Foundation's JSON decoding.
struct UTF8JSONTextTests {
    private func encode(_ pieces: [[UInt8]], final: Bool = true) -> (String, Int) {
        var text = UTF8JSONText()
        var out: [UInt8] = []
        var represented = 0
        for (n, p) in pieces.enumerated() {
            represented += p.withUnsafeBytes { text.append($0, final: final && n == pieces.count - 1, into: &out) }
        }
        return (String(decoding: out, as: UTF8.self), represented)
    }

    private func decodeJSONString(_ inner: String) throws -> String {
        let data = Data("[\"\(inner)\"]".utf8)
        let array = try #require(try JSONSerialization.jsonObject(with: data) as? [String])
        return array[0]
    }

    /// Every split point of a mixed-width text gives back the same text, and JSON reads it back.
    @Test func everySplitPointKeepsCharactersWhole() throws {
        let source = "a\"b\\c\n\td\u{1}é☃𝄞日本🙂\u{7F}z"
        let bytes = Array(source.utf8)
        for cut in 0...bytes.count {
            let (encoded, represented) = encode([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(represented == bytes.count)
            #expect(try decodeJSONString(encoded) == source, "split at \(cut)")
            #expect(!encoded.contains("\n") && !encoded.contains("\r"))
        }
    }

    /// Three-way splits inside 4-byte characters, one byte at a time.
    @Test func byteByBytePiecesKeepCharactersWhole() throws {
        let source = "𝄞🙂x☃"
        let pieces = Array(source.utf8).map { [$0] }
        let (encoded, represented) = encode(pieces)
        #expect(represented == pieces.count)
        #expect(try decodeJSONString(encoded) == source)
    }

    /// A character cut at the end of a non-final piece is held back and not counted.
    @Test func heldBytesAreNotCountedUntilWritten() {
        var text = UTF8JSONText()
        var out: [UInt8] = []
        let clef = Array("𝄞".utf8)
        let n = clef.prefix(3).withUnsafeBytes { text.append($0, final: false, into: &out) }
        #expect(n == 0)
        #expect(out.isEmpty)
        #expect(text.heldBytes == 3)
        text.dropHeld()
        #expect(text.heldBytes == 0)
    }

    /// Ill-formed sequences are replaced per maximal subpart (Unicode §3.9).
    @Test(arguments: [
        ([0xC0, 0x80] as [UInt8], "\u{FFFD}\u{FFFD}"),
        ([0xE0, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),
        ([0xED, 0xA0, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),
        ([0xF4, 0x90, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"),
        ([0xE2, 0x98, 0x41], "\u{FFFD}A"),
        ([0xF0, 0x9F, 0x99], "\u{FFFD}"),
        ([0x80], "\u{FFFD}"),
    ])
    func illFormedBytesBecomeReplacementCharacters(bytes: [UInt8], expected: String) throws {
        let (encoded, _) = encode([bytes])
        #expect(try decodeJSONString(encoded) == expected)
        // Foundation's lossy decoding agrees.
        #expect(String(decoding: bytes, as: UTF8.self) == expected)
    }
}
