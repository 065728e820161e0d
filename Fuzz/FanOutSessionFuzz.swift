import StreamTestSupport

/// The fan-out session fed event sequences read from the input, through the same model as
/// `FanOutSessionModelTests` (the transfer layer played as libcurl plays it), every invariant
/// checked after every step: well-formed SSE, ids in write order, each upstream ending exactly
/// once, `done` last and once, no upstream forwarding more than its prefix, `truncated` exact
/// (heads with charsets and content codings, `settle` verdicts played as the transfer layer does).
///
/// The input is read as choices: the number of upstreams, the prefix, the order, each body's
/// bytes, then one event per few bytes until the input runs out.
enum FanOutSessionFuzz {
    static func run(_ data: UnsafeRawBufferPointer) {
        do {
            try SessionModel.run(bytes: Array(data))
        } catch {
            check(false, error.description)
        }
    }
}
