namespace Lodestar.LoadBalancing;

/// <summary>
/// An immutable picker built by a policy from one set of healthy endpoints. <see cref="Pick"/> is called once per
/// request attempt, concurrently, and must be lock-free and allocation-free.
/// </summary>
public abstract class EndpointPicker
{
    /// <summary>Chooses the endpoint for one request attempt.</summary>
    /// <param name="context">The request, the endpoints already tried for it and an optional precomputed hash.</param>
    /// <returns>The chosen endpoint, one of those the picker was built from.</returns>
    public abstract EndpointState Pick(in PickContext context);
}
