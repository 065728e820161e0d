import Testing
@testable import EventLoop

/// The request target's path and query decoding, without evhttp.
@Suite struct RequestTargetTests {
    private func query(_ raw: String) -> [String] {
        RequestTarget(raw).query.map { "\($0.name)=\($0.value)" }
    }

    @Test func pathIsDecodedAndStopsAtTheQuery() {
        #expect(RequestTarget("/stream/news?prefix=10").path == "/stream/news")
        #expect(RequestTarget("/a%20b/%E2%82%AC").path == "/a b/€")
        #expect(RequestTarget("/a+b").path == "/a+b", "+ is a space only in the query")
        #expect(RequestTarget("/x%3Fy?z").path == "/x?y", "an escaped ? belongs to the path")
        #expect(RequestTarget("").path == "")
        #expect(RequestTarget("?a=1").path == "")
    }

    @Test func malformedEscapesKeepTheComponentAsSent() {
        #expect(RequestTarget("/a%2").path == "/a%2")
        #expect(RequestTarget("/a%zz").path == "/a%zz")
        #expect(RequestTarget("/%FF").path == "/%FF", "decodes to bytes that are not UTF-8")
        #expect(RequestTarget("/%C3").path == "/%C3", "half a character")
        #expect(query("/?n%=v%41") == ["n%=vA"])
    }

    @Test func queryPairsInOrder() {
        #expect(query("/s?b=2&a=1&b=3") == ["b=2", "a=1", "b=3"])
        #expect(query("/s?a+b=c%2Bd&e") == ["a b=c+d", "e="])
        #expect(query("/s?&&a=1&&") == ["a=1"], "empty pairs are skipped")
        #expect(query("/s?a==b") == ["a==b"], "only the first = splits")
        #expect(query("/s?=x") == ["=x"])
        #expect(query("/s") == [])
        #expect(query("/s?") == [])
        #expect(query("/s?a=%26&b=%3D") == ["a=&", "b=="])
    }

    @Test func queryValueIsTheFirst() {
        let t = RequestTarget("/s?order=sequential&order=completion&prefix=1KiB")
        #expect(t.queryValue("order") == "sequential")
        #expect(t.queryValue("prefix") == "1KiB")
        #expect(t.queryValue("missing") == nil)
    }

    /// The query starts at the first `?` byte even when a combining mark follows it (one
    /// `Character` with the `?`): found by the request-target fuzzer once the split went by byte.
    @Test func aQuestionMarkStartsTheQueryWhateverFollowsIt() {
        let t = RequestTarget("/z%F?\u{739}a=%2")
        #expect(t.path == "/z%F")
        #expect(t.query.count == 1)
        #expect(t.queryValue("\u{739}a") == "%2")
        // And so do `&` and `=`.
        let u = RequestTarget("/p?a=1&\u{739}b=2=\u{739}")
        #expect(u.query.map(\.name) == ["a", "\u{739}b"])
        #expect(u.queryValue("\u{739}b") == "2=\u{739}")
    }
}
