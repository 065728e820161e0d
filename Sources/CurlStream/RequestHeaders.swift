import CCurl

/// The header lines every upstream request carries besides libcurl's own (`Host`, `Accept`),
/// handed to libcurl as one list (CURLOPT_HTTPHEADER) that every transfer of a multi shares.
///
/// libcurl 7.88 would make the same two lines itself from CURLOPT_USERAGENT and
/// CURLOPT_ACCEPT_ENCODING, but it formats them for every transfer, a character at a time
/// through its printf, and then formats them again into the request (lib/transfer.c
/// `Curl_pretransfer`, lib/http.c `Curl_http`). Given as a list, each is formatted once, straight
/// into the request: with the codings named (below), 4.3% of the instructions of a W1 stream
/// (bench/callgrind.sh: 719 K -> 688 K).
/// CURLOPT_ACCEPT_ENCODING stays set: it is what makes libcurl decode the body, and libcurl
/// leaves out its own `Accept-Encoding` line when the list has one.
enum RequestHeaders {
    /// The content codings this libcurl decodes, in the order libcurl names them for
    /// CURLOPT_ACCEPT_ENCODING "" (lib/content_encoding.c): the codings the proxy asks for.
    static let contentCodings: String = {
        // Any struct version has `features` (CURLVERSION_NOW is a macro Swift does not import).
        let features = curl_version_info(CURLVERSION_FIRST).pointee.features
        var codings: [String] = []
        if features & CURL_VERSION_LIBZ != 0 { codings += ["deflate", "gzip"] }
        if features & CURL_VERSION_BROTLI != 0 { codings.append("br") }
        if features & CURL_VERSION_ZSTD != 0 { codings.append("zstd") }
        return codings.isEmpty ? "identity" : codings.joined(separator: ", ")
    }()

    /// The lines for `options`; nil if libcurl could not allocate the list.
    static func list(for options: TransferOptions) -> CurlStringList? {
        var lines = ["Accept-Encoding: \(contentCodings)"]
        if !options.userAgent.isEmpty { lines.insert("User-Agent: \(options.userAgent)", at: 0) }
        return CurlStringList(lines)
    }
}
