using System.Collections.Concurrent;
using Lodestar.Discovery;
using Lodestar.Endpoints;

namespace Lodestar.Etcd.Tests.Infrastructure;

/// <summary>Records what a source publishes, for tests that drive a source directly.</summary>
internal sealed class RecordingObserver : IEndpointObserver
{
    private readonly ConcurrentQueue<IReadOnlyList<DiscoveredEndpoint>> _sets = new();
    private readonly ConcurrentQueue<Exception> _errors = new();
    private volatile IReadOnlyList<DiscoveredEndpoint>? _current;

    public IReadOnlyList<DiscoveredEndpoint>? Current => _current;

    public IReadOnlyCollection<IReadOnlyList<DiscoveredEndpoint>> Sets => _sets;

    public IReadOnlyCollection<Exception> Errors => _errors;

    public IReadOnlyList<string> Addresses => (_current ?? []).Select(e => e.Address).Order(StringComparer.Ordinal).ToList();

    public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints)
    {
        var copy = endpoints.ToList();
        _sets.Enqueue(copy);
        _current = copy;
    }

    public void OnError(Exception error) => _errors.Enqueue(error);
}
