/// `serve` could not have its port: another socket holds it. Printed as one line, exit 2, like a
/// configuration error (the `listen` setting cannot be used as it is).
///
/// Without `reusePort` the first worker claims the port alone (``EventLoop/HTTPServerOptions/claimPort``),
/// so a second instance on a served port stops here instead of silently sharing it and serving
/// its own, possibly stale, configuration. With `reusePort` the overlap is asked for (a restart
/// on the same port), and only a socket that does not allow sharing refuses it.
public struct AddressInUse: Error, CustomStringConvertible {
    public let host: String
    public let port: UInt16
    public let reusePort: Bool

    public var description: String {
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if reusePort {
            return "address in use: port \(port) (\(address)) is held by a socket that does not share it"
        }
        return "address in use: port \(port) (\(address)) is already served, by another stream-proxy or another program; "
            + "stop it, or pass --reuse-port (config reusePort) to share the port on purpose, as a restart does"
    }
}
