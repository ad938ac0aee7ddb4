namespace Lodestar.LoadBalancing;

/// <summary>
/// A named load-balancing policy: builds an immutable <see cref="EndpointPicker"/> whenever a service's healthy set
/// changes. Register custom policies with <c>AddLoadBalancingPolicy</c>.
/// </summary>
public interface ILoadBalancingPolicy
{
    /// <summary>Gets the name used in options and configuration (see <see cref="LoadBalancingPolicies"/>).</summary>
    string Name { get; }

    /// <summary>
    /// Gets the per-request statistics the policy's pickers read, so that nothing else is updated per request.
    /// Default <see cref="EndpointStatistics.None"/>: in-flight counts and totals only.
    /// </summary>
    EndpointStatistics Statistics => EndpointStatistics.None;

    /// <summary>Builds a picker over the given endpoints. Called off the request path.</summary>
    /// <param name="context">The service and the endpoints to balance over (two or more; zero and one are short-circuited).</param>
    /// <returns>The picker.</returns>
    EndpointPicker CreatePicker(LoadBalancingContext context);
}
