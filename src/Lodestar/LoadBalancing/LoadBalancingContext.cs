namespace Lodestar.LoadBalancing;

/// <summary>What a policy builds a picker from.</summary>
public sealed class LoadBalancingContext
{
    /// <summary>Initializes a new instance.</summary>
    /// <param name="serviceName">The logical service name.</param>
    /// <param name="endpoints">The endpoints to balance over.</param>
    /// <param name="timeProvider">The clock for time-dependent policies.</param>
    public LoadBalancingContext(string serviceName, IReadOnlyList<EndpointState> endpoints, TimeProvider timeProvider)
        : this(serviceName, endpoints, timeProvider, s_defaultOptions)
    {
    }

    /// <summary>Initializes a new instance with the service's load-balancing options.</summary>
    /// <param name="serviceName">The logical service name.</param>
    /// <param name="endpoints">The endpoints to balance over.</param>
    /// <param name="timeProvider">The clock for time-dependent policies.</param>
    /// <param name="options">The service's load-balancing options.</param>
    public LoadBalancingContext(string serviceName, IReadOnlyList<EndpointState> endpoints, TimeProvider timeProvider, LoadBalancingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ServiceName = serviceName;
        Endpoints = endpoints;
        TimeProvider = timeProvider;
        Options = options;
    }

    private static readonly LoadBalancingOptions s_defaultOptions = new();

    /// <summary>Gets the logical service name.</summary>
    public string ServiceName { get; }

    /// <summary>Gets the endpoints to balance over; the picker may keep this list.</summary>
    public IReadOnlyList<EndpointState> Endpoints { get; }

    /// <summary>Gets the clock.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>Gets the service's load-balancing options (policy tuning, hash key, slow start). Do not modify.</summary>
    public LoadBalancingOptions Options { get; }
}
