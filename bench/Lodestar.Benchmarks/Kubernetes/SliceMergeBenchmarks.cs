using BenchmarkDotNet.Attributes;
using Lodestar.Endpoints;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Discovery.Internal;

namespace Lodestar.Benchmarks.Kubernetes;

/// <summary>
/// Cost of applying one EndpointSlice change to a service of <see cref="Slices"/> × 100 endpoints, against rebuilding
/// the whole service; the merged snapshot handed to the endpoint cache is measured separately.
/// </summary>
[MemoryDiagnoser]
public class SliceMergeBenchmarks
{
    private const int EndpointsPerSlice = 100;
    private EndpointSlice[] _service = [];
    private EndpointSlice _even = null!;
    private EndpointSlice _odd = null!;
    private EndpointSliceMerger _merger = null!;
    private bool _flip;

    [Params(10, 100)]
    public int Slices { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _service = Enumerable.Range(0, Slices).Select(i => SliceData.Slice(i, EndpointsPerSlice)).ToArray();
        _even = SliceData.Slice(Slices / 2, EndpointsPerSlice, generation: 0);
        _odd = SliceData.Slice(Slices / 2, EndpointsPerSlice, generation: 1);
        _merger = new EndpointSliceMerger(null);
        _merger.ReplaceAll(_service, null);
        _ = _merger.Current;
    }

    /// <summary>One slice changes (one endpoint flips readiness): only that slice's contribution is recomputed.</summary>
    [Benchmark(Baseline = true)]
    public bool ApplyOneSliceChange()
    {
        _flip = !_flip;
        return _merger.Apply(_flip ? _odd : _even, null);
    }

    /// <summary>The same change plus materialising the merged list the endpoint cache receives (O(service), once per change).</summary>
    [Benchmark]
    public IReadOnlyList<DiscoveredEndpoint> ApplyOneSliceChangeAndSnapshot()
    {
        _flip = !_flip;
        _merger.Apply(_flip ? _odd : _even, null);
        return _merger.Current;
    }

    /// <summary>What a non-incremental merge would pay per change: the whole service rebuilt.</summary>
    [Benchmark]
    public IReadOnlyList<DiscoveredEndpoint> RebuildWholeService()
    {
        var merger = new EndpointSliceMerger(null);
        merger.ReplaceAll(_service, null);
        return merger.Current;
    }
}
