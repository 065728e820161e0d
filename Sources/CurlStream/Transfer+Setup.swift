import CCurl

/// Setting up a transfer's easy handle: the options every transfer of a multi shares, and its own.
extension Transfer {
    /// Makes `h` (fresh, or reset by `curl_easy_reset`) this transfer's easy handle and sets
    /// every option. Handles are reset between transfers: besides options, a reset clears state
    /// libcurl 7.88 otherwise carries over, such as its dead-connection retry count.
    func attach(_ h: UnsafeMutableRawPointer, options: TransferOptions) -> Bool {
        easy = h
        let me = Unmanaged.passUnretained(self).toOpaque()
        errorBuffer[0] = 0
        var ok = Self.configure(h, options: options, ledger: multi.ledger)
        func check(_ rc: CURLcode) { if rc != CURLE_OK { ok = false } }
        check(CCurl_easy_setopt_string(h, CURLOPT_URL, request.url))
        // Kept alive by `request` until the handle is reset, before the request can change.
        if let parsed = request.parsed {
            check(CCurl_easy_setopt_pointer(h, CURLOPT_CURLU, UnsafeMutableRawPointer(parsed.handle)))
        }
        check(CCurl_easy_setopt_pointer(h, CURLOPT_PRIVATE, me))
        check(CCurl_easy_setopt_slist(h, CURLOPT_HTTPHEADER, multi.requestHeaders.head))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_WRITEDATA, me))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_HEADERDATA, me))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_OPENSOCKETDATA, me))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_RESOLVER_START_DATA, me))
        check(multi.resolveOption(for: self, h))
        check(redirectTimeout(h))
        // Concurrent transfers to an HTTPS host wait for the first connection's ALPN and then
        // multiplex on it, instead of each opening one (libcurl 7.88 lib/url.c ConnectionExists).
        // Not for plain HTTP: there libcurl learns the version only from the first response's
        // head, and the others would wait for it.
        if options.upstreamHTTP == .auto, request.hostKey.hasPrefix("https:") {
            check(CCurl_easy_setopt_long(h, CURLOPT_PIPEWAIT, 1))
        }
        return ok
    }

    /// The options every transfer of a multi shares.
    private static func configure(_ h: UnsafeMutableRawPointer, options: TransferOptions, ledger: ConnectionLedger) -> Bool {
        var ok = true
        func check(_ rc: CURLcode) { if rc != CURLE_OK { ok = false } }
        // libcurl frees the receive buffer when a transfer is done and allocates it at this size
        // for the next; it refuses the option while a buffer exists. A reset handle that refused
        // would believe in a 16 KiB buffer of another size: attach fails and the handle is dropped.
        check(CCurl_easy_setopt_long(h, CURLOPT_BUFFERSIZE, options.receiveBufferSize))
        check(CCurl_easy_setopt_write_callback(h, CURLOPT_WRITEFUNCTION, writeCallback))
        check(CCurl_easy_setopt_write_callback(h, CURLOPT_HEADERFUNCTION, headerCallback))
        // Every connection is matched with a lease of the process-wide budget. The close
        // callback outlives any transfer (libcurl closes cached connections later), so it
        // reports to the ledger, which outlives the multi handle.
        check(CCurl_easy_setopt_opensocket_callback(h, CURLOPT_OPENSOCKETFUNCTION, openSocketCallback))
        check(CCurl_easy_setopt_closesocket_callback(h, CURLOPT_CLOSESOCKETFUNCTION, closeSocketCallback))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_CLOSESOCKETDATA, Unmanaged.passUnretained(ledger).toOpaque()))
        check(CCurl_easy_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        // libcurl decodes every content coding it supports (gzip, deflate, br, zstd): body events
        // carry the body as a user reads it. The request's Accept-Encoding line, naming them, is
        // in the multi's header list (RequestHeaders), as is its User-Agent. Named here rather
        // than "" (all of them), which libcurl would spell out anew for every transfer.
        check(CCurl_easy_setopt_string(h, CURLOPT_ACCEPT_ENCODING, RequestHeaders.contentCodings))
        // Redirects are followed by the multi (Transfer+Redirect), which resolves their hosts on
        // the loop; libcurl is handed addresses and never resolves (the callback counts it if it
        // would).
        check(CCurl_easy_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0))
        check(CCurl_easy_setopt_resolver_start_callback(h, CURLOPT_RESOLVER_START_FUNCTION, resolverStartCallback))
        check(CCurl_easy_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https"))
        // Upstreams are fetched directly, never through a proxy named by the environment
        // (`http_proxy`, `no_proxy`, ...): the proxy host would be resolved by libcurl, off the
        // loop, and a server quietly taking them from its environment surprises. "*" also
        // spares libcurl reading those variables for every transfer (lib/url.c).
        check(CCurl_easy_setopt_string(h, CURLOPT_NOPROXY, "*"))
        switch options.upstreamHTTP {
        case .auto:
            // HTTP/2 where TLS's ALPN offers it, HTTP/1.1 otherwise. The pool limits still count
            // connections; a multiplexed one carries up to maxStreamsPerConnection transfers.
            check(CCurl_easy_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)))
        case .http1_1:
            check(CCurl_easy_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)))
        }
        check(CCurl_easy_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(options.connectTimeout)))
        check(CCurl_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, milliseconds(options.totalTimeout)))
        check(CCurl_easy_setopt_long(h, CURLOPT_MAXAGE_CONN, max(1, Int(options.keepaliveExpiry.rounded(.up)))))
        check(CCurl_easy_setopt_long(h, CURLOPT_TCP_NODELAY, 1))
        if let ca = options.caFile { check(CCurl_easy_setopt_string(h, CURLOPT_CAINFO, ca)) }
        return ok
    }
}

private func milliseconds(_ seconds: Double) -> Int { max(1, Int((seconds * 1000).rounded())) }
