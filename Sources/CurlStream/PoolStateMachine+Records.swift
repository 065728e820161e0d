/// What the pool records of each transfer: its place in the queues while it waits, and what it
/// holds while it runs.
extension PoolStateMachine {
    struct Entry {
        let id: TransferID
        let sequence: UInt64
    }

    struct Waiter {
        let host: Int
        let sequence: UInt64
        let deadline: Instant
        let needsNewConnection: Bool
    }

    struct Running {
        let host: Int
        /// Holds a lease that no socket has taken yet.
        var reserved: Bool
        /// Took a lease on a multiplexed host for a new connection, whose streams are not
        /// counted until this transfer's response shows the connection up.
        var opensConnection = false
    }
}
