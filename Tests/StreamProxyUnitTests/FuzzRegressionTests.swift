import Foundation
import Testing
import StreamTestSupport
@testable import StreamProxy

/// Inputs the fuzz targets (Fuzz/, `make fuzz`) found crashing, fixed, kept as unit tests.
@Suite struct FuzzRegressionTests {
    /// sse-response-parser: a chunk size of more hex digits than an Int holds wrapped negative,
    /// and the parser then read before its buffer (ASan: SEGV in `feed`). It now saturates: the
    /// chunk never ends and its data (here one event) is every byte that follows, however the
    /// bytes are cut. (24 digits of `c` wrap to 0xcccccccccccccccc, negative.)
    @Test func anOversizedChunkSizeSaturates() {
        let response = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            + Array("cccccccccccccccccccccccc;x\r\nevent: done\n\n".utf8)
        for cut in [response.count, 50, 7, 1] {
            var parser = SSEResponseParser()
            var events = 0
            var sawDone = false
            var ended = false
            var at = 0
            while at < response.count {
                let piece = response[at..<min(at + cut, response.count)]
                let found = piece.withUnsafeBytes { parser.feed($0) }
                events += found.events
                sawDone = sawDone || found.sawDone
                ended = ended || found.ended
                at += cut
            }
            #expect(parser.bodyBytes == "event: done\n\n".utf8.count, "cut \(cut)")
            #expect(events == 1 && sawDone, "cut \(cut)")
            #expect(!ended && !parser.isDone, "the chunk has not ended (cut \(cut))")
        }
    }
}


/// fanout-session inputs, replayed through the fuzz target's reading of its bytes.
@Suite struct FanOutSessionFuzzRegressionTests {
    /// The model's closing shutdown did not count an upstream still settling as uncertain, as
    /// its shutdown step does: a body of exactly the prefix, paused for the client, resumed,
    /// settling when the sequence ran out, ends truncated (not known to have ended).
    @Test func shutdownWhileSettling() throws {
        let input = "TcoyGCUwux0sYL4xIB5p/tqg7ui5mW0TLGC+MSAeaf7aoO7ouZl/XHwp3tYjey7ZHj9yH8sZcRdElNZJPJ1cNGC+MSAeaf7aoO7ouZl/XHwpmf2v5ZMlPNZUr0361xQnoK6z/ukjL4ryIR+e5JHFsRUL7LVWO/web5NCfsvI/ilV5c2ORtyO1LfCdk0qWk12dwb4XYaQAkrWvaNAG+nIy8zJMM2ORtyO1LfCdk0qWk12dwb4XYaQAkrWuvI+O/kt9fefK0k0r4f1UgtpuUsNF0SU1kk8nVw0YL4xIB5p/tqg7ui5mX9cfCmP8YRjsOSyuilwNHT/////8A=="
        try SessionModel.run(bytes: Array(try #require(Data(base64Encoded: input))))
    }
}
