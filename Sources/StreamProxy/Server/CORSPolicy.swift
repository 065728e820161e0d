/// Which browser origins may read the proxy's responses (PRODUCT.md §3 `cors`).
///
/// An allowed `Origin` is echoed in `Access-Control-Allow-Origin` (with `Vary: Origin`, so caches
/// keep per-origin copies); a foreign origin gets no grant, so the browser withholds the
/// response from its page. `*` allows any origin, never together with credentials.
struct CORSPolicy: Sendable {
    let allowed: Set<String>
    let allowAny: Bool
    let credentials: Bool

    init(origins: [String], credentials: Bool) {
        allowAny = origins.contains("*")
        allowed = Set(origins.filter { $0 != "*" }.map { $0.lowercased() })
        self.credentials = credentials && !allowAny
    }

    var isEnabled: Bool { allowAny || !allowed.isEmpty }

    /// Whether a request from `origin` gets a grant.
    func allows(_ origin: String) -> Bool {
        allowAny || allowed.contains(origin.lowercased())
    }

    /// Headers for a response to a request carrying `origin` (none without an Origin header,
    /// or when the origin is not allowed).
    func responseHeaders(origin: String?) -> [(String, String)] {
        guard isEnabled, let origin else { return [] }
        guard allows(origin) else { return [("Vary", "Origin")] }
        var headers = [("Access-Control-Allow-Origin", allowAny && !credentials ? "*" : origin), ("Vary", "Origin")]
        if credentials { headers.append(("Access-Control-Allow-Credentials", "true")) }
        return headers
    }

    /// Headers answering a preflight (`OPTIONS` with Access-Control-Request-Method) from an
    /// allowed origin; nil for a foreign one.
    func preflightHeaders(origin: String?, requestedHeaders: String?) -> [(String, String)]? {
        guard isEnabled, let origin, allows(origin) else { return nil }
        var headers = responseHeaders(origin: origin)
        headers.append(("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"))
        headers.append(("Access-Control-Allow-Headers", requestedHeaders ?? "Last-Event-ID, Cache-Control"))
        headers.append(("Access-Control-Max-Age", "600"))
        return headers
    }
}
