using Grpc.Net.Client.Balancer;
using Lodestar.Discovery;
using Lodestar.Xds.Client.Internal;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// The grpc-dotnet <see cref="ResolverFactory"/> for gRPC's <c>xds</c> scheme: a channel created for
/// <c>xds:///orders.default.svc.cluster.local:8080</c> follows that listener's routes to their clusters' endpoints.
/// Registered by <c>AddXds()</c>.
/// </summary>
internal sealed class XdsResolverFactory : ResolverFactory
{
    /// <summary>The URI scheme, <c>xds</c>.</summary>
    public const string Scheme = "xds";

    private readonly XdsClientProvider _clients;
    private readonly IEndpointResolver _endpoints;

    public XdsResolverFactory(XdsClientProvider clients, IEndpointResolver endpoints)
    {
        _clients = clients;
        _endpoints = endpoints;
    }

    public override string Name => Scheme;

    public override Resolver Create(ResolverOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new XdsResolver(_clients, _endpoints, ParseListener(options.Address), options.LoggerFactory);
    }

    /// <summary>Reads the listener name of an <c>xds:///&lt;listener&gt;</c> address.</summary>
    /// <exception cref="ArgumentException">The address names no listener, or names an authority (federation is not supported).</exception>
    internal static string ParseListener(Uri address)
    {
        if (!string.IsNullOrEmpty(address.Host))
        {
            throw new ArgumentException(
                $"The gRPC channel address '{address}' names the xDS authority '{address.Host}'; xDS federation is not supported: use xds:///<listener>.", nameof(address));
        }

        var listener = Uri.UnescapeDataString(address.AbsolutePath.TrimStart('/'));
        if (listener.Length == 0)
        {
            throw new ArgumentException($"The gRPC channel address '{address}' names no listener: use xds:///<listener>, for example xds:///orders.default.svc.cluster.local:8080.", nameof(address));
        }

        return listener;
    }
}
