import CEvent
import Glibc

/// The request methods evhttp recognises.
public enum HTTPMethod: String, Sendable {
    case GET, POST, HEAD, PUT, DELETE, OPTIONS, TRACE, CONNECT, PATCH

    init?(command: evhttp_cmd_type) {
        switch command {
        case EVHTTP_REQ_GET: self = .GET
        case EVHTTP_REQ_POST: self = .POST
        case EVHTTP_REQ_HEAD: self = .HEAD
        case EVHTTP_REQ_PUT: self = .PUT
        case EVHTTP_REQ_DELETE: self = .DELETE
        case EVHTTP_REQ_OPTIONS: self = .OPTIONS
        case EVHTTP_REQ_TRACE: self = .TRACE
        case EVHTTP_REQ_CONNECT: self = .CONNECT
        case EVHTTP_REQ_PATCH: self = .PATCH
        default: return nil
        }
    }
}

/// One request as evhttp parsed it, valid during the server's handler call.
///
/// The handler must do exactly one of: ``respond(status:headers:body:)`` or
/// ``startStream(status:headers:)``. Requests beyond the server's size limits never get here
/// (``RequestHeadGuard`` answers them), nor do requests evhttp cannot parse: evhttp answers
/// them with 400 and closes the connection.
public struct HTTPRequest {
    let raw: UnsafeMutablePointer<evhttp_request>
    unowned let server: HTTPServer

    /// The method, or nil for one evhttp does not know.
    public var method: HTTPMethod? { HTTPMethod(command: evhttp_request_get_command(raw)) }

    /// The request target as sent (path and query).
    public var uri: String { evhttp_request_get_uri(raw).map { String(cString: $0) } ?? "/" }

    /// The request target, decoded on demand.
    public var target: RequestTarget { RequestTarget(uri) }

    /// The percent-decoded path, without the query (see ``RequestTarget/path``).
    public var path: String { target.path }

    /// The query parameters in order (see ``RequestTarget/query``).
    public var query: [(name: String, value: String)] { target.query }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? { target.queryValue(name) }

    /// The value of request header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        guard let headers = evhttp_request_get_input_headers(raw),
              let value = evhttp_find_header(headers, name) else { return nil }
        return String(cString: value)
    }

    /// Sends a complete response.
    public func respond(status: Int, headers: [(String, String)] = [], body: some Collection<UInt8> = [UInt8]()) {
        server.loop.preconditionInEventLoop()
        addHeaders(headers)
        let buffer = evbuffer_new()
        defer { evbuffer_free(buffer) }
        // evhttp sends a HEAD response's body (without a length), which a keep-alive client
        // would read as the start of the next response: the head says the length, nothing follows.
        if method == .HEAD {
            if let out = evhttp_request_get_output_headers(raw), evhttp_find_header(out, "Content-Length") == nil {
                evhttp_add_header(out, "Content-Length", String(body.count))
            }
            evhttp_send_reply(raw, Int32(status), reasonPhrase(status), buffer)
            return
        }
        let copied: Void? = body.withContiguousStorageIfAvailable { bytes in
            if !bytes.isEmpty { _ = evbuffer_add(buffer, bytes.baseAddress, bytes.count) }
        }
        if copied == nil {
            Array(body).withUnsafeBytes { if !$0.isEmpty { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) } }
        }
        evhttp_send_reply(raw, Int32(status), reasonPhrase(status), buffer)
    }

    /// Sends a complete response with a UTF-8 body.
    public func respond(status: Int, headers: [(String, String)] = [], text: String) {
        respond(status: status, headers: headers, body: Array(text.utf8))
    }

    /// Sends the status line and headers now and returns a stream for the body. HTTP/1.1
    /// clients get a chunked body unless `headers` has a Content-Length; HTTP/1.0 clients get
    /// a body delimited by the connection's close.
    public func startStream(status: Int = 200, headers: [(String, String)] = []) -> HTTPResponseStream {
        server.loop.preconditionInEventLoop()
        addHeaders(headers)
        return HTTPResponseStream(request: raw, server: server, status: status)
    }

    /// Writes `bytes` to the connection ahead of any response, bypassing HTTP framing.
    /// Only test origins want this (to send malformed responses).
    public func writeRaw(_ bytes: [UInt8]) {
        server.loop.preconditionInEventLoop()
        guard let conn = evhttp_request_get_connection(raw),
              let bev = evhttp_connection_get_bufferevent(conn) else { return }
        bytes.withUnsafeBytes { _ = bufferevent_write(bev, $0.baseAddress, $0.count) }
    }

    private func addHeaders(_ headers: [(String, String)]) {
        guard let out = evhttp_request_get_output_headers(raw) else { return }
        for (name, value) in headers { evhttp_add_header(out, name, value) }
    }
}

/// The standard reason phrase for `status` (evhttp fills in its own when given nil, but only
/// for codes it knows).
func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 200: "OK"
    case 204: "No Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 408: "Request Timeout"
    case 413: "Content Too Large"
    case 414: "URI Too Long"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    default: "Status \(status)"
    }
}
