using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Lodestar.Kubernetes.Api.Internal;

namespace Lodestar.Benchmarks.Kubernetes;

/// <summary>Cost of decoding one watch event line (a MODIFIED EndpointSlice) into the source-generated models.</summary>
[MemoryDiagnoser]
public class WatchEventDecodingBenchmarks
{
    private byte[] _line = [];
    private byte[] _stream = [];

    [Params(1, 100)]
    public int EndpointsPerSlice { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var watchEvent = new WatchEvent { Type = "MODIFIED", Object = SliceData.Slice(1, EndpointsPerSlice) };
        _line = JsonSerializer.SerializeToUtf8Bytes(watchEvent, KubernetesJsonContext.Default.WatchEvent);
        _stream = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(Encoding.UTF8.GetString(_line) + "\n", 100)));
    }

    /// <summary>JSON decoding of one line.</summary>
    [Benchmark(Baseline = true)]
    public int DecodeLine() => JsonSerializer.Deserialize(_line, KubernetesJsonContext.Default.WatchEvent)!.Object!.Endpoints!.Count;

    /// <summary>Line splitting plus decoding, per event, over a stream of 100 events read in 4 KiB chunks.</summary>
    [Benchmark(OperationsPerInvoke = 100)]
    public async Task<int> ReadAndDecodeFromStream()
    {
        using var reader = new WatchLineReader(new ChunkedStream(_stream, 4096));
        var count = 0;
        while (true)
        {
            var (ok, line, _) = await reader.ReadLineAsync(default);
            if (!ok)
            {
                return count;
            }

            count += JsonSerializer.Deserialize(line.Span, KubernetesJsonContext.Default.WatchEvent)!.Object!.Endpoints!.Count;
        }
    }

    private sealed class ChunkedStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => base.ReadAsync(buffer[..Math.Min(chunk, buffer.Length)], cancellationToken);
    }
}
