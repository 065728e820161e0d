import EventLoop

/// The plain-HTTP errors of PRODUCT.md §4: a status and a JSON body `{"error": ..., ...}`
/// that says what was wrong.
struct ErrorResponse: Error {
    let status: Int
    let fields: [(String, JSONValue)]
    var headers: [(String, String)] = []

    init(status: Int, _ error: String, _ more: [(String, JSONValue)] = [], headers: [(String, String)] = []) {
        self.status = status
        self.fields = [("error", .string(error))] + more
        self.headers = headers
    }

    func send(to request: HTTPRequest, extraHeaders: [(String, String)] = []) {
        request.respond(status: status, headers: [jsonType] + headers + extraHeaders, body: body)
    }

    static func badParameter(_ name: String, _ value: String, _ message: String) -> ErrorResponse {
        ErrorResponse(status: 400, "bad parameter", [
            ("parameter", .string(name)), ("value", .string(value)), ("message", .string(message)),
        ])
    }

    /// The answer to a request beyond a size limit of the server (sent by EventLoop's guard,
    /// which closes the connection after it).
    static func tooLarge(_ limit: HTTPRequestLimit, options: HTTPServerOptions) -> ErrorResponse {
        switch limit {
        case .requestLine:
            ErrorResponse(status: 414, "request line too long", [("limit", .int(options.maxRequestLine))])
        case .headers:
            ErrorResponse(status: 431, "request headers too large", [("limit", .int(options.maxHeadersSize))])
        case .body:
            ErrorResponse(status: 413, "request body too large", [("limit", .int(options.maxBodySize))])
        }
    }

    var body: [UInt8] { JSONWriter.object(fields) }

    static func methodNotAllowed(_ method: HTTPMethod?, allow: String) -> ErrorResponse {
        ErrorResponse(status: 405, "method not allowed", [
            ("method", .string(method?.rawValue ?? "unknown")), ("allow", .string(allow)),
        ], headers: [("Allow", allow)])
    }
}
