namespace Lodestar.Discovery;

/// <summary>
/// Follows one service in one registry and publishes its complete endpoint snapshots.
/// </summary>
/// <remarks>
/// A source owns its registry's protocol (list then watch, blocking queries, TTL refresh). It publishes every change
/// as a complete snapshot through <see cref="IEndpointObserver.OnEndpoints"/> and reports failures through
/// <see cref="IEndpointObserver.OnError"/>; it never throws into its caller, and after an error it keeps trying with
/// backoff. The last snapshot it published stays in force until it publishes another.
/// </remarks>
public interface IEndpointSource
{
    /// <summary>Runs the watch loop until <paramref name="cancellationToken"/> is cancelled.</summary>
    /// <param name="observer">Receives snapshots and errors. Calls are never concurrent for one source.</param>
    /// <param name="cancellationToken">Stops the loop.</param>
    /// <returns>A task that completes when the loop has stopped after cancellation.</returns>
    Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken);
}
