import StreamProxy

/// The bench's SSE response parser fed the payload in pieces: no trap, memory bounded by what
/// it was fed, and the same findings however the bytes are cut (whole, or as the pieces say).
enum SSEResponseParserFuzz {
    static func run(_ data: UnsafeRawBufferPointer) {
        let pieces = Pieces(data, typical: 16)
        let whole = Outcome(feeding: [pieces.payload])
        let cut = pieces.all
        let split = Outcome(feeding: cut)
        check(whole == split, "cut into \(cut.map(\.count)) gives \(split), whole gives \(whole)")
    }

    /// Everything the harness learns from one response.
    struct Outcome: Equatable, CustomStringConvertible {
        var status: Int?
        var events = 0
        var sawChunk = false
        var sawDone = false
        var errorKinds: [String] = []
        var ended = false
        var bodyBytes = 0
        var done = false
        var reusable = false
        var closeEnded = false

        init(feeding pieces: [UnsafeRawBufferPointer]) {
            var parser = SSEResponseParser()
            var fed = 0
            for piece in pieces {
                let found = parser.feed(piece)
                fed += piece.count
                check(parser.bufferedBytes <= fed, "buffers \(parser.bufferedBytes) bytes after \(fed) fed")
                check(found.status == nil || status == nil, "a second status line")
                status = status ?? found.status
                events += found.events
                sawChunk = sawChunk || found.sawChunk
                sawDone = sawDone || found.sawDone
                errorKinds += found.errorKinds
                check(!(ended && found.ended), "the body ended twice")
                ended = ended || found.ended
            }
            bodyBytes = parser.bodyBytes
            done = parser.isDone
            reusable = parser.connectionReusable
            closeEnded = parser.closed()
            check(!closeEnded || parser.isDone, "closed() ended the body but it is not done")
        }

        var description: String {
            "status \(status.map(String.init) ?? "-"), \(events) events, chunk \(sawChunk), done \(sawDone), "
                + "errors \(errorKinds), ended \(ended), body \(bodyBytes) B, done \(done), reusable \(reusable), "
                + "ended by close \(closeEnded)"
        }
    }
}
