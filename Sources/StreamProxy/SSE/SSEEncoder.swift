/// The event names of PRODUCT.md §5.
enum SSEEventName: String {
    case open, head, chunk, end, error, done

    /// `event: <name>\nid: `, written before every event's id.
    var prologue: StaticString {
        switch self {
        case .open: "event: open\nid: "
        case .head: "event: head\nid: "
        case .chunk: "event: chunk\nid: "
        case .end: "event: end\nid: "
        case .error: "event: error\nid: "
        case .done: "event: done\nid: "
        }
    }
}

/// The wire syntax of the event stream (the WHATWG "server-sent events" format) as PRODUCT.md §5
/// uses it, in one place: every event has `event:`, `id:` and exactly one `data:` line of JSON,
/// and ends with a blank line; ids count up from 1, except `done`'s, which is `done`, so that a
/// browser reconnecting after the end says `Last-Event-ID: done` and is answered 204.
///
/// Appends to a caller's buffer so that a stream's frames are built where they are written
/// from. The data line is JSON from ``JSONWriter``, which escapes every control character: no
/// payload can end the line or the event early.
struct SSEEncoder {
    /// The id the next event gets.
    private(set) var nextID = 1

    /// `retry: <ms>`: how long a browser waits before it reconnects.
    func retry(milliseconds: Int, into out: inout [UInt8]) {
        out.append(contentsOf: "retry: ".utf8)
        out.appendDecimal(milliseconds)
        out.append(contentsOf: [0x0A, 0x0A])
    }

    /// `: <text>`: a comment line that keeps an idle stream alive; browsers ignore it.
    func comment(_ text: StaticString, into out: inout [UInt8]) {
        out.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
        text.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(contentsOf: [0x0A, 0x0A])
    }

    /// An event whose JSON data `write` appends.
    mutating func event(_ name: SSEEventName, into out: inout [UInt8], data write: (inout JSONWriter) -> Void) {
        header(name, into: &out)
        var w = JSONWriter()
        swap(&w.bytes, &out)
        write(&w)
        swap(&w.bytes, &out)
        out.append(0x0A)
        out.append(0x0A)
    }

    /// An event whose JSON data was built earlier (an event held for its turn).
    mutating func event(_ name: SSEEventName, data: [UInt8], into out: inout [UInt8]) {
        header(name, into: &out)
        out.append(contentsOf: data)
        out.append(0x0A)
        out.append(0x0A)
    }

    private mutating func header(_ name: SSEEventName, into out: inout [UInt8]) {
        name.prologue.withUTF8Buffer { out.append(contentsOf: $0) }
        if name == .done {
            ("done" as StaticString).withUTF8Buffer { out.append(contentsOf: $0) }
        } else {
            out.appendDecimal(nextID)
            nextID += 1
        }
        ("\ndata: " as StaticString).withUTF8Buffer { out.append(contentsOf: $0) }
    }
}
