namespace Lodestar.LoadBalancing;

/// <summary>
/// Per-request statistics a policy needs beyond each endpoint's in-flight count and totals, which are always kept.
/// A health stage updates only what one of its policies asks for (<see cref="ILoadBalancingPolicy.Statistics"/>).
/// </summary>
[Flags]
public enum EndpointStatistics
{
    /// <summary>Nothing beyond in-flight counts and totals.</summary>
    None = 0,

    /// <summary>The peak-EWMA latency estimate of each endpoint (<see cref="EndpointState.LatencyEstimate"/>).</summary>
    Latency = 1,

    /// <summary>The number of requests in flight to all endpoints of the service together (bounded-load hashing).</summary>
    ServiceLoad = 2,
}
