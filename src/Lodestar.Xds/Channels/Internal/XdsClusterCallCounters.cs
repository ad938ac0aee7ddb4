using System.Collections.Concurrent;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// The calls in flight per cluster over every <c>xds:///</c> channel of the process, for the cluster's
/// <c>circuit_breakers</c> <c>max_requests</c> (gRFC A32: one counter per cluster, shared by all channels), and the
/// retries in flight per cluster for its <c>max_retries</c>.
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
        private long _retries;

        public long InFlight => Interlocked.Read(ref _inFlight);

        /// <summary>Gets the retries in flight.</summary>
        public long Retries => Interlocked.Read(ref _retries);

        public void Enter() => Interlocked.Increment(ref _inFlight);

        public void Exit() => Interlocked.Decrement(ref _inFlight);

        /// <summary>Counts one more retry in flight unless <paramref name="max"/> are already.</summary>
        public bool TryEnterRetry(long max)
        {
            var current = Interlocked.Read(ref _retries);
            while (current < max)
            {
                var seen = Interlocked.CompareExchange(ref _retries, current + 1, current);
                if (seen == current)
                {
                    return true;
                }

                current = seen;
            }

            return false;
        }

        public void ExitRetry() => Interlocked.Decrement(ref _retries);
    }
}
