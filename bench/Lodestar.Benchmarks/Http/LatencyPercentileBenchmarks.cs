using BenchmarkDotNet.Attributes;
using Lodestar.Resilience.Hedging.Internal;

namespace Lodestar.Benchmarks.Http;

/// <summary>
/// One recomputation of the hedging delay's percentile over a full ring of 512 latencies, which a hedging client with
/// <c>DelayPercentile</c> does once every 64 requests: a high percentile (p98, p99: the few largest samples kept in a
/// heap) against the median (a sorted copy of the ring).
/// </summary>
[MemoryDiagnoser]
public class LatencyPercentileBenchmarks
{
    private LatencyTracker _tracker = null!;
    private int _next;

    [Params(0.5, 0.98, 0.99)]
    public double Percentile { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _tracker = new LatencyTracker(Percentile);
        var random = new Random(7);
        for (var i = 0; i < 512; i++)
        {
            _tracker.Record(TimeSpan.FromTicks(1_000 + (random.Next(0, 400) * 25)));
        }
    }

    /// <summary>64 samples recorded, then the estimate, which those 64 make due: one recomputation per invocation.</summary>
    [Benchmark(OperationsPerInvoke = 64)]
    public TimeSpan SixtyFourRequests()
    {
        for (var i = 0; i < 64; i++)
        {
            _tracker.Record(TimeSpan.FromTicks(1_000 + ((_next++ * 7919) % 10_000)));
        }

        return _tracker.GetPercentile(TimeSpan.Zero);
    }
}
