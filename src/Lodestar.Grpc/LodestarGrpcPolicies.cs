using Grpc.Net.Client.Configuration;
using Lodestar.LoadBalancing;

namespace Lodestar.Grpc;

/// <summary>
/// Names of the load balancers Lodestar adds to grpc-dotnet, for a channel's service config
/// (<see cref="ServiceConfig.LoadBalancingConfigs"/>), and a helper that builds their configuration.
/// </summary>
/// <remarks>
/// Each balancer picks with the Lodestar policy of the same name over the service's health stage, which it shares
/// with every <see cref="HttpClient"/> of the same settings: endpoints ejected by outlier detection, refused by their
/// circuit breaker or failing active checks get no calls, and each call's <c>grpc-status</c> is reported back.
/// </remarks>
public static class LodestarGrpcPolicies
{
    /// <summary>Power of two choices by calls in flight (<see cref="LoadBalancingPolicies.LeastRequest"/>).</summary>
    public const string LeastRequest = "lodestar_least_request";

    /// <summary>Power of two choices by peak-EWMA latency × load (<see cref="LoadBalancingPolicies.PeakEwma"/>).</summary>
    public const string PeakEwma = "lodestar_peak_ewma";

    /// <summary>Smooth weighted round robin (<see cref="LoadBalancingPolicies.WeightedRoundRobin"/>); equal weights give plain round robin.</summary>
    public const string RoundRobin = "lodestar_round_robin";

    /// <summary>Consistent hashing on a ring (<see cref="LoadBalancingPolicies.RingHash"/>); the key is a metadata header (see <see cref="CreateConfig"/>).</summary>
    public const string RingHash = "lodestar_ring_hash";

    /// <summary>
    /// Consistent hashing with Maglev's lookup table (<see cref="LoadBalancingPolicies.Maglev"/>): the key is a metadata
    /// header, as for <see cref="RingHash"/>; picks are a table lookup, and removing one of n endpoints moves about 1/n of the keys.
    /// </summary>
    public const string Maglev = "lodestar_maglev";

    /// <summary>The configuration key naming the Lodestar client whose options (health overrides, gRPC failure statuses) apply.</summary>
    public const string ClientKey = "client";

    /// <summary>The configuration key naming the call metadata header whose value is the hash key (ring hash, Maglev).</summary>
    public const string HashHeaderKey = "hashHeader";

    /// <summary>The configuration key naming the service, for channels whose resolver is not <c>lodestar</c>.</summary>
    public const string ServiceKey = "service";

    /// <summary>Gets the Lodestar policy a balancer name maps to, or <see langword="null"/> for a name that is not Lodestar's.</summary>
    /// <param name="balancerName">A load-balancing config name.</param>
    /// <returns>The policy name.</returns>
    public static string? ToPolicy(string balancerName) => balancerName switch
    {
        LeastRequest => LoadBalancingPolicies.LeastRequest,
        PeakEwma => LoadBalancingPolicies.PeakEwma,
        RoundRobin => LoadBalancingPolicies.WeightedRoundRobin,
        RingHash => LoadBalancingPolicies.RingHash,
        Maglev => LoadBalancingPolicies.Maglev,
        _ => null,
    };

    /// <summary>Builds the load-balancing config that selects a Lodestar balancer.</summary>
    /// <param name="balancerName">One of the names above.</param>
    /// <param name="clientName">The Lodestar client whose options apply, or <see langword="null"/> for the service's settings alone.</param>
    /// <param name="hashHeader">For <see cref="RingHash"/> and <see cref="Maglev"/>: the metadata header whose value is the hash key, or <see langword="null"/> for the service's <see cref="LoadBalancingOptions.HashKeyHeader"/>.</param>
    /// <returns>The config, to add to <see cref="ServiceConfig.LoadBalancingConfigs"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="balancerName"/> is not a Lodestar balancer.</exception>
    public static LoadBalancingConfig CreateConfig(string balancerName, string? clientName = null, string? hashHeader = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(balancerName);
        if (ToPolicy(balancerName) is null)
        {
            throw new ArgumentException(
                $"'{balancerName}' is not a Lodestar gRPC balancer (known: {LeastRequest}, {PeakEwma}, {RoundRobin}, {RingHash}, {Maglev}).", nameof(balancerName));
        }

        var config = new LoadBalancingConfig(balancerName);
        var settings = new Dictionary<string, object>(StringComparer.Ordinal);
        if (clientName is not null)
        {
            settings[ClientKey] = clientName;
        }

        if (hashHeader is not null)
        {
            settings[HashHeaderKey] = hashHeader;
        }

        config.Inner[balancerName] = settings;
        return config;
    }
}
