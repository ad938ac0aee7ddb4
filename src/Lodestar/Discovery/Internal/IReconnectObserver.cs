namespace Lodestar.Discovery.Internal;

/// <summary>
/// Implemented by the endpoint watcher: the discovery loop of <see cref="ListWatchEndpointSource{TCursor}"/> tells it
/// each time it lists or watches again after a stream ended, a cursor expired or a failure (for the
/// <c>lodestar.discovery.reconnects</c> metric), each failure of a list or watch (an outage of the registry, told apart
/// from a skipped entry), and each sign of progress (to notice the end of an outage).
/// </summary>
/// <remarks>Calls come from the source's loop, one at a time.</remarks>
internal interface IReconnectObserver : IEndpointReconnectObserver
{
    /// <summary>A list or watch failed; replaces <see cref="IEndpointObserver.OnError"/> for that failure.</summary>
    /// <param name="error">The failure, as <see cref="ListWatchEndpointSource{TCursor}.DescribeError"/> describes it.</param>
    void OnFailure(Exception error);

    /// <summary>The source published, advanced its cursor or was kept alive.</summary>
    void OnProgress();
}
