using System.Diagnostics.CodeAnalysis;
using Lodestar.Discovery;
using Lodestar.Endpoints;

namespace Lodestar.Testing;

/// <summary>
/// An endpoint source named <c>push</c> that serves every service and publishes exactly what the test pushes: endpoint
/// sets and errors, in order, from the test's thread.
/// </summary>
public sealed class PushSourceProvider : IEndpointSourceProvider
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, TaskCompletionSource<IEndpointObserver>> _observers = new(StringComparer.OrdinalIgnoreCase);

    /// <inheritdoc/>
    public string Name => "push";

    /// <inheritdoc/>
    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        source = new PushSource(Observer(serviceName));
        return true;
    }

    /// <summary>Publishes a complete endpoint set for a service once its source runs.</summary>
    public async Task PublishAsync(string serviceName, params DiscoveredEndpoint[] endpoints)
        => (await Observer(serviceName).Task.WaitAsync(TimeSpan.FromSeconds(10))).OnEndpoints(endpoints);

    /// <summary>Reports an error for a service once its source runs; the last set stays in force.</summary>
    public async Task FailAsync(string serviceName, Exception error)
        => (await Observer(serviceName).Task.WaitAsync(TimeSpan.FromSeconds(10))).OnError(error);

    private TaskCompletionSource<IEndpointObserver> Observer(string serviceName)
    {
        lock (_gate)
        {
            if (!_observers.TryGetValue(serviceName, out var observer))
            {
                _observers[serviceName] = observer = new TaskCompletionSource<IEndpointObserver>(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            return observer;
        }
    }

    private sealed class PushSource(TaskCompletionSource<IEndpointObserver> observer) : IEndpointSource
    {
        public async Task RunAsync(IEndpointObserver target, CancellationToken cancellationToken)
        {
            observer.TrySetResult(target);
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
    }
}
