import Foundation
import Testing
import StreamTestSupport

/// The SSE parser on fixed inputs: the integration tests trust it to report exactly what the
/// server wrote, so it is checked against the WHATWG rules here first.
@Suite struct SSEParserTests {
    private func parse(_ chunks: [[UInt8]]) -> SSEParser {
        var parser = SSEParser()
        for chunk in chunks { parser.feed(chunk) }
        return parser
    }

    private func parse(_ text: String) -> SSEParser { parse([Array(text.utf8)]) }

    private func event(_ name: String, _ id: String?, _ data: String) -> SSEEvent {
        SSEEvent(event: name, id: id, data: data, receivedAt: .now)
    }

    @Test func fieldsAndDefaults() {
        let p = parse("event: open\nid: 1\ndata: {\"a\":1}\n\ndata: plain\n\n")
        #expect(p.events == [event("open", "1", #"{"a":1}"#), event("message", nil, "plain")])
        #expect(p.lastEventID == "1")  // persists across events, per the spec
        #expect(!p.hasPartialEvent)
    }

    @Test func lineEndingsCRLFAndCRMatchLF() {
        let lf = parse("event: a\nid: 7\ndata: x\ndata: y\n\n: ping\n\n").events
        let crlf = parse("event: a\r\nid: 7\r\ndata: x\r\ndata: y\r\n\r\n: ping\r\n\r\n")
        let cr = parse("event: a\rid: 7\rdata: x\rdata: y\r\r: ping\r\r")
        #expect(lf == [event("a", "7", "x\ny")])
        #expect(crlf.events == lf && crlf.comments == ["ping"])
        #expect(cr.events == lf && cr.comments == ["ping"])
    }

    @Test func crlfSplitBetweenFeedsIsOneLineEnd() {
        // "\r" at the end of one read and "\n" at the start of the next must not make a blank line.
        let p = parse([Array("data: a\r".utf8), Array("\ndata: b\r".utf8), Array("\n\r".utf8), Array("\n".utf8)])
        #expect(p.events == [event("message", nil, "a\nb")])
    }

    @Test func splitAtEveryByteOffsetGivesTheSameResult() {
        let text = "retry: 2500\n\nevent: chunk\r\nid: 3\r\ndata: {\"text\":\"héllo — 😀\"}\r\n\r\n: ping\r"
            + "\revent: done\rid: done\rdata: {}\r\r"
        let bytes = Array(text.utf8)
        let whole = parse([bytes])
        #expect(whole.events.count == 2)
        #expect(whole.events.first?.data == #"{"text":"héllo — 😀"}"#)
        for cut in 0...bytes.count {
            let split = parse([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(split.events == whole.events, "cut at \(cut)")
            #expect(split.comments == ["ping"] && split.retry == 2500, "cut at \(cut)")
        }
        let byteByByte = parse(bytes.map { [$0] })
        #expect(byteByByte.events == whole.events && byteByByte.comments == whole.comments)
    }

    @Test func multiByteCharacterSplitAcrossFeeds() {
        let bytes = Array("data: 😀€\n\n".utf8)
        let emoji = bytes.firstIndex(of: 0xF0)!
        let p = parse([Array(bytes[..<(emoji + 2)]), Array(bytes[(emoji + 2)..<(emoji + 5)]), Array(bytes[(emoji + 5)...])])
        #expect(p.events.map(\.data) == ["😀€"])
        #expect(parse([[0x64, 0x61, 0x74, 0x61, 0x3A, 0xFF, 0x0A, 0x0A]]).events.map(\.data) == ["\u{FFFD}"])
    }

    @Test func commentsAreRecordedWithoutColonAndOneSpace() {
        let p = parse(": ping\n:\n:  two spaces\n:nospace\ndata: x\n\n")
        #expect(p.comments == ["ping", "", " two spaces", "nospace"])
        #expect(p.events.count == 1)
    }

    @Test func dataLinesAndSpaces() {
        let p = parse("data:no space\ndata:  two\ndata\ndata: \n\n")
        #expect(p.events.map(\.data) == ["no space\n two\n\n"])
        // A block with no data dispatches nothing; unknown fields are ignored.
        #expect(parse("event: x\nid: 4\nfoo: bar\n\n").events.isEmpty)
    }

    @Test func idAndRetryRules() {
        let p = parse("retry: 3000\nretry: 12x\nretry:\nid: a\0b\ndata: 1\n\nid\ndata: 2\n\n")
        #expect(p.retry == 3000)
        #expect(p.events.map(\.id) == [nil, ""])  // id with NUL ignored; bare "id" sets ""
        #expect(p.lastEventID == "")
    }

    @Test func byteOrderMarkAndPartialEnd() {
        let p = parse([[0xEF, 0xBB], [0xBF] + Array("data: x\n\ndata: cut".utf8)])
        #expect(p.events.map(\.data) == ["x"])
        #expect(p.hasPartialEvent)
        #expect(parse("data: y\n").hasPartialEvent)
    }

    @Test func receivedAtIsTheFeedTime() {
        var parser = SSEParser()
        let t0 = ContinuousClock.now
        parser.feed("data: a\n", at: t0)
        parser.feed("\n", at: t0 + .seconds(1))
        #expect(parser.events.first?.receivedAt == t0 + .seconds(1))
    }

    @Test func jsonHelpers() throws {
        let o = try jsonObject(#"{"i":3,"ms":1.5,"whole":2.0,"ok":true,"zero":0,"s":"x","a":[{"i":0}],"n":null}"#)
        #expect(o.int("i") == 3 && o.int("whole") == 2 && o.int("ms") == nil && o.int("ok") == nil)
        #expect(o.double("ms") == 1.5 && o.bool("ok") == true && o.bool("zero") == nil && o.int("zero") == 0)
        #expect(o.string("s") == "x" && o.objects("a")?.first?.int("i") == 0 && o.isNull("n"))
        #expect(throws: JSONTestError.self) { try jsonObject("[1]") }
        #expect(throws: JSONTestError.self) { try jsonObject("{nope") }
    }
}
