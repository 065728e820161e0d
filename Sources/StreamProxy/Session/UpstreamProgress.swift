import CurlStream

/// What a stream knows about one of its upstreams.
struct UpstreamProgress {
    let index: Int
    let request: TransferRequest
    var transfer: TransferID?
    /// Decoder state: a character split across body pieces waits here.
    var text = UTF8JSONText()
    /// Raw bytes taken into the prefix so far.
    var taken = 0
    /// Raw bytes whose text has been forwarded (taken, minus a character cut by the prefix).
    var forwarded = 0
    var contentLength: Int64?
    /// Ended with `end` or `error`.
    var finished = false
    /// Events waiting for this upstream's turn (sequential order): name and JSON payload.
    var held: [(name: SSEEventName, payload: [UInt8])] = []

    init(index: Int, request: TransferRequest) {
        self.index = index
        self.request = request
    }
}

/// The event names of PRODUCT.md §5.
enum SSEEventName: String {
    case open, head, chunk, end, error, done
}
