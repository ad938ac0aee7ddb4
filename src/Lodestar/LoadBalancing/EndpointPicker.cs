namespace Lodestar.LoadBalancing;

/// <summary>
/// An immutable picker built by a policy from one set of healthy endpoints. <see cref="Pick"/> is called once per
/// request attempt, concurrently, and must be lock-free and allocation-free.
/// </summary>
public abstract class EndpointPicker
{
    /// <summary>Chooses the endpoint for one request attempt.</summary>
    /// <param name="request">The outgoing request (for hash keys), or <see langword="null"/> when there is none.</param>
    /// <returns>The chosen endpoint, one of those the picker was built from.</returns>
    public abstract EndpointState Pick(HttpRequestMessage? request);
}
