import CCurl
import Testing
@testable import CurlStream

/// Every libcurl result code has its error kind (PRODUCT.md §5): the codes an upstream can cause
/// map to what a user acts on; the rest are `internal`, with a message naming the code, so no
/// unclassified code passes as `protocol`.
struct TransferErrorKindTests {
    /// The codes that are not `internal`, by kind (libcurl 7.88.1's curl.h).
    static let classified: [TransferErrorKind: [CURLcode]] = [
        .dns: [CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST],
        .connect: [CURLE_COULDNT_CONNECT, CURLE_QUIC_CONNECT_ERROR, CURLE_PROXY],
        .tls: [CURLE_SSL_CONNECT_ERROR, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
               CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_PEER_FAILED_VERIFICATION,
               CURLE_USE_SSL_FAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_CACERT_BADFILE,
               CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
               CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CLIENTCERT],
        .timeout: [CURLE_OPERATION_TIMEDOUT],
        .reset: [CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR],
        .protocol: [CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT, CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2,
                    CURLE_HTTP_RETURNED_ERROR, CURLE_RANGE_ERROR, CURLE_BAD_DOWNLOAD_RESUME,
                    CURLE_TOO_MANY_REDIRECTS, CURLE_BAD_CONTENT_ENCODING, CURLE_HTTP2_STREAM, CURLE_HTTP3],
        .pool: [CURLE_NO_CONNECTION_AVAILABLE],
    ]

    @Test func everyCodeHasItsKind() {
        var expected: [UInt32: TransferErrorKind] = [:]
        for (kind, codes) in Self.classified {
            for code in codes {
                #expect(expected[code.rawValue] == nil, "code \(code.rawValue) listed twice")
                expected[code.rawValue] = kind
            }
        }
        #expect(CURL_LAST.rawValue == 100, "a libcurl other than 7.88's: review the table")
        // One past the last, too: a code newer than this table is internal.
        for raw in 1...CURL_LAST.rawValue {
            let error = TransferError(curl: CURLcode(rawValue: raw), detail: "")
            #expect(error.kind == expected[raw] ?? .internal, "CURLcode \(raw)")
        }
    }

    @Test func internalMessagesNameTheCodeAndItsText() {
        let error = TransferError(curl: CURLE_WRITE_ERROR, detail: "")
        #expect(error.kind == .internal)
        #expect(error.message == "libcurl error 23: Failed writing received data to disk/application")
        let detailed = TransferError(curl: CURLE_OUT_OF_MEMORY, detail: "no room")
        #expect(detailed.message == "libcurl error 27: Out of memory (no room)")
    }

    @Test func otherKindsKeepLibcurlsDetailOrText() {
        #expect(TransferError(curl: CURLE_TOO_MANY_REDIRECTS, detail: "Maximum (3) redirects followed").message
            == "Maximum (3) redirects followed")
        #expect(TransferError(curl: CURLE_COULDNT_CONNECT, detail: "").message == "Couldn't connect to server")
    }
}
