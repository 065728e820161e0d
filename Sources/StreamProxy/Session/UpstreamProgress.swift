/// What a stream knows about one of its upstreams.
struct UpstreamProgress {
    enum Phase: Equatable {
        /// Started, waiting for a connection slot: no read deadline yet (the pool's applies).
        case waiting
        /// Connecting or streaming: the read deadline runs from `lastActivity`.
        case running
        /// Its bytes were refused while the client's queue was full: libcurl holds them and
        /// the socket is not read. No read deadline: it waits for our client, not its upstream.
        case refused
        /// The prefix is full at the end of a piece and the body is not known to end there: the
        /// transfer tells (within the loop turn) whether it ended in the same read. No deadline.
        case settling
        /// Ended with `end` or `error`.
        case finished
    }

    let url: String
    var phase = Phase.waiting
    /// When a byte last arrived (or the transfer got its slot, or was resumed).
    var lastActivity: ContinuousClock.Instant
    /// Decoder state: a character split across body pieces waits here.
    var text = UTF8JSONText()
    /// The body's charset converter, when it is neither UTF-8 nor unknown to iconv: it then
    /// holds split characters, and `text` only escapes its UTF-8.
    var transcoder: Transcoder?
    /// Body bytes (decoded of any content coding, in the body's own charset) taken into the
    /// prefix so far.
    var taken = 0
    /// Body bytes whose text has been forwarded (taken, minus a character cut by the prefix).
    var forwarded = 0
    /// Content-Length: of the decoded body only when there is no content coding.
    var contentLength: Int64?
    var contentEncoding: String?
    /// Events waiting for this upstream's turn (sequential order): name and JSON data.
    var held: [(name: SSEEventName, data: [UInt8])] = []

    init(url: String, at now: ContinuousClock.Instant) {
        self.url = url
        self.lastActivity = now
    }

    /// Still to end with `end` or `error`.
    var isOpen: Bool { phase != .finished }
}

extension UpstreamProgress {
    /// Appends the escaped UTF-8 text of `input` (in the body's charset) to `out.text`; returns
    /// the input bytes it now represents (a split character's bytes wait for the next piece).
    mutating func appendText(_ input: UnsafeRawBufferPointer, into out: inout SessionOutput) -> Int {
        guard let transcoder else { return text.append(input, final: false, into: &out.text) }
        out.converted.removeAll(keepingCapacity: true)
        let n = transcoder.append(input, final: false, into: &out.converted)
        // iconv writes whole, valid characters: nothing is held or replaced here.
        out.converted.withUnsafeBytes { _ = text.append($0, final: true, into: &out.text) }
        return n
    }

    /// Forgets a held incomplete character: the prefix ended inside it.
    mutating func dropHeld() {
        text.dropHeld()
        transcoder?.dropHeld()
    }

    /// Writes a held incomplete character as U+FFFD (the body ended inside it); returns the
    /// bytes it stood for.
    mutating func flushHeld(into out: inout [UInt8]) -> Int {
        if let transcoder { return transcoder.flushHeld(into: &out) }
        return text.flushHeld(into: &out)
    }
}
