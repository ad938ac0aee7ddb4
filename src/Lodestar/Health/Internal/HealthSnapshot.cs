using Lodestar.LoadBalancing;

namespace Lodestar.Health.Internal;

/// <summary>
/// One immutable view of a health stage: the endpoints that may take traffic (weight above 0) and which of them are
/// healthy when the view was taken. A stage publishes a new snapshot with one reference write after every change of
/// its endpoint set or of an endpoint's health; balancers build their pickers from it.
/// </summary>
internal sealed class HealthSnapshot
{
    private readonly HashSet<EndpointState> _healthy;

    public HealthSnapshot(long version, long setVersion, EndpointState[] endpoints)
    {
        Version = version;
        SetVersion = setVersion;
        Endpoints = endpoints;
        _healthy = new HashSet<EndpointState>(endpoints.Length, ReferenceEqualityComparer.Instance);
        foreach (var endpoint in endpoints)
        {
            if (endpoint.IsHealthy)
            {
                _healthy.Add(endpoint);
            }
        }
    }

    public static HealthSnapshot Empty { get; } = new(0, 0, []);

    /// <summary>Gets the snapshot's version, growing with every publication of the stage.</summary>
    public long Version { get; }

    /// <summary>Gets the version of the endpoint set the snapshot reflects; 0 before the first set.</summary>
    public long SetVersion { get; }

    /// <summary>Gets every endpoint that may take traffic (weight above 0), healthy or not.</summary>
    public EndpointState[] Endpoints { get; }

    /// <summary>Gets the number of healthy endpoints.</summary>
    public int HealthyCount => _healthy.Count;

    /// <summary>Gets whether <paramref name="endpoint"/> was healthy when the snapshot was taken.</summary>
    public bool IsHealthy(EndpointState endpoint) => _healthy.Contains(endpoint);
}
