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

    /// Classifies a libcurl result.
    init(curl code: CURLcode, detail: String) {
        let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        let kind: TransferErrorKind
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            kind = .dns
        case CURLE_COULDNT_CONNECT:
            kind = .connect
        case CURLE_OPERATION_TIMEDOUT:
            kind = .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE,
             CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_USE_SSL_FAILED:
            kind = .tls
        case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING:
            kind = .reset
        default:
            kind = .protocol
        }
        self.init(kind: kind, message: text)
    }
}
