using Lodestar.Endpoints;

namespace Lodestar.Xds.Endpoints;

/// <summary>
/// A validated <c>ClusterLoadAssignment</c> (EDS resource): the endpoints of one cluster grouped by locality and
/// priority, the routable ones flattened into Lodestar endpoints, and the drop overloads.
/// </summary>
/// <remarks>
/// Immutable. <see cref="RoutableEndpoints"/> holds the endpoints whose health status is <c>HEALTHY</c> or
/// <c>UNKNOWN</c>, as gRPC's xDS client routes to; the others stay visible in <see cref="Localities"/>.
/// </remarks>
internal sealed class XdsEndpointAssignment
{
    public XdsEndpointAssignment(string clusterName, IReadOnlyList<XdsLocality> localities, IReadOnlyList<XdsDropOverload> dropOverloads, IReadOnlyList<DiscoveredEndpoint> routableEndpoints)
    {
        ClusterName = clusterName;
        Localities = localities;
        DropOverloads = dropOverloads;
        RoutableEndpoints = routableEndpoints;
    }

    /// <summary>Gets the cluster (or EDS service) name the assignment is for.</summary>
    public string ClusterName { get; }

    /// <summary>Gets the localities with a non-zero weight, in the order received.</summary>
    public IReadOnlyList<XdsLocality> Localities { get; }

    /// <summary>Gets the drop overloads, applied one after the other to the traffic of the cluster.</summary>
    public IReadOnlyList<XdsDropOverload> DropOverloads { get; }

    /// <summary>Gets the endpoints traffic may go to (health <c>HEALTHY</c> or <c>UNKNOWN</c>), as Lodestar endpoints.</summary>
    public IReadOnlyList<DiscoveredEndpoint> RoutableEndpoints { get; }
}

/// <summary>One locality of a cluster at one priority.</summary>
/// <param name="Region">The region, or empty.</param>
/// <param name="Zone">The zone, or empty.</param>
/// <param name="SubZone">The sub-zone, or empty.</param>
/// <param name="Weight">The locality's load-balancing weight, at least 1.</param>
/// <param name="Priority">The priority, 0 being the most preferred.</param>
/// <param name="Endpoints">Every endpoint of the locality, routable or not.</param>
internal sealed record XdsLocality(string Region, string Zone, string SubZone, uint Weight, int Priority, IReadOnlyList<XdsEndpoint> Endpoints);

/// <summary>One endpoint as the control plane described it.</summary>
/// <param name="Endpoint">The Lodestar endpoint (weight, priority, zone and metadata already mapped).</param>
/// <param name="Health">The health status name (<c>HEALTHY</c>, <c>UNKNOWN</c>, <c>DRAINING</c>, ...).</param>
/// <param name="LoadBalancingWeight">The endpoint's own weight, before the locality weight is applied.</param>
/// <param name="IsRoutable">Whether traffic may go to it.</param>
internal sealed record XdsEndpoint(DiscoveredEndpoint Endpoint, string Health, uint LoadBalancingWeight, bool IsRoutable);

/// <summary>A share of the cluster's traffic the client drops without sending it.</summary>
/// <param name="Category">The category reported for dropped requests.</param>
/// <param name="Fraction">The share, 0 to 1.</param>
internal sealed record XdsDropOverload(string Category, double Fraction);
