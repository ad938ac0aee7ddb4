using Grpc.Net.Client.Balancer;
using Lodestar.Discovery;
using Lodestar.Grpc.Internal;

namespace Lodestar.Grpc;

/// <summary>
/// A grpc-dotnet <see cref="ResolverFactory"/> for the <c>lodestar</c> scheme: a channel created for
/// <c>lodestar:///orders</c> (optionally <c>lodestar:///orders?source=kubernetes</c>) receives the endpoints of service
/// <c>orders</c> from Lodestar's endpoint cache, pushed as each new set is published.
/// </summary>
/// <remarks>
/// Source errors keep the last good addresses in force; the channel hears of an error only while the service has never
/// had an endpoint set (then calls fail with <c>UNAVAILABLE</c> naming the service and the problem). Each address
/// carries the endpoint's weight, priority, zone and labels under <see cref="LodestarBalancerAttributes"/>.
/// </remarks>
public sealed class LodestarResolverFactory : ResolverFactory
{
    /// <summary>The URI scheme, <c>lodestar</c>.</summary>
    public const string Scheme = "lodestar";

    private readonly IEndpointResolver _resolver;

    /// <summary>Initializes a new instance.</summary>
    /// <param name="resolver">Lodestar's endpoint resolver (registered by <c>AddLodestar()</c>).</param>
    public LodestarResolverFactory(IEndpointResolver resolver)
    {
        ArgumentNullException.ThrowIfNull(resolver);
        _resolver = resolver;
    }

    /// <inheritdoc/>
    public override string Name => Scheme;

    /// <inheritdoc/>
    public override Resolver Create(ResolverOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (service, source) = LodestarAddress.Parse(options.Address);
        return new LodestarResolver(_resolver, service, source, options.LoggerFactory);
    }
}
