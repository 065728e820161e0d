import CurlStream
import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// iconv conversion piece by piece, charset names, and the session's use of both: no sockets.
@Suite struct TranscoderTests {
    static let japanese = "日本語ｶﾀｶﾅ、ASCII。"

    /// Shift_JIS cut into two pieces at every offset: the output is whole characters each time
    /// and, joined, the text; the count returned never includes a held partial character.
    @Test func everySplitOfShiftJISConvertsWhole() throws {
        let bytes = Array(try #require(Self.japanese.data(using: .shiftJIS)))
        let t = try #require(Transcoder(charset: "SHIFT_JIS"))
        for cut in 0...bytes.count {
            var first: [UInt8] = [], second: [UInt8] = []
            let n1 = bytes[..<cut].withUnsafeBytes { t.append($0, final: false, into: &first) }
            #expect(String(validating: first, as: UTF8.self) != nil)
            #expect(n1 + t.heldBytes == cut)
            let n2 = bytes[cut...].withUnsafeBytes { t.append($0, final: false, into: &second) }
            #expect(n1 + n2 == bytes.count)
            #expect(String(decoding: first + second, as: UTF8.self) == Self.japanese, "cut at \(cut)")
            t.reset()
        }
    }

    @Test func invalidAndIncompleteBytesBecomeReplacementCharacters() throws {
        let t = try #require(Transcoder(charset: "SHIFT_JIS"))
        var out: [UInt8] = []
        _ = [UInt8]([0x41, 0xFF, 0x42, 0x93]).withUnsafeBytes { t.append($0, final: false, into: &out) }
        #expect(String(decoding: out, as: UTF8.self) == "A\u{FFFD}B")
        #expect(t.heldBytes == 1, "the lead byte of 日 waits for its second byte")
        #expect(t.flushHeld(into: &out) == 1)
        #expect(String(decoding: out, as: UTF8.self) == "A\u{FFFD}B\u{FFFD}")
        #expect(Transcoder(charset: "X-NO-SUCH-CHARSET") == nil)
    }

    @Test func thePoolReusesDescriptorsAndRemembersUnknownNames() throws {
        let pool = TranscoderPool()
        let a = try #require(pool.transcoder(for: "ISO-8859-1"))
        pool.recycle(a)
        #expect(pool.transcoder(for: "ISO-8859-1") === a)
        #expect(pool.transcoder(for: "ISO-8859-1") !== a, "one user at a time")
        #expect(pool.transcoder(for: "NOPE") == nil)
        #expect(pool.transcoder(for: "NOPE") == nil)
    }

    /// A worker's pool opens the common charsets when it is made: the first body in each (and
    /// in each alias of one) gets a descriptor opened then, none opened while serving.
    @Test func thePoolOpensTheCommonCharsetsWhenMade() throws {
        let pool = TranscoderPool(opening: Charset.common + ["X-NO-SUCH-CHARSET"])
        #expect(pool.opened == Charset.common.count)
        for label in ["latin1", "cp1252", "sjis", "EUC_JP", "GB2312", "KOI8R", "windows-1251", "big5"] {
            let name = try #require(Charset.canonical(label))
            #expect(Charset.common.contains(name), "\(label)")
            let t = try #require(pool.transcoder(for: name), "\(label)")
            #expect(t.charset == name)
        }
        #expect(pool.opened == Charset.common.count, "no descriptor opened while serving")
        #expect(pool.transcoder(for: "X-NO-SUCH-CHARSET") == nil)
        #expect(pool.transcoder(for: "IBM037") != nil)
        #expect(pool.opened == Charset.common.count + 1, "a rarer charset is opened on first use")
    }

    @Test func charsetNamesAreCanonical() {
        #expect(Charset.named(in: "text/html; charset=utf-8") == "UTF-8")
        #expect(Charset.named(in: "text/html;charset=\"Shift_JIS\"") == "SHIFT_JIS")
        #expect(Charset.named(in: "text/plain; format=flowed; Charset=latin1") == "ISO-8859-1")
        #expect(Charset.named(in: "text/plain; charset=cp1252") == "WINDOWS-1252")
        #expect(Charset.named(in: "text/plain") == nil)
        #expect(Charset.named(in: nil) == nil)
        #expect(Charset.named(in: "text/plain; charset=a b") == nil)
        #expect(Charset.isUTF8("US-ASCII") && Charset.isUTF8("UTF-8") && !Charset.isUTF8("ISO-8859-1"))
    }

    /// The session counts the body's own bytes against the prefix, cuts before a split
    /// character, and names the charset in `head`; an unknown one is UTF-8.
    @Test func theSessionConvertsAndCountsSourceBytes() throws {
        let bytes = Array(try #require(Self.japanese.data(using: .shiftJIS)))
        var settings = SessionHarness.defaultSettings
        settings.prefix = 5  // inside 語, the third two-byte character
        var h = SessionHarness(upstreams: 2, settings: settings)
        h.open()
        h.head(0, type: "text/plain; charset=Shift_JIS")
        var directive = TransferDirective.proceed
        for b in bytes where directive == .proceed { directive = h.bytes(0, [b]) }
        #expect(directive == .settle, "the fifth byte fills the prefix at the end of its piece")
        h.unsettled(0)
        #expect(try h.text(of: 0) == "日本")
        #expect(try h.data("end")[0].int("bytes") == 4)
        #expect(try h.data("end")[0].bool("truncated") == true)
        #expect(try h.data("head")[0].string("charset") == "SHIFT_JIS")
        h.head(1, type: "text/plain; charset=x-unknown")
        h.bytes(1, [0x61, 0xFF]); h.ended(1)
        #expect(try h.text(of: 1) == "a\u{FFFD}")
        #expect(try h.data("head")[1].string("charset") == "UTF-8")
    }
}
