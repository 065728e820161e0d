import CCurl

/// A libcurl multi-interface result code that is not `CURLM_OK`.
public struct CurlMultiError: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: CURLMcode.RawValue
    /// The call that failed.
    public let call: String

    public init(_ code: CURLMcode, call: String) {
        rawValue = code.rawValue
        self.call = call
    }

    public var description: String {
        "\(call): \(String(cString: curl_multi_strerror(CURLMcode(rawValue: rawValue))))"
    }
}

/// Why an upstream transfer failed, in the categories users act on.
public enum TransferErrorKind: String, Sendable, CaseIterable {
    /// The host name did not resolve.
    case dns
    /// The TCP connection was refused or could not be made.
    case connect
    /// TLS handshake or certificate verification failed.
    case tls
    /// A connect, read (no bytes for `readTimeout`) or total timeout expired.
    case timeout
    /// The connection was reset or closed before the response was complete.
    case reset
    /// The upstream did not speak valid HTTP, or redirected too often.
    case `protocol`
    /// No connection slot became free within `poolTimeout`.
    case pool
    /// A libcurl result none of the kinds above describes (out of memory, a callback or option
    /// failure, ...): a fault of the proxy or its environment, not of the upstream. The message
    /// names the CURLcode, so it can be looked up.
    case `internal`
}

/// A failed transfer: its kind and a message fit to show a user (no secrets: URLs only).
public struct TransferError: Error, Hashable, Sendable, CustomStringConvertible {
    public let kind: TransferErrorKind
    public let message: String

    public init(kind: TransferErrorKind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// Classifies a libcurl result. `detail` is libcurl's error buffer (may be empty).
    init(curl code: CURLcode, detail: String) {
        let text = String(cString: curl_easy_strerror(code))
        let kind = Self.kind(of: code)
        if kind == .internal {
            // Unclassified: say which code it was, so it can be looked up and classified.
            let extra = detail.isEmpty || detail == text ? "" : " (\(detail))"
            self.init(kind: kind, message: "libcurl error \(code.rawValue): \(text)\(extra)")
        } else {
            self.init(kind: kind, message: detail.isEmpty ? text : detail)
        }
    }

    /// The kind of each libcurl 7.88 result code; codes of protocols the proxy does not speak
    /// (FTP, TFTP, LDAP, SSH, RTSP, ...), local failures and codes unknown to this table are
    /// `internal`.
    static func kind(of code: CURLcode) -> TransferErrorKind {
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .dns
        case CURLE_COULDNT_CONNECT, CURLE_PROXY, CURLE_QUIC_CONNECT_ERROR:
            return .connect
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE,
             CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_USE_SSL_FAILED, CURLE_SSL_CLIENTCERT:
            return .tls
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING:
            return .reset
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_WEIRD_SERVER_REPLY,
             CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_HTTP3, CURLE_TOO_MANY_REDIRECTS,
             CURLE_BAD_CONTENT_ENCODING, CURLE_RANGE_ERROR, CURLE_HTTP_RETURNED_ERROR,
             CURLE_BAD_DOWNLOAD_RESUME:
            return .protocol
        case CURLE_NO_CONNECTION_AVAILABLE:
            return .pool
        default:
            return .internal
        }
    }
}
