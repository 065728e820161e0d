import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Content codings are decoded (issue 11, PRODUCT.md §5): `chunk.text`, the prefix and
/// `end.bytes` are of the body as a user reads it, whatever the coding and however the
/// compressed bytes are split on the wire.
@Suite(.serialized)
struct ContentCodingTests {
    static let codings = ["gzip", "deflate", "br", "zstd"]

    /// UTF-8 text with 2-, 3- and 4-byte characters among ASCII, seeded.
    static let text: [UInt8] = {
        let words = ["Grüße", "世界", "😀", "naïve", "€", "data", "𝄞", "ok", "ß", "テスト"]
        var state: UInt64 = 7
        var out: [UInt8] = []
        while out.count < 3_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            out += Array(words[Int(state >> 33) % words.count].utf8) + [UInt8(ascii: " ")]
        }
        return out
    }()

    /// Where UTF-8 characters start in `bytes`.
    static func boundaries(_ bytes: [UInt8]) -> [Int] {
        bytes.indices.filter { bytes[$0] & 0xC0 != 0x80 } + [bytes.count]
    }

    /// The compressed body one byte at a time (then 7 and 13 bytes at a time: mid-block, mid-
    /// character of the decoded text), Content-Length framing, a prefix that ends inside a
    /// 4-byte character: the text is exact, no character is split, the cut one is left out.
    @Test(arguments: codings)
    func aCompressedBodySplitAnywhereDecodesExactly(coding: String) throws {
        let clef = Array("𝄞".utf8)
        let start = try #require((1_000..<Self.text.count).first { Self.text[$0...].starts(with: clef) })
        let prefix = start + 2
        var response = FramedResponse(body: try Self.compressed(coding), framing: .contentLength)
        response.headers.append(("Content-Encoding", coding))
        response.pieces = Array(repeating: 1, count: 300) + Array(repeating: 7, count: 40) + Array(repeating: 13, count: 40)
        response.pauseMilliseconds = 1
        let rig = try FidelityRig(responses: [response], prefix: prefix)
        defer { rig.stop() }
        let outcome = try rig.run(0)
        #expect(outcome.error == nil, "\(String(describing: outcome.error))")
        #expect(outcome.head.string("contentEncoding") == coding)
        #expect(outcome.text == String(decoding: Self.text[..<start], as: UTF8.self))
        #expect(outcome.bytes == start, "decoded bytes forwarded, the cut character left out")
        #expect(outcome.truncated == true)
        #expect(outcome.chunks.count > 1)
        for chunk in outcome.chunks { #expect(!chunk.contains("\u{FFFD}"), "a character was split: \(chunk)") }
        #expect(rig.origin.lastAcceptEncoding.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
                    == ["gzip", "deflate", "br", "zstd"], "the proxy asks for every coding it decodes")
    }

    /// The text compressed. zstd decodes a block at once (and a small text is one block), so
    /// its fixture is three frames, cut inside characters, which a zstd stream may be.
    static func compressed(_ coding: String) throws -> [UInt8] {
        guard coding == "zstd" else { return try Compress.run(coding, Self.text) }
        let cuts = [500, 1_500].map { at in (at..<Self.text.count).first { Self.text[$0] & 0xC0 == 0x80 }! }
        let parts = zip([0] + cuts, cuts + [Self.text.count]).map { Array(Self.text[$0..<$1]) }
        return try parts.flatMap { try Compress.run(coding, $0) }
    }

    /// A whole compressed body within the prefix, in every framing: all of it, not truncated,
    /// `bytes` counting decoded bytes (more than the wire carried).
    @Test(arguments: codings)
    func aWholeCompressedBodyWithinThePrefix(coding: String) throws {
        let compressed = try Compress.run(coding, Self.text)
        #expect(compressed.count < Self.text.count)
        let responses = Framing.allCases.map { framing in
            var r = FramedResponse(body: compressed, framing: framing)
            r.headers.append(("Content-Encoding", coding))
            r.pieces = [5, 1, 1, 100, 3]
            return r
        }
        let rig = try FidelityRig(responses: responses, prefix: 10_000)
        defer { rig.stop() }
        for (k, framing) in Framing.allCases.enumerated() {
            let outcome = try rig.run(k)
            #expect(outcome.text == String(decoding: Self.text, as: UTF8.self), "\(framing)")
            #expect(outcome.bytes == Self.text.count, "\(framing)")
            #expect(outcome.truncated == false, "\(framing)")
        }
    }

    /// A body that claims gzip but is not: an `error` of kind `protocol`, never mojibake.
    @Test func aCorruptCompressedBodyIsAProtocolError() throws {
        var good = try Compress.run("gzip", Self.text)
        for i in 20..<60 { good[i] ^= 0x5A }
        var response = FramedResponse(body: good, framing: .contentLength)
        response.headers.append(("Content-Encoding", "gzip"))
        let rig = try FidelityRig(responses: [response], prefix: 10_000)
        defer { rig.stop() }
        let outcome = try rig.run(0)
        let error = try #require(outcome.error)
        #expect(error.string("kind") == "protocol")
        #expect(error.string("message")?.isEmpty == false)
        #expect(outcome.end == nil)
    }

    /// The request names the proxy and the codings once each, beside libcurl's own `Host` and
    /// `Accept`: the proxy hands libcurl the first two as a header list (RequestHeaders) rather
    /// than as options.
    @Test func eachRequestCarriesOneUserAgentAndOneAcceptEncoding() throws {
        let rig = try FidelityRig(responses: [FramedResponse(body: Array("plain".utf8), framing: .contentLength)], prefix: 100)
        defer { rig.stop() }
        let outcome = try rig.run(0)
        #expect(outcome.text == "plain")
        let origin = rig.origin, lines = origin.lastRequestHeaders
        #expect(origin.lastRequestValues("User-Agent") == ["stream-proxy"], "\(lines)")
        #expect(origin.lastRequestValues("Accept-Encoding").count == 1, "\(lines)")
        #expect(origin.lastRequestValues("Host") == ["127.0.0.1:\(origin.port)"], "\(lines)")
        #expect(origin.lastRequestValues("Accept") == ["*/*"], "\(lines)")
    }
}
