import Foundation
import Testing
@testable import CurlStream

/// Thousands of random event sequences over several workers sharing one budget, with the books
/// checked after every step and starvation checked whenever all pokes have been delivered. In
/// half the sequences some hosts answer in HTTP/2 (libcurl's multiplexing simulated, with a
/// server stream limit sometimes below the pool's maxStreamsPerConnection). HTTP/2 hosts are
/// HTTPS hosts probed before their protocol is known (upstreamHTTP auto); in the other half
/// HTTPS hosts answer in HTTP/1.1, probed or not (upstreamHTTP 1.1).
@Suite struct PoolModelTests {
    /// Sequences in all, split over 8 parallel batches: 32 by default, so the unit suite stays
    /// under a second; `make test` runs 2,000 in a step of their own (about 10 s in a debug
    /// build) and `make fuzz-pool` 40,000.
    static let sequences = Int(ProcessInfo.processInfo.environment["POOL_MODEL_SEQUENCES"] ?? "") ?? 32

    /// `POOL_MODEL_SEED=N` replays sequence N alone (in batch 0).
    static let replay = UInt64(ProcessInfo.processInfo.environment["POOL_MODEL_SEED"] ?? "")

    @Test(arguments: 0..<8)
    func randomSequencesKeepTheBooksAndStarveNobody(batch: Int) {
        if let seed = Self.replay {
            if batch == 0 { run(seed: seed) }
            return
        }
        let perBatch = Self.sequences / 8
        for seed in (batch * perBatch)..<((batch + 1) * perBatch) {
            run(seed: UInt64(seed))
        }
    }

    private func run(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let workerCount = Int.random(in: 1...3, using: &rng)
        let maxStreams = Int.random(in: 1...4, using: &rng)
        let sim = PoolSimulation(workers: workerCount, maxConnections: Int.random(in: 1...6, using: &rng),
                                 perHost: Int.random(in: 1...6, using: &rng), maxKeepalive: Int.random(in: 0...4, using: &rng),
                                 poolTimeout: .seconds(1), maxStreamsPerConnection: maxStreams,
                                 probesProtocol: seed % 2 == 1 || Bool.random(using: &rng))
        let hosts = (0..<Int.random(in: 1...3, using: &rng)).map {
            sim.host(Int.random(in: 0..<3, using: &rng) > 0 ? "https://h\($0):443" : "http://h\($0):80")
        }
        if seed % 2 == 1 {
            for h in hosts where sim.pipewait.contains(h) && Bool.random(using: &rng) {
                // Usually the pool's stream count; sometimes the server allows fewer.
                sim.multiplexed[h] = Int.random(in: 0..<4, using: &rng) == 0 ? Int.random(in: 1...maxStreams, using: &rng) : maxStreams
            }
        }
        for step in 0..<200 {
            let w = Int.random(in: 0..<workerCount, using: &rng)
            let label: String
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<25:
                let h = hosts.randomElement(using: &rng)!
                sim.request(w, host: h)
                label = "request w\(w) h\(h)"
            case 25..<45:
                guard let id = sim.workers[w].admitted.keys.sorted(by: { $0.raw < $1.raw }).randomElement(using: &rng) else { continue }
                let reuse = Bool.random(using: &rng)
                sim.connect(w, id, reuse: reuse)
                label = "connect w\(w) \(id) reuse \(reuse)"
            case 45..<65:
                guard let id = sim.workers[w].connected.keys.sorted(by: { $0.raw < $1.raw }).randomElement(using: &rng) else { continue }
                let keep = Int.random(in: 0..<4, using: &rng) > 0
                sim.end(w, id, keepConnection: keep)
                label = "end w\(w) \(id) keep \(keep)"
            case 65..<70:
                guard let id = sim.workers[w].admitted.keys.sorted(by: { $0.raw < $1.raw }).randomElement(using: &rng) else { continue }
                sim.end(w, id)
                label = "cut before connecting w\(w) \(id)"
            case 70..<75:
                guard let h = hosts.filter({ sim.workers[w].idle[$0, default: 0] > 0 }).randomElement(using: &rng) else { continue }
                sim.closeIdle(w, host: h)
                label = "idle closed w\(w) h\(h)"
            case 75..<80:
                guard let id = sim.workers[w].waiting.sorted(by: { $0.raw < $1.raw }).randomElement(using: &rng) else { continue }
                sim.cancelWaiting(w, id)
                label = "cancel w\(w) \(id)"
            case 80..<85:
                sim.advance(.milliseconds(Int.random(in: 1...600, using: &rng)))
                label = "advance"
            case 85..<92 where !sim.workers[w].headDue.isEmpty:
                let id = sim.workers[w].headDue.sorted(by: { $0.raw < $1.raw }).randomElement(using: &rng)!
                sim.head(w, id)
                label = "head w\(w) \(id)"
            default:
                sim.deliverPoke()
                label = "poke"
            }
            sim.checkBooks("step \(step) (\(label)), seed \(seed)")
            sim.checkStreams("step \(step) (\(label)), seed \(seed)")
            sim.checkProbes("step \(step) (\(label)), seed \(seed)")
            if Int.random(in: 0..<10, using: &rng) == 0 {
                sim.deliverAllPokes("at step \(step), seed \(seed)")
                sim.checkBooks("pokes at step \(step), seed \(seed)")
                sim.checkNobodyStarves("step \(step) (\(label)), seed \(seed)")
                sim.checkNoStreamLeftFree("step \(step) (\(label)), seed \(seed)")
            }
        }
        // Wind down: everything ends, every idle connection closes, every slot returns.
        for w in 0..<workerCount {
            for id in sim.workers[w].waiting { sim.cancelWaiting(w, id) }
        }
        while let (w, id) = sim.anyTransfer() {
            sim.connect(w, id, reuse: true)
            sim.end(w, id, keepConnection: false)
            for w in 0..<workerCount {
                for id in sim.workers[w].waiting { sim.cancelWaiting(w, id) }
            }
        }
        sim.deliverAllPokes()
        for w in 0..<workerCount {
            for h in hosts {
                while sim.workers[w].idle[h, default: 0] > 0 || sim.workers[w].streams[h]?.values.contains(0) == true {
                    sim.closeIdle(w, host: h)
                }
            }
        }
        sim.checkBooks("wound down, seed \(seed)")
        #expect(sim.budget.openConnections == 0, "seed \(seed)")
        #expect(sim.budget.idleConnections == 0, "seed \(seed)")
        #expect(sim.budget.waitingOnTotal.load(ordering: .relaxed) == 0, "seed \(seed)")
        for w in sim.workers {
            #expect(w.pool.runningCount == 0 && w.pool.waitingCount == 0, "seed \(seed)")
        }
    }
}

extension PoolSimulation {
    /// Some transfer that is started, connected or not.
    func anyTransfer() -> (Int, TransferID)? {
        for (n, w) in workers.enumerated() {
            if let id = w.admitted.keys.first ?? w.connected.keys.first { return (n, id) }
        }
        return nil
    }
}

/// A small seeded generator, so that a failing sequence can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
