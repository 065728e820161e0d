/// The order in which upstreams' events reach the client.
public enum StreamOrder: String, Sendable {
    /// Events interleave as bytes arrive.
    case completion
    /// Upstream 0's events first, then 1's, ...; later upstreams' events are held (within their
    /// bounded prefix) until their turn.
    case sequential
}

/// One validated `GET /stream/<route>` request.
struct StreamRequest {
    let route: Route
    let prefix: Int
    let order: StreamOrder
}

/// Settings every stream of a worker shares.
struct StreamSettings {
    /// Bytes queued for a client before its upstreams are paused.
    let streamBuffer: Int
    /// Seconds of silence before a `: ping` comment.
    let heartbeat: Double
    /// Seconds an upstream may send nothing (once it has its connection slot).
    let readTimeout: Double
    /// The `retry:` hint sent first, in milliseconds.
    let retryMilliseconds: Int
}
