namespace Lodestar.LoadBalancing;

/// <summary>Names of the built-in load-balancing policies.</summary>
public static class LoadBalancingPolicies
{
    /// <summary>Each endpoint in turn, starting at a random one so that many clients do not move in lockstep.</summary>
    public const string RoundRobin = "round-robin";

    /// <summary>A uniformly random endpoint per request.</summary>
    public const string Random = "random";

    /// <summary>Power of two choices: of two random endpoints, the one with fewer requests in flight.</summary>
    public const string LeastRequest = "least-request";
}
