import ArgumentParser
import Foundation
import Glibc

/// `stream-proxy`: the proxy (`serve`, the default), the test origin, and the load harness.
public struct StreamProxyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stream-proxy",
        abstract: "A streaming fan-out proxy: one GET, many upstreams, a bounded prefix of each as Server-Sent Events.",
        version: StreamProxyVersion.string,
        subcommands: [ServeCommand.self, OriginCommand.self, BenchCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    public init() {}

    /// Parses the command line and runs it. Bad flags and bad configuration print one line to
    /// stderr and exit with status 2, before anything starts.
    public static func runFromCommandLine() -> Never {
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            fail(message(for: error))
        }
        do {
            var c = command
            try c.run()
            Glibc.exit(0)
        } catch let error as ConfigError {
            fail(error.description)
        } catch let error as AddressInUse {
            fail(error.description)
        } catch {
            // Help and version requests surface here as errors with a success exit code.
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            FileHandle.standardError.write(Data("stream-proxy: \(error)\n".utf8))
            Glibc.exit(1)
        }
    }

    private static func fail(_ line: String) -> Never {
        let oneLine = line.split(whereSeparator: \.isNewline).first.map(String.init) ?? line
        FileHandle.standardError.write(Data("stream-proxy: \(oneLine)\n".utf8))
        Glibc.exit(2)
    }
}
