import Glibc

/// A libevent or socket call that failed, named with the call and, where the C library set one,
/// the errno text.
public struct EventError: Error, CustomStringConvertible, Sendable {
    /// The C function that failed, e.g. `"event_base_new"`.
    public let call: String
    /// `errno` captured right after the failure (0 where the call does not set it).
    public let errno: Int32

    public init(_ call: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String {
        guard errno != 0 else { return "\(call) failed" }
        return "\(call) failed: \(String(cString: strerror(errno)))"
    }
}
