/// What a ``PoolStateMachine`` asks its shell to do, in order, once libcurl's calls have returned.
enum PoolAction: Equatable {
    /// Put the transfer on the multi handle. With `lease` it holds a new lease, under which
    /// libcurl may open a connection; without, it is expected to reuse an idle one.
    case start(TransferID, lease: Bool)
    /// The transfer waited `poolTimeout` for a slot: fail it with kind `pool`.
    case timedOut(TransferID)
    /// Shut down one idle connection to `host`, then report ``PoolStateMachine/socketGone(host:_:)``,
    /// or ``PoolStateMachine/noIdleConnection(host:_:)`` if there was none.
    case giveUpIdle(host: Int)
    /// Ask worker `n` to look at its pool (``PoolStateMachine/poked(_:)`` there).
    case poke(worker: Int)
    /// Call ``PoolStateMachine/handover(_:)`` after ``PoolStateMachine/handoverDelay``.
    case scheduleHandover
}
