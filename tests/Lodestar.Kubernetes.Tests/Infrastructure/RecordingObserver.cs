using Lodestar.Discovery;
using Lodestar.Endpoints;

namespace Lodestar.Kubernetes.Tests.Infrastructure;

/// <summary>Records every snapshot and error a source publishes.</summary>
internal sealed class RecordingObserver : IEndpointObserver
{
    private readonly Lock _gate = new();
    private readonly List<DiscoveredEndpoint[]> _snapshots = [];
    private readonly List<Exception> _errors = [];

    public IReadOnlyList<DiscoveredEndpoint>? Latest
    {
        get
        {
            lock (_gate)
            {
                return _snapshots.Count == 0 ? null : _snapshots[^1];
            }
        }
    }

    public int SnapshotCount
    {
        get
        {
            lock (_gate)
            {
                return _snapshots.Count;
            }
        }
    }

    public IReadOnlyList<Exception> Errors
    {
        get
        {
            lock (_gate)
            {
                return _errors.ToList();
            }
        }
    }

    /// <summary>Gets the latest snapshot's addresses, sorted, or an empty array before the first.</summary>
    public string[] Addresses => Latest?.Select(e => e.Address).Order(StringComparer.Ordinal).ToArray() ?? [];

    public bool Has(params string[] addresses) => Addresses.SequenceEqual(addresses.Order(StringComparer.Ordinal));

    public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints)
    {
        lock (_gate)
        {
            _snapshots.Add(endpoints.ToArray());
        }
    }

    public void OnError(Exception error)
    {
        lock (_gate)
        {
            _errors.Add(error);
        }
    }
}
