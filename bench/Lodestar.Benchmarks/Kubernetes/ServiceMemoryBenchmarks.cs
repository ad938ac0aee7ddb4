using BenchmarkDotNet.Attributes;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Discovery.Internal;

namespace Lodestar.Benchmarks.Kubernetes;

/// <summary>
/// Memory of a service with 10,000 endpoints in 100 slices: bytes allocated to list and merge it (MemoryDiagnoser),
/// and bytes the merged state keeps alive (printed by the setup, measured with a full GC before and after).
/// </summary>
[MemoryDiagnoser]
public class ServiceMemoryBenchmarks
{
    private EndpointSlice[] _service = [];

    [GlobalSetup]
    public void Setup()
    {
        _service = Enumerable.Range(0, 100).Select(i => SliceData.Slice(i, 100)).ToArray();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var merger = new EndpointSliceMerger(null);
        merger.ReplaceAll(_service, null);
        var count = merger.Current.Count;
        var after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(merger);
        Console.WriteLine($"// Retained by the merged state of {count} endpoints in 100 slices: {(after - before) / 1024.0 / 1024.0:0.00} MiB ({(after - before) / count} bytes per endpoint)");
    }

    /// <summary>Merging a freshly listed service of 10,000 endpoints.</summary>
    [Benchmark]
    public int MergeTenThousandEndpoints()
    {
        var merger = new EndpointSliceMerger(null);
        merger.ReplaceAll(_service, null);
        return merger.Current.Count;
    }
}
