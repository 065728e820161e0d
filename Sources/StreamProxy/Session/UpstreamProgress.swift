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
        /// Ended with `end` or `error`.
        case finished
    }

    let url: String
    var phase = Phase.waiting
    /// When a byte last arrived (or the transfer got its slot, or was resumed).
    var lastActivity: ContinuousClock.Instant
    /// Decoder state: a character split across body pieces waits here.
    var text = UTF8JSONText()
    /// Raw bytes taken into the prefix so far.
    var taken = 0
    /// Raw bytes whose text has been forwarded (taken, minus a character cut by the prefix).
    var forwarded = 0
    var contentLength: Int64?
    /// Events waiting for this upstream's turn (sequential order): name and JSON data.
    var held: [(name: SSEEventName, data: [UInt8])] = []

    init(url: String, at now: ContinuousClock.Instant) {
        self.url = url
        self.lastActivity = now
    }

    /// Still to end with `end` or `error`.
    var isOpen: Bool { phase != .finished }
}
