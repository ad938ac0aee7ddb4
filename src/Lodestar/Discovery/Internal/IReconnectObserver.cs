namespace Lodestar.Discovery.Internal;

/// <summary>
/// Implemented by the endpoint watcher: the discovery loop of <see cref="ListWatchEndpointSource{TCursor}"/> tells it
/// each time it lists or watches again after a stream ended, a cursor expired or a failure, for the
/// <c>lodestar.discovery.reconnects</c> metric.
/// </summary>
internal interface IReconnectObserver
{
    void OnReconnect();
}
