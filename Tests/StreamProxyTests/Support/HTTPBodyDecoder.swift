/// Incrementally removes HTTP/1.1 body framing (chunked, Content-Length or close-delimited).
///
/// Incremental because SSE tests must see body bytes as they arrive, not after the response
/// ends. Strict about chunk syntax (CRLF after each chunk's data) because checking the server's
/// framing is part of what the integration tests are for.
struct HTTPBodyDecoder {
    enum Framing: Equatable {
        /// No body at all (HEAD, 1xx, 204, 304).
        case none
        case contentLength(Int)
        case chunked
        /// Body ends when the server closes the connection (HTTP/1.0 style).
        case untilClose
    }

    private enum ChunkState {
        case sizeLine
        case data(remaining: Int)
        case dataEnd
        case trailer
    }

    let framing: Framing
    private var chunkState = ChunkState.sizeLine
    private var lengthRemaining = 0
    /// True once the body's end has been seen in the framing itself.
    private(set) var isComplete = false

    /// Picks the framing the way RFC 9112 §6.3 does for a response.
    init(head: HTTPHead, requestMethod: String) throws {
        if requestMethod == "HEAD" || (100..<200).contains(head.status) || head.status == 204 || head.status == 304 {
            framing = .none
        } else if head.isChunked {
            framing = .chunked
        } else if let value = head.header("Content-Length") {
            guard let length = Int(value), length >= 0 else {
                throw RawHTTPError.malformedHead("bad Content-Length \(value.debugDescription)")
            }
            framing = .contentLength(length)
        } else {
            framing = .untilClose
        }
        switch framing {
        case .none: isComplete = true
        case let .contentLength(n): lengthRemaining = n; isComplete = n == 0
        default: break
        }
    }

    /// Consumes what it can from the front of `input` and returns the body bytes in it.
    /// An incomplete chunk-size line stays in `input` until more bytes arrive.
    mutating func decode(_ input: inout [UInt8]) throws -> [UInt8] {
        if isComplete {
            input.removeAll()  // bytes after the body (Connection: close) are not ours
            return []
        }
        switch framing {
        case .none:
            return []
        case .untilClose:
            defer { input.removeAll() }
            return input
        case .contentLength:
            let take = min(lengthRemaining, input.count)
            let out = Array(input[..<take])
            input.removeFirst(take)
            lengthRemaining -= take
            if lengthRemaining == 0 { isComplete = true; input.removeAll() }
            return out
        case .chunked:
            return try decodeChunks(&input)
        }
    }

    /// Called when the connection ended: fine for a close-delimited body, an error otherwise.
    func finish() throws {
        guard !isComplete, framing != .untilClose else { return }
        switch framing {
        case .contentLength: throw RawHTTPError.truncatedBody("\(lengthRemaining) of Content-Length bytes missing")
        default: throw RawHTTPError.truncatedBody("connection ended before the last (zero-size) chunk")
        }
    }

    private mutating func decodeChunks(_ input: inout [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        defer { input.removeFirst(min(i, input.count)) }
        loop: while !isComplete {
            switch chunkState {
            case .sizeLine:
                guard let line = Self.line(in: input, from: i) else {
                    if input.count - i > 1024 { throw RawHTTPError.malformedChunk("chunk-size line over 1 KiB") }
                    break loop
                }
                i = line.next
                let text = String(decoding: line.bytes, as: UTF8.self)
                let sizeText = text.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
                guard let size = Int(sizeText.filter { $0 != " " && $0 != "\t" }, radix: 16), size >= 0 else {
                    throw RawHTTPError.malformedChunk("bad chunk-size line \(text.debugDescription)")
                }
                chunkState = size == 0 ? .trailer : .data(remaining: size)
            case let .data(remaining):
                let take = min(remaining, input.count - i)
                if take == 0 { break loop }
                out += input[i..<(i + take)]
                i += take
                chunkState = remaining == take ? .dataEnd : .data(remaining: remaining - take)
            case .dataEnd:
                if input.count - i < 2 { break loop }
                guard input[i] == UInt8(ascii: "\r"), input[i + 1] == UInt8(ascii: "\n") else {
                    throw RawHTTPError.malformedChunk("chunk data not followed by CRLF (data longer than its size?)")
                }
                i += 2
                chunkState = .sizeLine
            case .trailer:
                guard let line = Self.line(in: input, from: i) else { break loop }
                i = line.next
                if line.bytes.isEmpty { isComplete = true; i = input.count }
            }
        }
        return out
    }

    /// The next LF-terminated line starting at `start` (CR before LF dropped), if complete.
    private static func line(in input: [UInt8], from start: Int) -> (bytes: ArraySlice<UInt8>, next: Int)? {
        guard let lf = input[start...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let end = lf > start && input[lf - 1] == UInt8(ascii: "\r") ? lf - 1 : lf
        return (input[start..<end], lf + 1)
    }
}
