import EventLoop

/// The size-limit scanner on any byte stream, cut anywhere:
/// - the verdict and the state it ends in do not depend on how the stream is cut into reads;
/// - a request-line verdict means some line really was longer than the limit.
enum RequestHeadScannerFuzz {
    static let limits = RequestHeadScanner.Limits(maxRequestLine: 40, maxHeadersSize: 120, maxBodySize: 30)

    static func run(_ data: UnsafeRawBufferPointer) {
        let pieces = Pieces(data)
        var cut = RequestHeadScanner(limits: limits)
        var cutVerdict: HTTPRequestLimit?
        for piece in pieces.all where cutVerdict == nil { cutVerdict = cut.scan(piece) }
        var whole = RequestHeadScanner(limits: limits)
        let verdict = whole.scan(pieces.payload)
        check(verdict == cutVerdict, "verdict \(String(describing: verdict)) whole, \(String(describing: cutVerdict)) cut")
        check(whole.state == cut.state, "state \(whole.state) whole, \(cut.state) cut")
        if verdict == .requestLine {
            let longest = pieces.payload.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .map { $0.count - ($0.last == UInt8(ascii: "\r") ? 1 : 0) }.max() ?? 0
            check(longest > limits.maxRequestLine, "a request-line verdict with no line over \(limits.maxRequestLine) bytes")
        }
    }
}
