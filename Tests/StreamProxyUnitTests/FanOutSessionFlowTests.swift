import CurlStream
import Testing
@testable import StreamProxy
import StreamTestSupport

/// The session's flow control and clocks: backpressure, heartbeat, read timeout, the client
/// leaving, shutdown. Time moves only when a test advances its clock.
@Suite struct FanOutSessionFlowTests {

    // MARK: - Backpressure

    @Test func aFullClientQueueRefusesBytesUntilItDrains() throws {
        var settings = SessionHarness.defaultSettings
        settings.prefix = 100
        var h = SessionHarness(upstreams: 3, settings: settings)
        h.open()
        h.head(0); h.head(1); h.head(2)
        h.queued = 1_001  // over streamBuffer (1,000) after the next write
        #expect(h.bytes(0, "first") == .proceed, "bytes that made the queue grow are taken")
        #expect(h.session.isPaused)
        #expect(h.bytes(1, "later") == .pause, "refused: the transfer keeps them")
        #expect(h.bytes(0, "more") == .pause)
        #expect(try h.text(of: 1).isEmpty && h.text(of: 0) == "first")
        // Upstream 2 never sent anything while paused: only the refused ones are resumed.
        #expect(h.drained() == [0, 1])
        #expect(!h.session.isPaused)
        #expect(h.bytes(1, "later") == .proceed)
        #expect(try h.text(of: 1) == "later")
    }

    @Test func resumingStopsWhenTheQueueFillsAgain() throws {
        var settings = SessionHarness.defaultSettings
        settings.prefix = 100
        var h = SessionHarness(upstreams: 3, settings: settings)
        h.open()
        for i in 0..<3 { h.head(i) }
        h.queued = 5_000
        h.bytes(0, "a")
        for i in 0..<3 { #expect(h.bytes(i, "x") == .pause) }
        h.queued = 0
        h.session.clientDrained(at: h.now)
        var out = SessionOutput()
        #expect(h.session.nextResume(at: h.now, into: &out) == 0)
        // Upstream 0's held bytes fill the queue again: the others stay refused.
        h.queued = 5_000
        #expect(h.bytes(0, "x") == .proceed)
        #expect(h.session.isPaused)
        #expect(h.session.nextResume(at: h.now, into: &out) == nil)
        #expect(h.drained() == [1, 2])
    }

    // MARK: - Heartbeat

    @Test func aPingFollowsEachHeartbeatOfSilenceOnly() throws {
        var settings = SessionHarness.defaultSettings
        settings.readTimeout = .seconds(3600)
        var h = SessionHarness(upstreams: 1, settings: settings)
        h.open()
        #expect(h.wake == h.now + .seconds(15))
        h.advance(.seconds(10))
        h.head(0)  // a write: the silence starts again
        h.fireTimer()  // fires at 15 s, 5 s after the write: too early for a ping
        #expect(h.comments.isEmpty)
        #expect(h.wake == h.now + .seconds(10), "re-armed for 15 s after the last write")
        h.fireTimer()
        #expect(h.comments == ["ping"])
        #expect(h.wake == h.now + .seconds(15))
        h.fireTimer()
        #expect(h.comments == ["ping", "ping"])
        #expect(h.names == ["open", "head"], "pings are comments, not events")
    }

    // MARK: - Read timeout

    @Test func anUpstreamSilentForTheReadTimeoutFails() throws {
        var settings = SessionHarness.defaultSettings
        settings.readTimeout = .seconds(2)
        var h = SessionHarness(upstreams: 2, settings: settings)
        h.open()
        h.advance(.seconds(30))
        h.fireTimer()
        #expect(h.names == ["open"], "waiting for a connection slot has no read deadline")
        h.connecting(0); h.connecting(1)
        #expect(h.wake == h.now + .seconds(2))
        h.advance(.milliseconds(1500))
        h.head(1)
        h.fireTimer()  // 2 s after connecting: upstream 0 is due, 1 had a head 0.5 s ago
        #expect(h.commands.suffix(1) == [.stop(0)])
        let error = try h.data("error")[0]
        #expect(error.int("i") == 0 && error.string("kind") == "timeout")
        #expect(error.string("message") == "no data from http://u0.test/x for 2 s")
        #expect(h.wake == h.now + .milliseconds(1500), "armed for upstream 1's deadline")
        h.fireTimer()
        #expect(h.commands.suffix(1) == [.stop(1)])
        #expect(h.names.suffix(2) == ["error", "done"])
        #expect(try h.data("done")[0].int("failed") == 2)
    }

    @Test func aRefusedUpstreamWaitsForTheClientNotItsUpstream() throws {
        var settings = SessionHarness.defaultSettings
        settings.readTimeout = .seconds(2)
        settings.prefix = 100
        var h = SessionHarness(upstreams: 1, settings: settings)
        h.open(); h.connecting(0); h.head(0)
        h.queued = 10_000
        h.bytes(0, "a")
        #expect(h.bytes(0, "b") == .pause)
        h.advance(.seconds(60))
        h.fireTimer()
        #expect(try h.data("error").isEmpty, "no read timeout while the client holds it back")
        #expect(h.drained() == [0])
        #expect(h.wake == h.now + .seconds(2), "its clock starts again when resumed")
    }

    // MARK: - The client leaves, the server shuts down

    @Test func theClientLeavingStopsEveryOpenUpstreamAndWritesNothing() throws {
        var h = SessionHarness(upstreams: 3)
        h.open()
        h.head(0); h.bytes(0, "0123456789A")  // finished by its prefix
        let written = h.wire.count
        h.clientGone()
        #expect(h.commands == [.start(0), .start(1), .start(2), .stop(1), .stop(2)])
        #expect(h.end == .clientGone)
        #expect(h.wire.count == written)
        #expect(h.bytes(1, "x") == .cancel)
        h.fireTimer()
        #expect(h.wire.count == written)
    }

    @Test func shutdownEndsOpenUpstreamsWithAShutdownErrorAndSaysSoInDone() throws {
        var h = SessionHarness(upstreams: 3)
        h.open()
        h.head(0); h.bytes(0, "abc"); h.ended(0)
        h.head(1); h.bytes(1, "ab")
        h.shutdown()
        #expect(h.commands.suffix(2) == [.stop(1), .stop(2)])
        let errors = try h.data("error")
        #expect(errors.map { $0.int("i") } == [1, 2])
        #expect(errors.allSatisfy { $0.string("kind") == "shutdown" })
        let done = try h.data("done")[0]
        #expect(done.int("ok") == 1 && done.int("failed") == 2 && done.bool("shutdown") == true)
        #expect(h.end == .done)
        h.shutdown()
        #expect(h.names.filter { $0 == "done" }.count == 1)
    }

    @Test func aStreamWithoutUpstreamsIsDoneAtOnce() throws {
        var h = SessionHarness(upstreams: 0)
        h.open()
        #expect(h.names == ["open", "done"])
        #expect(h.end == .done)
        #expect(h.wake == nil)
    }
}
