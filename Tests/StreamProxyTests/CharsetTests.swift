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

    /// The gconv modules `pid` has mapped (file names, e.g. `SJIS.so`).
    static func gconvModules(_ pid: Int32) throws -> Set<String> {
        // Read to the end: a /proc file has no size, and a sized read stops at its first page.
        let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(pid)/maps"))
        defer { try? file.close() }
        let maps = String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
        return Set(maps.split(separator: "\n").compactMap { line in
            line.range(of: "/gconv/").map { String(line[$0.upperBound...]) }
        })
    }

    /// Each worker opens the common charsets at start: the process maps their gconv modules
    /// before any request, and serving bodies in them loads none (no file read or dlopen on a
    /// loop). A rarer charset's first use loads its module then.
    @Test func theCommonCharsetsAreLoadedAtStartNotWhileServing() throws {
        let origin = try FramedOrigin()
        defer { origin.stop() }
        let bodies: [(label: String, canonical: String, bytes: [UInt8])] = [
            ("ISO-8859-1", "ISO-8859-1", [0x47, 0x72, 0xFC, 0xDF, 0x65]),  // Grüße
            ("Shift_JIS", "SHIFT_JIS", [0x93, 0xFA, 0x96, 0x7B]),  // 日本
            ("windows-1252", "WINDOWS-1252", [0x93, 0x80, 0x94]),  // “€”
            ("euc-jp", "EUC-JP", [0xC6, 0xFC, 0xCB, 0xDC]),  // 日本
            ("gb2312", "GBK", [0xC4, 0xE3]),  // 你
            ("IBM037", "IBM037", [0xC1, 0xC2]),  // AB
        ]
        var routes: [String] = []
        for (k, body) in bodies.enumerated() {
            var response = FramedResponse(body: body.bytes, framing: .contentLength)
            response.headers = [("Content-Type", "text/plain; charset=\(body.label)")]
            origin.set("/c\(k)", response)
            routes += ["--route", "c\(k)=\(origin.url("/c\(k)"))"]
        }
        let proxy = try ProxyProcess(arguments: routes + ["--workers", "2"])
        defer { proxy.stop() }
        let atStart = try Self.gconvModules(proxy.pid)
        for module in ["ISO8859-1.so", "SJIS.so", "CP1252.so", "EUC-JP.so", "GBK.so", "BIG5.so", "EUC-KR.so"] {
            #expect(atStart.contains(module), "\(module) mapped at start: \(atStart.sorted())")
        }
        #expect(!atStart.contains("IBM037.so"), "a rare charset is not loaded before its first use")
        // Two streams per charset: the workers share the port, so each may be served by either.
        for k in bodies.indices.dropLast() {
            for _ in 0..<2 {
                let (_, events, _) = try readSSE(port: proxy.port, path: "/stream/c\(k)")
                let head = try #require(events.first { $0.event == "head" }).json()
                #expect(head.string("charset") == bodies[k].canonical)
            }
        }
        #expect(try Self.gconvModules(proxy.pid) == atStart, "no module loaded while serving the common charsets")
        let rare = bodies.count - 1
        let (_, events, _) = try readSSE(port: proxy.port, path: "/stream/c\(rare)")
        #expect(try #require(events.first { $0.event == "head" }).json().string("charset") == "IBM037")
        #expect(try Self.gconvModules(proxy.pid).contains("IBM037.so"))
    }
}
