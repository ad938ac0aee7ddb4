using Grpc.Net.Client.Balancer;

namespace Lodestar.Grpc;

/// <summary>
/// The attribute keys the <c>lodestar</c> resolver sets on each <see cref="BalancerAddress"/>: the endpoint's metadata
/// from the registry, and the service and source it resolved, so that any balancer (Lodestar's or a custom one) can read
/// them. The service and source are also on the <see cref="ResolverResult.Attributes"/>; grpc-dotnet does not pass
/// those on to balancers, which is why each address carries them too.
/// </summary>
public static class LodestarBalancerAttributes
{
    /// <summary>The endpoint's relative weight (1 to <see cref="Endpoints.DiscoveredEndpoint.MaxWeight"/>).</summary>
    public static readonly BalancerAttributesKey<int> Weight = new("lodestar.weight");

    /// <summary>The endpoint's priority level (0 is the highest).</summary>
    public static readonly BalancerAttributesKey<int> Priority = new("lodestar.priority");

    /// <summary>The endpoint's zone; absent when the registry names none.</summary>
    public static readonly BalancerAttributesKey<string> Zone = new("lodestar.zone");

    /// <summary>The endpoint's labels (registry metadata, tags).</summary>
    public static readonly BalancerAttributesKey<IReadOnlyDictionary<string, string>> Labels = new("lodestar.labels");

    /// <summary>The endpoint as Lodestar describes it.</summary>
    public static readonly BalancerAttributesKey<Endpoints.DiscoveredEndpoint> Endpoint = new("lodestar.endpoint");

    /// <summary>The logical service name the channel resolves.</summary>
    public static readonly BalancerAttributesKey<string> Service = new("lodestar.service");

    /// <summary>The endpoint source named in the channel address (<c>?source=</c>); absent for the default.</summary>
    public static readonly BalancerAttributesKey<string> Source = new("lodestar.source");
}
