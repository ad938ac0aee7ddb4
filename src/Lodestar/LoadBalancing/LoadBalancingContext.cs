namespace Lodestar.LoadBalancing;

/// <summary>What a policy builds a picker from.</summary>
public sealed class LoadBalancingContext
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="serviceName">The logical service name.</param>
    /// <param name="endpoints">The endpoints to balance over.</param>
    /// <param name="timeProvider">The clock for time-dependent policies.</param>
    public LoadBalancingContext(string serviceName, IReadOnlyList<EndpointState> endpoints, TimeProvider timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ServiceName = serviceName;
        Endpoints = endpoints;
        TimeProvider = timeProvider;
    }

    /// <summary>Gets the logical service name.</summary>
    public string ServiceName { get; }

    /// <summary>Gets the endpoints to balance over; the picker may keep this list.</summary>
    public IReadOnlyList<EndpointState> Endpoints { get; }

    /// <summary>Gets the clock.</summary>
    public TimeProvider TimeProvider { get; }
}
