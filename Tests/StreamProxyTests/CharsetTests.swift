import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Text in any charset (issue 11, PRODUCT.md §5): a `Content-Type` charset other than UTF-8 is
/// converted to UTF-8 on the fly; the prefix counts the body's own bytes and never cuts one of
/// its characters; `head` names the charset applied.
@Suite(.serialized)
struct CharsetTests {
    /// A text's characters and each one's bytes in `encoding` (all three are stateless).
    static func encode(_ text: String, _ encoding: String.Encoding) throws -> (bytes: [UInt8], ends: [Int], chars: [Character]) {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        for c in text {
            bytes += Array(try #require(String(c).data(using: encoding), "\(c) in \(encoding)"))
            ends.append(bytes.count)
        }
        return (bytes, ends, Array(text))
    }

    struct Case: Sendable, CustomStringConvertible {
        let label: String
        let canonical: String
        let encoding: String.Encoding
        let text: String
        var description: String { label }
    }

    static let cases: [Case] = [
        Case(label: "ISO-8859-1", canonical: "ISO-8859-1", encoding: .isoLatin1,
             text: String(repeating: "Grüße aus Köln, naïve café, déjà vu, £5 ½ ¿Qué? ", count: 6)),
        Case(label: "\"latin1\"", canonical: "ISO-8859-1", encoding: .isoLatin1,
             text: String(repeating: "Ærøskøbing: smørrebrød ", count: 8)),
        Case(label: "Shift_JIS", canonical: "SHIFT_JIS", encoding: .shiftJIS,
             text: String(repeating: "日本語のテキスト、ｶﾀｶﾅ and ASCII。", count: 8)),
        Case(label: "windows-1252", canonical: "WINDOWS-1252", encoding: .windowsCP1252,
             text: String(repeating: "“Quotes” – dashes… €10 ‚low‘ ", count: 8)),
    ]

    /// One byte at a time (every multi-byte character split across reads), then 5 at a time,
    /// Content-Length and chunked; the prefix ends inside a character where it has them.
    @Test(arguments: cases)
    func aBodyInAnotherCharsetArrivesAsUTF8(c: Case) throws {
        let (bytes, ends, chars) = try Self.encode(c.text, c.encoding)
        // Inside the first two-byte character past byte 100, if any; else byte 150.
        let split = ends.indices.first { $0 > 0 && ends[$0] > 100 && ends[$0] - ends[$0 - 1] == 2 }
        let prefix = split.map { ends[$0] - 1 } ?? 150
        let whole = ends.filter { $0 <= prefix }
        let expected = String(chars[..<whole.count])
        let responses = [Framing.contentLength, .chunked].map { framing in
            var r = FramedResponse(body: bytes, framing: framing)
            r.headers = [("Content-Type", "text/plain; charset=\(c.label)")]
            r.pieces = Array(repeating: 1, count: 200) + Array(repeating: 5, count: 100)
            r.pauseMilliseconds = 1
            return r
        }
        let rig = try FidelityRig(responses: responses, prefix: prefix)
        defer { rig.stop() }
        for k in responses.indices {
            let outcome = try rig.run(k)
            #expect(outcome.head.string("charset") == c.canonical)
            #expect(outcome.text == expected, "\(c.label) \(k)")
            #expect(outcome.bytes == whole.last, "bytes counts the body's own bytes")
            #expect(outcome.truncated == true)
            #expect(outcome.chunks.count > 1)
            for chunk in outcome.chunks { #expect(!chunk.contains("\u{FFFD}"), "split: \(chunk)") }
        }
    }

    /// gzip and Shift_JIS at once: decoded, then converted; a whole body is not truncated.
    @Test func aCompressedShiftJISBody() throws {
        let (bytes, _, _) = try Self.encode(String(repeating: "圧縮された日本語。", count: 20), .shiftJIS)
        var response = FramedResponse(body: try Compress.run("gzip", bytes), framing: .contentLength)
        response.headers = [("Content-Type", "text/html; charset=Shift_JIS"), ("Content-Encoding", "gzip")]
        response.pieces = Array(repeating: 1, count: 400)
        response.pauseMilliseconds = 1
        let rig = try FidelityRig(responses: [response], prefix: 10_000)
        defer { rig.stop() }
        let outcome = try rig.run(0)
        #expect(outcome.text == String(repeating: "圧縮された日本語。", count: 20))
        #expect(outcome.bytes == bytes.count)
        #expect(outcome.truncated == false)
        #expect(outcome.head.string("charset") == "SHIFT_JIS")
        #expect(outcome.head.string("contentEncoding") == "gzip")
    }

    /// An invalid Shift_JIS byte becomes U+FFFD and the rest converts; a charset iconv does
    /// not know is read as UTF-8 (U+FFFD for what is not) and `head` says UTF-8.
    @Test func invalidBytesAndUnknownCharsets() throws {
        var sjis = FramedResponse(body: [0x41] + Array("日本".data(using: .shiftJIS)!) + [0xFF, 0x42], framing: .chunked)
        sjis.headers = [("Content-Type", "text/plain; charset=shift_jis")]
        sjis.pieces = [1, 1, 1, 1, 1, 1]
        var unknown = FramedResponse(body: Array("café".utf8) + [0xFF], framing: .close)
        unknown.headers = [("Content-Type", "text/plain; charset=x-no-such-charset")]
        var none = FramedResponse(body: Array("plain".utf8), framing: .contentLength)
        none.headers = [("Content-Type", "text/plain")]
        let rig = try FidelityRig(responses: [sjis, unknown, none], prefix: 100)
        defer { rig.stop() }
        let a = try rig.run(0)
        #expect(a.text == "A日本\u{FFFD}B")
        #expect(a.head.string("charset") == "SHIFT_JIS")
        #expect(a.truncated == false)
        let b = try rig.run(1)
        #expect(b.text == "café\u{FFFD}")
        #expect(b.head.string("charset") == "UTF-8")
        let n = try rig.run(2)
        #expect(n.head.string("charset") == "UTF-8")
        #expect(n.head.keys.contains("contentEncoding") && n.head.string("contentEncoding") == nil)
    }
}
