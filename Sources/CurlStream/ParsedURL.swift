import CCurl

/// A request's URL as libcurl's URL API parses it, once for every transfer of the request.
///
/// A transfer given only the string makes libcurl 7.88 parse it and then rebuild it into its
/// normalized form (`curl_url_set`, then `curl_url_get` through its character-at-a-time printf):
/// 8.5% of all the proxy's instructions on W1. Handed this as well (CURLOPT_CURLU), libcurl
/// copies it instead (`curl_url_dup`) and keeps the string as given for the effective URL.
///
/// libcurl only reads it (the option's contract; `curl_url_dup` copies each part), so one parse
/// serves every worker's transfers of a route's upstream.
final class ParsedURL: @unchecked Sendable {
    let handle: OpaquePointer

    /// Parses `url` with the flags libcurl parses a transfer's URL with; nil if it refuses it
    /// (the transfer then hands libcurl the string, which fails it with libcurl's own message).
    init?(_ url: String) {
        guard let h = curl_url() else { return nil }
        guard curl_url_set(h, CURLUPART_URL, url, UInt32(CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME)) == CURLUE_OK else {
            curl_url_cleanup(h)
            return nil
        }
        handle = h
    }

    deinit { curl_url_cleanup(handle) }
}
