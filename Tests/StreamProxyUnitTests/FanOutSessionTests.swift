import CurlStream
import Testing
@testable import StreamProxy
import StreamTestSupport

/// The fan-out session's decisions, driven event by event with a test clock: no sockets, no
/// sleeps; each test runs in well under a millisecond of its own work.
@Suite struct FanOutSessionTests {

    // MARK: - The events of PRODUCT.md §5

    @Test func openStartsEveryUpstreamAndAnnouncesThem() throws {
        var h = SessionHarness(upstreams: 3)
        h.open()
        #expect(h.parser.retry == 2000)
        #expect(h.names == ["open"])
        let open = try h.data("open")[0]
        #expect(open.string("route") == "r")
        #expect(open.int("prefix") == 10)
        #expect(open.string("order") == "completion")
        #expect(open.objects("upstreams")?.map { $0.string("url") } == ["http://u0.test/x", "http://u1.test/x", "http://u2.test/x"])
        #expect(h.commands == [.start(0), .start(1), .start(2)])
        #expect(h.events[0].id == "1")
        #expect(h.wake == h.now + .seconds(15), "the heartbeat is armed")
    }

    @Test func completionOrderInterleavesAndDoneCountsLast() throws {
        var h = SessionHarness(upstreams: 2)
        h.open()
        h.advance(.milliseconds(12))
        #expect(h.head(1, status: 404, type: "text/html", length: 3) == .proceed)
        #expect(h.bytes(1, "abc") == .proceed)
        h.ended(1)
        h.advance(.milliseconds(8))
        h.head(0)
        #expect(h.bytes(0, "0123456789xyz") == .finish, "the prefix is full: the upstream is finished")
        #expect(h.names == ["open", "head", "chunk", "end", "head", "chunk", "end", "done"])
        let heads = try h.data("head")
        #expect(heads[0].int("i") == 1 && heads[0].int("status") == 404 && heads[0].string("contentType") == "text/html")
        #expect(heads[0].double("ttfbMs") == 12.0)
        #expect(heads[1].double("ttfbMs") == 20.0)
        let ends = try h.data("end")
        #expect(ends[0].int("i") == 1 && ends[0].int("bytes") == 3 && ends[0].bool("truncated") == false)
        #expect(ends[1].int("i") == 0 && ends[1].int("bytes") == 10 && ends[1].bool("truncated") == true)
        #expect(try h.text(of: 0) == "0123456789")
        let done = try h.data("done")[0]
        #expect(done.int("ok") == 2 && done.int("failed") == 0 && done.double("ms") == 20.0)
        #expect(h.events.last?.id == "done")
        #expect(h.events.dropLast().map(\.id) == (1...7).map { String($0) })
        #expect(h.end == .done)
        #expect(h.wake != nil && h.commands == [.start(0), .start(1)], "no stop: finished upstreams stop themselves")
        #expect(h.ttfbs == [12.0, 20.0])
        #expect(h.bytesForwarded == 13)
    }

    @Test func sequentialOrderHoldsLaterUpstreamsUntilTheirTurn() throws {
        var settings = SessionHarness.defaultSettings
        settings.order = .sequential
        var h = SessionHarness(upstreams: 3, settings: settings)
        h.open()
        h.head(2); h.bytes(2, "two"); h.ended(2)
        h.head(1); h.bytes(1, "one")
        #expect(h.names == ["open"], "upstream 0 has the turn: nothing of 1 or 2 is written")
        h.head(0); h.bytes(0, "zero")
        #expect(h.names == ["open", "head", "chunk"])
        h.failed(0, kind: "reset", message: "cut")
        // 0 is over: 1's held events flow, 1 keeps the turn.
        #expect(h.names == ["open", "head", "chunk", "error", "head", "chunk"])
        h.ended(1)
        let order = try h.events.dropFirst().dropLast().map { try #require($0.json().int("i")) }
        #expect(order == [0, 0, 0, 1, 1, 1, 2, 2, 2])
        #expect(h.names.last == "done")
        let ids = h.events.dropLast().map { Int($0.id!)! }
        #expect(ids == Array(1...ids.count), "ids count up in the order events are written, held ones too")
        #expect(try h.data("done")[0].int("ok") == 2 && h.data("done")[0].int("failed") == 1)
    }

    @Test func anHTTPErrorStatusIsNotAnError() throws {
        var h = SessionHarness(upstreams: 1)
        h.open()
        h.head(0, status: 503, length: 4)
        h.bytes(0, "down")
        h.ended(0)
        #expect(h.names == ["open", "head", "chunk", "end", "done"])
        #expect(try h.data("done")[0].int("ok") == 1)
    }

    @Test func anUpstreamThatFailsAfterBytesEndsWithItsErrorOnly() throws {
        var h = SessionHarness(upstreams: 2)
        h.open()
        h.head(0); h.bytes(0, "par")
        h.failed(0, kind: "reset", message: "connection reset by peer")
        h.head(1); h.bytes(1, "ok"); h.ended(1)
        #expect(h.names == ["open", "head", "chunk", "error", "head", "chunk", "end", "done"])
        let error = try h.data("error")[0]
        #expect(error.int("i") == 0 && error.string("url") == "http://u0.test/x")
        #expect(error.string("kind") == "reset" && error.string("message") == "connection reset by peer")
        #expect(try h.data("end").map { $0.int("i") } == [1], "no end for the upstream that failed")
        #expect(try h.text(of: 0) == "par")
        #expect(try h.data("done")[0].int("ok") == 1 && h.data("done")[0].int("failed") == 1)
        // Whatever arrives later for an ended upstream is refused and written nowhere.
        #expect(h.bytes(0, "late") == .cancel)
        #expect(h.names.count == 8)
    }

    // MARK: - The prefix and truncation

    @Test func truncatedIsKnownAtOnceFromThePieceOrADecodedLength() throws {
        // Content-Length equal to the prefix, no content coding: the body ended within it.
        var exact = SessionHarness(upstreams: 1)
        exact.open(); exact.head(0, length: 10)
        #expect(exact.bytes(0, "0123456789") == .finish)
        #expect(try exact.data("end")[0].bool("truncated") == false)
        // More in the same piece (whatever the length says), or a longer decoded length.
        let cases: [(Int64?, String?, String)] = [
            (10, nil, "0123456789A"), (11, nil, "0123456789"), (nil, nil, "0123456789A"), (4, "gzip", "0123456789A"),
        ]
        for (length, encoding, piece) in cases {
            var h = SessionHarness(upstreams: 1)
            h.open(); h.head(0, length: length, encoding: encoding)
            #expect(h.bytes(0, piece) == .finish, "length \(String(describing: length)), \(piece.count) bytes")
            #expect(try h.data("end")[0].bool("truncated") == true)
            #expect(try h.data("end")[0].int("bytes") == 10)
        }
    }

    /// A body that fills the prefix exactly at the end of a piece, with no decoded length to
    /// tell (chunked, close-delimited, or content-coded, whose Content-Length is the wire's):
    /// the session asks the transfer, writes nothing until its verdict, then ends exactly.
    @Test func aBodyFillingThePrefixSettlesOnTheTransfersVerdict() throws {
        for (length, encoding) in [(Int64?.none, String?.none), (10, "gzip"), (3, "gzip"), (400, "br")] {
            for verdict in ["end", "unsettled", "failed"] {
                var h = SessionHarness(upstreams: 2)
                h.open(); h.head(0, length: length, encoding: encoding)
                #expect(h.bytes(0, "01234") == .proceed)
                #expect(h.bytes(0, "56789") == .settle)
                #expect(h.names == ["open", "head", "chunk", "chunk"], "no end before the verdict")
                switch verdict {
                case "end": h.ended(0)
                case "unsettled": h.unsettled(0)
                default: h.failed(0)
                }
                #expect(h.names.suffix(1) == ["end"], "\(verdict): an end, never an error: the prefix is all there")
                let end = try h.data("end")[0]
                #expect(end.bool("truncated") == (verdict != "end"), "\(verdict), length \(String(describing: length))")
                #expect(end.int("bytes") == 10)
                #expect(try h.text(of: 0) == "0123456789")
                h.head(1); h.bytes(1, "x"); h.ended(1)
                #expect(h.names.last == "done")
                #expect(try h.data("done")[0].int("ok") == 2)
            }
        }
    }

    /// Bytes while settling (the transfer layer sends none): the body went on, so it ends
    /// truncated rather than waiting for a verdict that would never come.
    @Test func bytesWhileSettlingEndTheUpstreamTruncated() throws {
        var h = SessionHarness(upstreams: 1)
        h.open(); h.head(0)
        #expect(h.bytes(0, "0123456789") == .settle)
        #expect(h.bytes(0, "more") == .finish)
        #expect(try h.data("end").map { $0.bool("truncated") } == [true])
        #expect(try h.text(of: 0) == "0123456789")
        #expect(h.names.last == "done")
    }

    /// A character cut by the prefix while settling: dropped if more followed, U+FFFD if the
    /// body ended inside it (as at any end of a body).
    @Test func aCharacterCutByThePrefixWhileSettling() throws {
        for ended in [true, false] {
            var settings = SessionHarness.defaultSettings
            settings.prefix = 3
            var h = SessionHarness(upstreams: 1, settings: settings)
            h.open(); h.head(0)
            #expect(h.bytes(0, [0x61, 0xE2, 0x82]) == .settle)
            if ended { h.ended(0) } else { h.unsettled(0) }
            #expect(try h.text(of: 0) == (ended ? "a\u{FFFD}" : "a"))
            #expect(try h.data("end")[0].int("bytes") == (ended ? 3 : 1))
            #expect(try h.data("end")[0].bool("truncated") == !ended)
        }
    }

    @Test func aSettlingUpstreamHasNoReadDeadlineAndEndsOnShutdownOrStops() throws {
        var h = SessionHarness(upstreams: 2)
        h.open(); h.connecting(0); h.head(0)
        #expect(h.bytes(0, "0123456789") == .settle)
        h.advance(.seconds(6))
        h.fireTimer()
        #expect(try h.data("error").isEmpty, "no read timeout while the verdict is due")
        h.shutdown()
        #expect(h.commands.contains(.stop(0)))
        #expect(try h.data("end").map { $0.bool("truncated") } == [true])
        #expect(try h.data("error").map { $0.int("i") } == [1])

        var gone = SessionHarness(upstreams: 1)
        gone.open(); gone.head(0)
        #expect(gone.bytes(0, "0123456789") == .settle)
        gone.clientGone()
        #expect(gone.commands == [.start(0), .stop(0)])
        #expect(gone.end == .clientGone)
    }

    @Test func bytesAcrossManyPiecesNeverExceedThePrefix() throws {
        var h = SessionHarness(upstreams: 1)
        h.open(); h.head(0)
        for piece in ["012", "345", "678"] { #expect(h.bytes(0, piece) == .proceed) }
        #expect(h.bytes(0, "9ABC") == .finish)
        #expect(try h.text(of: 0) == "0123456789")
        #expect(h.names.filter { $0 == "chunk" }.count == 4)
    }

    // MARK: - UTF-8 at every cut

    /// "aé€😀" cut into two pieces at every byte offset, with every prefix length: a character is
    /// never split across chunks, one cut by the prefix is dropped whole, and `bytes` counts the
    /// raw bytes forwarded.
    @Test func utf8SurvivesEveryCutAndEveryPrefix() throws {
        let text = "aé€😀b"
        let raw = Array(text.utf8)
        let boundaries = [0, 1, 3, 6, 10, 11]
        for prefix in 1...raw.count {
            for cut in 0...raw.count {
                var settings = SessionHarness.defaultSettings
                settings.prefix = prefix
                var h = SessionHarness(upstreams: 1, settings: settings)
                h.open(); h.head(0, length: Int64(raw.count))
                var directive = h.bytes(0, Array(raw[..<cut]))
                if directive == .proceed { directive = h.bytes(0, Array(raw[cut...])) }
                if directive == .proceed { h.ended(0) }
                let whole = boundaries.last { $0 <= prefix }!
                let expected = String(decoding: raw[..<whole], as: UTF8.self)
                #expect(try h.text(of: 0) == expected, "prefix \(prefix), cut at \(cut)")
                #expect(try h.data("end")[0].int("bytes") == whole, "prefix \(prefix), cut at \(cut)")
                #expect(try h.data("end")[0].bool("truncated") == (prefix < raw.count))
                for chunk in try h.data("chunk") {
                    #expect(chunk.string("text")?.contains("\u{FFFD}") == false, "no character split: \(chunk)")
                }
            }
        }
    }

    @Test func anIncompleteCharacterAtTheEndOfTheBodyIsReplaced() throws {
        var h = SessionHarness(upstreams: 1)
        h.open(); h.head(0)
        h.bytes(0, [0x61, 0xE2, 0x82])
        #expect(try h.text(of: 0) == "a")
        h.ended(0)
        #expect(try h.text(of: 0) == "a\u{FFFD}")
        #expect(try h.data("end")[0].int("bytes") == 3)
    }

    @Test func upstreamBytesCannotForgeFraming() throws {
        var settings = SessionHarness.defaultSettings
        settings.prefix = 100
        var h = SessionHarness(upstreams: 1, settings: settings)
        h.open(); h.head(0)
        let evil = "x\n\nevent: done\nid: done\ndata: {}\n\n\r\"\\"
        h.bytes(0, evil); h.ended(0)
        #expect(h.names == ["open", "head", "chunk", "end", "done"])
        #expect(try h.text(of: 0) == evil)
    }
}
