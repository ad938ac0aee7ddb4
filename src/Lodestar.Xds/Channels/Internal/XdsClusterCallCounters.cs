using System.Collections.Concurrent;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// The calls in flight per cluster over every <c>xds:///</c> channel of the process, for the cluster's
/// <c>circuit_breakers</c> <c>max_requests</c> (gRFC A32: one counter per cluster, shared by all channels).
/// </summary>
internal sealed class XdsClusterCallCounters
{
    private readonly ConcurrentDictionary<string, Counter> _counters = new(StringComparer.Ordinal);

    /// <summary>Gets the counter of a cluster.</summary>
    public Counter For(string cluster) => _counters.GetOrAdd(cluster, static _ => new Counter());

    /// <summary>One cluster's calls in flight.</summary>
    internal sealed class Counter
    {
        private long _inFlight;

        public long InFlight => Interlocked.Read(ref _inFlight);

        public void Enter() => Interlocked.Increment(ref _inFlight);

        public void Exit() => Interlocked.Decrement(ref _inFlight);
    }
}
