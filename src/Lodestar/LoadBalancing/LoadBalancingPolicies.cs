namespace Lodestar.LoadBalancing;

/// <summary>Names of the built-in load-balancing policies.</summary>
public static class LoadBalancingPolicies
{
    /// <summary>Each endpoint in turn, starting at a random one so that many clients do not move in lockstep.</summary>
    public const string RoundRobin = "round-robin";

    /// <summary>A uniformly random endpoint per request.</summary>
    public const string Random = "random";

    /// <summary>
    /// Power of two choices: of two (<see cref="LoadBalancingOptions.ChoiceCount"/>) random endpoints, the one with fewer
    /// requests in flight; with unequal weights, Envoy's <c>weight / (in flight + 1) ^ bias</c>.
    /// </summary>
    public const string LeastRequest = "least-request";

    /// <summary>Round robin in proportion to endpoint weights, smoothly interleaved (gRFC A58's stride scheduler).</summary>
    public const string WeightedRoundRobin = "weighted-round-robin";

    /// <summary>
    /// Power of two choices by cost = peak-sensitive EWMA of latency × √(in flight + 1), after Linkerd and Finagle, with
    /// the peak damped so that one stalled answer cannot make a fast endpoint look slow.
    /// </summary>
    public const string PeakEwma = "peak-ewma";

    /// <summary>Consistent hashing on a Ketama ring with bounded loads; the hash key comes from the request.</summary>
    public const string RingHash = "ring-hash";

    /// <summary>Consistent hashing with Google's Maglev lookup table; the hash key comes from the request.</summary>
    public const string Maglev = "maglev";
}
