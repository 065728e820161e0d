import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// The streaming UTF-8 to JSON-string encoder, against Foundation's JSON decoding.
struct UTF8JSONTextTests {
    /// Invalid bytes become U+FFFD and an incomplete character at the end of the body does too.
    @Test func invalidBytesBecomeReplacementCharacters() throws {
        var out: [UInt8] = []
        var text = UTF8JSONText()
        let input: [UInt8] = [0x61, 0xFF, 0x62, 0xE2, 0x82, 0x63, 0xF0, 0x9F]
        let n = input.withUnsafeBytes { text.append($0, final: true, into: &out) }
        #expect(n == input.count)
        #expect(String(decoding: out, as: UTF8.self) == "a\u{FFFD}b\u{FFFD}c\u{FFFD}")
    }

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
