using Grpc.Net.Client.Balancer;
using Lodestar.Discovery;
using Lodestar.Endpoints;

namespace Lodestar.Grpc.Tests.Infrastructure;

/// <summary>
/// An <see cref="IEndpointResolver"/> for a channel's <c>lodestar</c> resolver that, once armed, hands the next endpoint
/// set to the channel and then holds the watcher's delivery thread until released: subscribers notified after the
/// channel (the service's health stage and balancer) have not seen that set while the test acts.
/// </summary>
internal sealed class HeldDeliveryResolver(IEndpointResolver inner) : IEndpointResolver
{
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ManualResetEventSlim _release = new();
    private int _armed;

    /// <summary>Makes the next delivered set the one that is held.</summary>
    public void Arm() => Volatile.Write(ref _armed, 1);

    /// <summary>Completes when the channel has the armed set and the delivery thread is held.</summary>
    public Task Held => _held.Task;

    /// <summary>Lets the held delivery go on to the other subscribers.</summary>
    public void Release() => _release.Set();

    public ValueTask<EndpointSet> GetEndpointsAsync(string serviceName, string? sourceName = null, CancellationToken cancellationToken = default)
        => inner.GetEndpointsAsync(serviceName, sourceName, cancellationToken);

    public IDisposable Watch(string serviceName, string? sourceName, Action<EndpointSet> onChange, Action<Exception>? onError = null)
        => inner.Watch(serviceName, sourceName, set =>
        {
            onChange(set);
            if (Interlocked.Exchange(ref _armed, 0) == 1)
            {
                _held.TrySetResult();

                // Bounded: a test that fails before releasing does not hold the watcher for ever.
                _release.Wait(TimeSpan.FromSeconds(20));
            }
        }, onError);

    /// <summary>A service provider for a channel: the <c>lodestar</c> resolver reads through <paramref name="resolver"/>, everything else comes from <paramref name="services"/>.</summary>
    public static IServiceProvider ForChannel(IServiceProvider services, IEndpointResolver resolver) => new ChannelServices(services, [new LodestarResolverFactory(resolver)]);

    private sealed class ChannelServices(IServiceProvider inner, ResolverFactory[] resolvers) : IServiceProvider
    {
        public object? GetService(Type serviceType)
            => serviceType == typeof(IEnumerable<ResolverFactory>) ? resolvers : inner.GetService(serviceType);
    }
}
