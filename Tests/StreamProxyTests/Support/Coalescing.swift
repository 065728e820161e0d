import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

extension ProxyConfig {
    /// Makes route `name` (already in `routes`) coalesce, with `cacheFor` seconds of micro-cache.
    mutating func coalesce(_ name: String, cacheFor: Double? = nil) {
        let i = routes.firstIndex { $0.name == name }!
        routes[i].coalesce = true
        routes[i].cacheFor = cacheFor
    }
}

/// The coalescing counters of one `/metrics` text, per worker.
struct CoalescingFigures: Equatable, CustomStringConvertible {
    var fetches: [Int]
    var joins: [Int]
    var cacheHits: [Int]
    var streams: [Int]
    var bytesHeld: Int

    init(_ metrics: String, workers: Int) {
        func each(_ name: String) -> [Int] {
            (0..<workers).map { Int(metricValue(metrics, name, labels: ["worker": "\($0)"])) }
        }
        fetches = each("streamproxy_coalesced_fetches_total")
        joins = each("streamproxy_coalesced_joins_total")
        cacheHits = each("streamproxy_coalesced_cache_hits_total")
        streams = each("streamproxy_streams_total")
        bytesHeld = Int(metricValue(metrics, "streamproxy_coalesced_bytes_held"))
    }

    var description: String {
        "fetches \(fetches), joins \(joins), cache hits \(cacheHits), streams \(streams), bytes held \(bytesHeld)"
    }
}

extension TestCluster {
    func coalescing() throws -> CoalescingFigures {
        CoalescingFigures(try metrics(), workers: config.workers)
    }
}

extension StreamShape {
    /// The `shared` field of upstream `i`'s head (nil when the route does not coalesce).
    func shared(of i: Int) throws -> String? {
        try byUpstream[i]?.first { $0.event == "head" }.map { try $0.json() }?.string("shared")
    }
}

extension Dictionary where Key == String, Value == Any {
    /// The test origin's requests per target (path and query as sent), `/stats` excluded, from
    /// its `/stats`.
    var requestsByTarget: [String: Int] {
        (self["requestsByTarget"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
    }

    /// The sum of ``requestsByTarget``: the requests that were not for `/stats`.
    var fetchRequests: Int { requestsByTarget.values.reduce(0, +) }
}
