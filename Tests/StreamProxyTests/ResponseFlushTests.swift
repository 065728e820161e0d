import EventLoop
import Glibc
import Synchronization
import Testing

/// `HTTPResponseStream.onFlushed`, which the worker's shutdown waits on: it fires once the ended
/// body has left the process (or its connection is gone), and not before. Real sockets on
/// loopback; a client with a 4 KiB receive buffer holds most of an 8 MiB body in the server.
@Suite struct ResponseFlushTests {
    static let bodySize = 8 << 20

    @Test func firesOnlyOnceTheClientHasReadTheEnd() throws {
        let probe = try FlushProbe.start()
        defer { probe.thread.stopAndJoin() }
        let client = try RawSocket(port: probe.thread.info, receiveBufferSize: 4096, deadline: .now + .seconds(5))
        try client.sendAll(Array("GET / HTTP/1.1\r\nHost: test\r\n\r\n".utf8), deadline: .now + .seconds(5))
        #expect(waitUntil(timeout: .seconds(5)) { probe.started.load(ordering: .relaxed) == 1 } != nil)
        #expect(waitUntil(timeout: .milliseconds(300)) { probe.flushed.load(ordering: .relaxed) > 0 } == nil,
                "flushed while most of the body still waits for a client that does not read")

        var received = 0
        var tail: [UInt8] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while !tail.ends(with: Array("\r\n0\r\n\r\n".utf8)) {
            guard case .bytes(let bytes) = try client.receive(deadline: deadline) else { break }
            received += bytes.count
            tail = Array((tail + bytes).suffix(16))
        }
        #expect(received > Self.bodySize, "the whole chunked body arrived")
        #expect(waitUntil(timeout: .seconds(5)) { probe.flushed.load(ordering: .relaxed) == 1 } != nil)
    }

    @Test func firesWhenTheClientLeavesWithTheBodyUnread() throws {
        let probe = try FlushProbe.start()
        defer { probe.thread.stopAndJoin() }
        let client = try RawSocket(port: probe.thread.info, receiveBufferSize: 4096, deadline: .now + .seconds(5))
        try client.sendAll(Array("GET / HTTP/1.1\r\nHost: test\r\n\r\n".utf8), deadline: .now + .seconds(5))
        #expect(waitUntil(timeout: .seconds(5)) { probe.started.load(ordering: .relaxed) == 1 } != nil)
        #expect(probe.flushed.load(ordering: .relaxed) == 0)
        client.close(reset: true)
        #expect(waitUntil(timeout: .seconds(5)) { probe.flushed.load(ordering: .relaxed) == 1 } != nil)
    }
}

/// A server on a loop thread of its own that answers every request with an 8 MiB streamed body,
/// ended at once, keeping each stream until it reports `onFlushed`.
private final class FlushProbe: Sendable {
    let started = Atomic(0)
    let flushed = Atomic(0)
    nonisolated(unsafe) private(set) var thread: LoopThread<Owner, UInt16>!

    static func start() throws -> FlushProbe {
        let probe = FlushProbe()
        probe.thread = try LoopThread<Owner, UInt16>(name: "flush-probe") { loop in
            let owner = try Owner(loop: loop, probe: probe)
            return (owner: owner, info: owner.server.port)
        }
        return probe
    }

    final class Owner {
        var server: HTTPServer!
        var streams: [ObjectIdentifier: HTTPResponseStream] = [:]

        init(loop: EventLoop, probe: FlushProbe) throws {
            let body = [UInt8](repeating: UInt8(ascii: "x"), count: ResponseFlushTests.bodySize)
            server = try HTTPServer(loop: loop, host: "127.0.0.1", port: 0) { [unowned self] request in
                let stream = request.startStream(headers: [("Content-Type", "text/plain")])
                let key = ObjectIdentifier(stream)
                self.streams[key] = stream
                stream.onFlushed = { [unowned self] in
                    self.streams[key] = nil
                    probe.flushed.add(1, ordering: .relaxed)
                }
                stream.write(body)
                stream.end()
                probe.started.add(1, ordering: .relaxed)
            }
        }
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
