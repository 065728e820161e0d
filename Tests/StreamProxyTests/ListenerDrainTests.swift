import EventLoop
import Foundation
import Glibc
import Testing

/// `HTTPServer.stopAccepting()`, which a drain starts with (issue 14): a listener that closes
/// resets the connections queued on it, so it closes only once they are accepted, and they are
/// served (with `Connection: close`). Real sockets on loopback; the loop is held inside a task
/// while the clients connect, so the kernel queues them.
@Suite struct ListenerDrainTests {
    @Test func connectionsQueuedWhenTheDrainStartsAreServed() throws {
        let thread = try LoopThread<Owner, UInt16>(name: "drain-probe") { loop in
            let owner = try Owner(loop: loop)
            return (owner: owner, info: owner.server.port)
        }
        defer { thread.stopAndJoin() }
        let port = thread.info
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        _ = thread.execute { owner in
            held.signal()
            release.wait()
            owner.server.stopAccepting()
        }
        held.wait()
        // The loop cannot accept now: every connection waits in the listener's queue.
        var clients: [RawSocket] = []
        for _ in 0..<20 {
            let c = try RawSocket(port: port, deadline: .now + .seconds(5))
            try c.sendAll(Array("GET / HTTP/1.1\r\nHost: test\r\n\r\n".utf8), deadline: .now + .seconds(5))
            clients.append(c)
        }
        release.signal()
        for (n, c) in clients.enumerated() {
            var response: [UInt8] = []
            let deadline = ContinuousClock.now + .seconds(5)
            receiving: while true {
                switch try c.receive(deadline: deadline) {
                case .bytes(let bytes): response += bytes
                default: break receiving
                }
            }
            let text = String(decoding: response, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200"), "client \(n): \(text.isEmpty ? "reset or closed unanswered" : text)")
            #expect(text.lowercased().contains("connection: close"), "client \(n): \(text)")
            c.close()
        }
        // Nothing is left that could bring a request: the listener is closed, every queued
        // connection was served.
        let quiet = Quiet()
        #expect(waitUntil(timeout: .seconds(5)) {
            _ = thread.execute { quiet.set($0.server.isQuiet) }
            return quiet.value
        } != nil)
        #expect(throws: (any Error).self, "no new connection is accepted") {
            let late = try RawSocket(port: port, deadline: .now + .seconds(2))
            try late.sendAll(Array("GET / HTTP/1.1\r\nHost: test\r\n\r\n".utf8), deadline: .now + .seconds(2))
            guard case .bytes = try late.receive(deadline: .now + .seconds(2)) else { throw ListenerClosed() }
        }
    }

    /// A kept-alive connection idle when the drain starts is closed at once (the client reads
    /// the end), so its next request goes to a listener that is open.
    @Test func idleKeptAliveConnectionsAreClosedAtTheDrain() throws {
        let thread = try LoopThread<Owner, UInt16>(name: "drain-probe") { loop in
            let owner = try Owner(loop: loop)
            return (owner: owner, info: owner.server.port)
        }
        defer { thread.stopAndJoin() }
        let c = try RawSocket(port: thread.info, deadline: .now + .seconds(5))
        defer { c.close() }
        try c.sendAll(Array("GET / HTTP/1.1\r\nHost: test\r\n\r\n".utf8), deadline: .now + .seconds(5))
        var response: [UInt8] = []
        while !String(decoding: response, as: UTF8.self).hasSuffix("\r\n\r\nok") {
            guard case .bytes(let bytes) = try c.receive(deadline: .now + .seconds(5)) else { break }
            response += bytes
        }
        #expect(String(decoding: response, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
        // Kept alive: nothing more comes until the drain.
        let quiet = try c.receive(deadline: .now + .milliseconds(200))
        guard case .timedOut = quiet else {
            Issue.record("the connection was not kept alive: \(quiet)")
            return
        }
        _ = thread.execute { $0.server.stopAccepting() }
        let end = try c.receive(deadline: .now + .seconds(2))
        guard case .closed = end else {
            Issue.record("the idle connection was not closed by the drain: \(end)")
            return
        }
    }

    /// A connection accepted before the drain that leaves without a request (with a FIN, with
    /// an RST, after half a request) does not hold the drain until its request deadline (a
    /// minute here): the server is quiet within 2 s. The drain starts while they are still open
    /// (accepted already, or queued and accepted by the drain).
    @Test func connectionsThatLeaveWithoutARequestDoNotHoldTheDrain() throws {
        let thread = try LoopThread<Owner, UInt16>(name: "drain-probe") { loop in
            let owner = try Owner(loop: loop, requestHeaderTimeout: 60)
            return (owner: owner, info: owner.server.port)
        }
        defer { thread.stopAndJoin() }
        var clients: [RawSocket] = []
        for n in 0..<3 {
            let c = try RawSocket(port: thread.info, deadline: .now + .seconds(5))
            if n == 2 { try c.sendAll(Array("GET / HTTP/1.1\r\nHo".utf8), deadline: .now + .seconds(5)) }
            clients.append(c)
        }
        _ = thread.execute { $0.server.stopAccepting() }
        for (n, c) in clients.enumerated() { c.close(reset: n == 1) }
        let quiet = Quiet()
        #expect(waitUntil(timeout: .seconds(2)) {
            _ = thread.execute { quiet.set($0.server.isQuiet) }
            return quiet.value
        } != nil, "the drain waits for connections that have gone")
    }

    final class Owner {
        var server: HTTPServer!

        init(loop: EventLoop, requestHeaderTimeout: Double = 10) throws {
            var options = HTTPServerOptions()
            options.requestHeaderTimeout = requestHeaderTimeout
            server = try HTTPServer(loop: loop, host: "127.0.0.1", port: 0, options: options) { request in
                request.respond(status: 200, headers: [("Content-Type", "text/plain")], body: Array("ok".utf8))
            }
        }
    }
}

private struct ListenerClosed: Error {}

private final class Quiet: @unchecked Sendable {
    private let lock = NSLock()
    private var quiet = false
    func set(_ value: Bool) { lock.withLock { quiet = value } }
    var value: Bool { lock.withLock { quiet } }
}
