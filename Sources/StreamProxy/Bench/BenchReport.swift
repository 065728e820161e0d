import Foundation
import Histogram

/// The report of a run: a table for people, JSON for machines.
struct BenchReport {
    let target: String
    let load: BenchLoad
    let result: BenchResult
    let seconds: Double
    let cpuSeconds: Double
    let maxRSSKiB: Int

    private static let percentiles: [(String, Double)] = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)]

    private var loadDescription: String {
        switch load {
        case .closed(let c): "closed loop, \(c) concurrent"
        case .open(let r): "open loop, \(r) streams/s"
        }
    }

    private func perSecond(_ n: Int) -> Double { seconds > 0 ? Double(n) / seconds : 0 }

    private func millis(_ us: UInt64) -> String { String(format: "%.2f", Double(us) / 1000) }

    /// Milliseconds to two decimals, as a JSON number.
    private func millisValue(_ us: UInt64) -> Double { rounded(Double(us) / 1000, 2) }

    /// `x` to `digits` decimals: JSON numbers as short as the table's figures (3.001, not
    /// 3.0012345678).
    private func rounded(_ x: Double, _ digits: Int) -> Double {
        let scale = [1.0, 10, 100, 1000][digits]
        return (x * scale).rounded() / scale
    }

    var table: String {
        var out = "stream-proxy bench: \(target) (\(loadDescription))\n"
        out += String(format: "  %.2f s, %d started, %d completed (%d without an error event), %d most open at once, %d on a reused connection\n",
                      seconds, result.started, result.completed, result.completedClean, result.mostOpen, result.connectionsReused)
        out += String(format: "  %.1f streams/s   %.1f events/s   %.2f MB/s\n",
                      perSecond(result.completed), perSecond(result.events), perSecond(result.bodyBytes) / 1e6)
        out += "\n  latency (ms)      p50      p90      p99    p99.9      max\n"
        for (name, h) in [("first byte", result.firstByte), ("first chunk", result.firstChunk), ("done", result.done)] {
            guard h.totalCount > 0 else {
                out += "  \(name.padding(toLength: 12, withPad: " ", startingAt: 0))      -\n"
                continue
            }
            let cells = Self.percentiles.map { millis(h.valueAtPercentile($0.1)) } + [millis(h.max)]
            out += "  " + name.padding(toLength: 12, withPad: " ", startingAt: 0)
                + cells.map { String(repeating: " ", count: max(1, 9 - $0.count)) + $0 }.joined() + "\n"
        }
        out += "\n  errors: " + (result.errors.isEmpty ? "none" :
            result.errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) + "\n"
        out += String(format: "  bench process: %.2f s CPU (%.0f%% of one core), peak RSS %.1f MB\n",
                      cpuSeconds, seconds > 0 ? cpuSeconds / seconds * 100 : 0, Double(maxRSSKiB) / 1024)
        return out
    }

    var json: String {
        func hist(_ h: Histogram<UInt64>) -> JSONValue {
            var fields: [(String, JSONValue)] = [("count", .int(Int(h.totalCount)))]
            guard h.totalCount > 0 else { return .object(fields) }
            for (name, p) in Self.percentiles { fields.append(("\(name)Ms", .number(millisValue(h.valueAtPercentile(p))))) }
            fields.append(("maxMs", .number(millisValue(h.max))))
            return .object(fields)
        }
        var w = JSONWriter()
        w.value(.object([
            ("target", .string(target)),
            ("load", .string(loadDescription)),
            ("seconds", .number(rounded(seconds, 3))),
            ("started", .int(result.started)),
            ("completed", .int(result.completed)),
            ("streamsPerSecond", .number(rounded(perSecond(result.completed), 1))),
            ("completedClean", .int(result.completedClean)),
            ("cleanStreamsPerSecond", .number(rounded(perSecond(result.completedClean), 1))),
            ("eventsPerSecond", .number(rounded(perSecond(result.events), 1))),
            ("bytesPerSecond", .int(Int(perSecond(result.bodyBytes)))),
            ("mostOpen", .int(result.mostOpen)),
            ("connectionsReused", .int(result.connectionsReused)),
            ("firstByte", hist(result.firstByte)),
            ("firstChunk", hist(result.firstChunk)),
            ("done", hist(result.done)),
            ("errors", .object(result.errors.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("cpuSeconds", .number(rounded(cpuSeconds, 2))),
            ("maxRSSKiB", .int(maxRSSKiB)),
        ]))
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
