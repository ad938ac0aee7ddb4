namespace Lodestar.Discovery;

/// <summary>
/// Implemented by the observer Lodestar hands to every <see cref="IEndpointSource"/>: a source that keeps its own
/// connection to its registry (rather than deriving from <see cref="ListWatchEndpointSource{TCursor}"/>, which reports
/// reconnects itself) casts the observer to this interface and calls <see cref="OnReconnect"/> each time it opens its
/// stream again, so that its reconnects count in the <c>lodestar.discovery.reconnects</c> metric.
/// </summary>
public interface IEndpointReconnectObserver
{
    /// <summary>Counts one reconnect of the source's stream: it ended or failed and the source opens a new one.</summary>
    void OnReconnect();
}
