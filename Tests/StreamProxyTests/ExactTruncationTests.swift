import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// `truncated` is exact (issue 11, PRODUCT.md §5): a body ending exactly at the prefix is not
/// truncated, one byte or many past it is, whatever the framing, with no waiting beyond what is
/// already on the socket. The origin writes exact pieces; the end of the body (terminating
/// chunk, or FIN) travels in the same send as its last bytes.
@Suite(.serialized)
struct ExactTruncationTests {
    static let prefix = 5_000
    /// Body lengths: at the prefix, one byte past it, far past it.
    static let lengths = [prefix, prefix + 1, prefix + 100_000]

    /// The 9 cases of framing × length, identity and gzip: the same answers.
    @Test(arguments: [String?.none, "gzip"])
    func truncatedIsExactForEveryFramingAndLength(coding: String?) throws {
        var responses: [FramedResponse] = []
        var expected: [(Framing, Int)] = []
        for framing in Framing.allCases {
            for length in Self.lengths {
                let body = FidelityBody.letters(length)
                var response = FramedResponse(body: body, framing: framing)
                if let coding {
                    response.body = try Compress.run(coding, body)
                    response.headers.append(("Content-Encoding", coding))
                }
                // Reads that end before and at the prefix, then the rest in large pieces.
                response.pieces = [1_000, 3_000] + Array(repeating: 16_384, count: 8)
                responses.append(response)
                expected.append((framing, length))
            }
        }
        let rig = try FidelityRig(responses: responses, prefix: Self.prefix)
        defer { rig.stop() }
        for (k, (framing, length)) in expected.enumerated() {
            let what = "\(framing.rawValue), \(length) bytes, \(coding ?? "identity")"
            let outcome = try rig.run(k)
            #expect(outcome.error == nil, "\(what): \(String(describing: outcome.error))")
            #expect(outcome.truncated == (length > Self.prefix), "\(what)")
            #expect(outcome.bytes == Self.prefix, "\(what)")
            let body = FidelityBody.letters(length)
            #expect(outcome.text == String(decoding: body[..<Self.prefix], as: UTF8.self), "\(what)")
            #expect(outcome.head.string("contentEncoding") == coding, "\(what)")
        }
    }

    /// A body filling the prefix whose end comes later than the read that filled it: the proxy
    /// does not wait for it. The upstream ends at once, truncated (not known to have ended).
    @Test func theEndArrivingLaterIsNotWaitedFor() throws {
        let body = FidelityBody.letters(Self.prefix)
        var responses: [FramedResponse] = []
        for framing in [Framing.chunked, .close] {
            var response = FramedResponse(body: body, framing: framing)
            response.endDelayMilliseconds = 1_500
            responses.append(response)
        }
        let rig = try FidelityRig(responses: responses, prefix: Self.prefix)
        defer { rig.stop() }
        for k in responses.indices {
            let outcome = try rig.run(k)
            #expect(outcome.truncated == true)
            #expect(outcome.bytes == Self.prefix)
            // From its head (the origin serves one connection at a time: this one may have waited).
            let ttfb = try #require(outcome.head.double("ttfbMs"))
            #expect(try #require(outcome.ms) - ttfb < 1_000, "ended without waiting for the body's end")
        }
    }

    /// A chunked body that ends at the prefix is read to its natural end (its connection
    /// stays reusable); one that goes far past it is cut.
    @Test func aBodyEndingAtThePrefixIsReadToItsEndNotCut() throws {
        let exact = FramedResponse(body: FidelityBody.letters(Self.prefix), framing: .chunked)
        let longer = FramedResponse(body: FidelityBody.letters(Self.prefix + 100_000), framing: .chunked)
        let rig = try FidelityRig(responses: [exact, longer], prefix: Self.prefix)
        defer { rig.stop() }
        #expect(try rig.run(0).truncated == false)
        var metrics = try rig.cluster.metrics()
        #expect(metricValue(metrics, "streamproxy_upstream_transfers_completed_total") == 1)
        #expect(metricValue(metrics, "streamproxy_upstream_cut_total") == 0)
        #expect(try rig.run(1).truncated == true)
        metrics = try rig.cluster.metrics()
        #expect(metricValue(metrics, "streamproxy_upstream_transfers_completed_total") == 1)
        #expect(metricValue(metrics, "streamproxy_upstream_cut_total") == 1)
    }
}

