import CCurl
import EventLoop

/// A transfer's redirects. libcurl does not follow them (FOLLOWLOCATION off): it would resolve
/// the target's host itself, on a thread. The multi follows them instead, resolving each
/// target on the loop.
struct RedirectState {
    /// Redirects followed so far.
    var followed = 0
    /// The first non-empty Location header of the response being read, as sent (libcurl ignores
    /// an empty one, and so does the multi: that 3xx is then the final response).
    var location: String?
    /// The response being read is a redirect to follow (its headers are in).
    var isHop = false
    /// Body bytes of that redirect response, read and discarded.
    var hopBytes: Int64 = 0
    /// The redirect's body was longer than drainLimit and was cut short (CURLE_WRITE_ERROR).
    var hopCut = false
    /// When totalTimeout ends for the whole chain (set at the first redirect): each hop is a
    /// libcurl transfer of its own, given what is left.
    var deadline: ContinuousClock.Instant?
}

extension Transfer {
    /// Whether the response whose headers just ended is a redirect to follow: a 3xx with a
    /// Location, as libcurl itself follows them. Its head and body never reach the consumer.
    func redirectHop(status: Int) -> Bool {
        guard (300..<400).contains(status), redirect.location != nil else { return false }
        redirect.isHop = true
        return true
    }

    /// Keeps the value of a `Location:` header line, trimmed as libcurl trims it; the first
    /// non-empty one of a response counts, as in libcurl.
    func noteLocation(_ line: UnsafeRawBufferPointer) {
        guard redirect.location == nil, let value = HeaderLine.value(of: "location", in: line), !value.isEmpty else { return }
        redirect.location = String(decoding: value, as: UTF8.self)
    }

    /// Limits a hop after a redirect to what is left of totalTimeout (CURLOPT_TIMEOUT_MS; a
    /// chain past its deadline times out at once).
    func redirectTimeout(_ h: UnsafeMutableRawPointer) -> CURLcode {
        guard let deadline = redirect.deadline else { return CURLE_OK }
        let left = ContinuousClock.now.duration(to: deadline).milliseconds
        return CCurl_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, Int(left.rounded(.up))))
    }

    /// The absolute URL of the redirect: the Location resolved against the URL just fetched,
    /// with libcurl's URL API and the flags libcurl follows a redirect with. Not
    /// CURLINFO_REDIRECT_URL: libcurl sets that only when the response ended well, never for a
    /// redirect whose body was cut at drainLimit.
    var redirectURL: String? {
        guard let easy, let location = redirect.location, let url = curl_url() else { return nil }
        defer { curl_url_cleanup(url) }
        var base: UnsafeMutablePointer<CChar>?
        _ = CCurl_easy_getinfo_string(easy, CURLINFO_EFFECTIVE_URL, &base)
        guard let base, curl_url_set(url, CURLUPART_URL, base, 0) == CURLUE_OK,
              curl_url_set(url, CURLUPART_URL, location,
                           UInt32(CURLU_URLENCODE | CURLU_ALLOW_SPACE | CURLU_NON_SUPPORT_SCHEME)) == CURLUE_OK
        else { return nil }
        var target: UnsafeMutablePointer<CChar>?
        guard curl_url_get(url, CURLUPART_URL, &target, 0) == CURLUE_OK, let target else { return nil }
        defer { curl_free(target) }
        return String(cString: target)
    }

    /// A redirect's body is read and discarded so that its connection can be reused; one longer
    /// than drainLimit is cut (a short count ends the transfer) and the redirect followed anyway.
    func swallowHopBody(_ count: Int) -> Int {
        redirect.hopBytes += Int64(count)
        guard redirect.hopBytes <= Int64(multi.options.drainLimit) else {
            redirect.hopCut = true
            return 0
        }
        return count
    }
}

extension CurlMulti {
    /// `t`'s redirect response ended with `result`: the transfer starts over on the target
    /// (same consumer and tag; it has heard `connecting` and hears it no more). Its slot
    /// returns and it waits again under the target's host, after that host is resolved, so
    /// the per-host limits count the host it talks to. Returns false when `t` has no redirect
    /// to follow (the response is its final one).
    func followRedirect(_ t: Transfer, _ result: CURLcode) -> Bool {
        guard t.redirect.isHop, result == CURLE_OK || (result == CURLE_WRITE_ERROR && t.redirect.hopCut) else { return false }
        guard let target = t.redirectURL else {
            fail(t, TransferError(kind: .protocol, message: "redirect from \(t.request.url) without a usable Location"))
            return true
        }
        guard t.redirect.followed < options.maxRedirects else {
            // libcurl's words for the same end, so messages stay what users have seen.
            fail(t, TransferError(kind: .protocol, message: "Maximum (\(options.maxRedirects)) redirects followed"))
            return true
        }
        let lower = target.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            fail(t, TransferError(kind: .protocol, message: "redirect from \(t.request.url) to a URL that is not http or https"))
            return true
        }
        var deadline = t.redirect.deadline
        if deadline == nil {
            var spent: curl_off_t = 0
            if let easy = t.easy { _ = CCurl_easy_getinfo_off_t(easy, CURLINFO_TOTAL_TIME_T, &spent) }
            deadline = .now - .microseconds(spent) + .milliseconds(Int64(options.totalTimeout * 1000))
        }
        releaseConnection(t)
        t.requeue()
        t.redirect = RedirectState(followed: t.redirect.followed + 1, deadline: deadline)
        t.request = TransferRequest(url: target)
        t.host = pool.host(t.request.hostKey)
        resolveThenQueue(t)
        return true
    }
}
