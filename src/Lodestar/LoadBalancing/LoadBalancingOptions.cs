namespace Lodestar.LoadBalancing;

/// <summary>
/// Load-balancing options of one service: the tuning of each policy and the layers applied before it (traffic split,
/// priority failover, zone awareness, slow start). Named after the service; bound from
/// <c>Lodestar:LoadBalancing:Defaults</c> and then <c>Lodestar:LoadBalancing:Services:&lt;service&gt;</c>.
/// </summary>
/// <remarks>
/// Configure in code with <c>services.Configure&lt;LoadBalancingOptions&gt;("orders", o =&gt; ...)</c> for one service or
/// <c>ConfigureAll</c> for every service. Options are validated at startup. When a service's
/// options change (a configuration reload, or an <c>IOptionsChangeTokenSource</c> named after the service, such as the
/// xDS client's), the service's balancers are rebuilt from them on its next request.
/// </remarks>
public sealed class LoadBalancingOptions
{
    /// <summary>The configuration section under <c>Lodestar</c> these options bind from.</summary>
    public const string SectionName = "LoadBalancing";

    internal static readonly TimeSpan DefaultPeakEwmaDecay = TimeSpan.FromSeconds(30);
    internal static readonly TimeSpan DefaultPeakEwmaFailurePenalty = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Gets or sets the policy used for this service when the client names none, or <see langword="null"/> (default) for
    /// <see cref="LodestarOptions.DefaultPolicy"/>.
    /// </summary>
    public string? Policy { get; set; }

    /// <summary>
    /// Gets or sets how many random endpoints <c>least-request</c> and <c>peak-ewma</c> compare per pick when weights are
    /// equal. Default 2 (power of two choices, Envoy's <c>choice_count</c>); range 2 to 100.
    /// </summary>
    public int ChoiceCount { get; set; } = 2;

    /// <summary>
    /// Gets or sets how strongly <c>least-request</c> with unequal weights favours idle endpoints: an endpoint's
    /// effective weight is <c>weight / (in-flight + 1) ^ bias</c> (Envoy's <c>active_request_bias</c>). 0 is weighted
    /// round robin; default 1.0; range 0 to 10.
    /// </summary>
    public double ActiveRequestBias { get; set; } = 1.0;

    /// <summary>
    /// Gets or sets the decay window of the peak-EWMA latency estimate. Default 30 seconds (Linkerd's is 10); range
    /// 100 ms to 10 minutes.
    /// </summary>
    /// <remarks>
    /// The estimate of an endpoint that gets few requests decays toward zero between its answers, until it competes with
    /// the busy fast ones again; the longer the window, the fewer requests a slow endpoint gets that way. Side by side
    /// with a 5x slower backend among five and 20 callers, 30 s sent it about 40 % fewer requests than 10 s and kept the
    /// p99 under half that of HAProxy and YARP where 10 s did not (<c>docs/benchmarks.md</c>). An endpoint with nothing in
    /// flight is still probed after a tenth of the window, at most a second, so a recovered one is back as soon.
    /// </remarks>
    public TimeSpan PeakEwmaDecay { get; set; } = DefaultPeakEwmaDecay;

    /// <summary>
    /// Gets or sets the latency assumed for an endpoint with no observation yet. Default 30 ms (Linkerd's default RTT
    /// estimate); range 0 to 1 minute.
    /// </summary>
    public TimeSpan PeakEwmaDefaultRtt { get; set; } = TimeSpan.FromMilliseconds(30);

    /// <summary>
    /// Gets or sets the least latency recorded for a failed request, so that fast failures do not attract traffic
    /// (Finagle's penalty). Default 1 second; range 0 to 1 minute.
    /// </summary>
    public TimeSpan PeakEwmaFailurePenalty { get; set; } = DefaultPeakEwmaFailurePenalty;

    /// <summary>
    /// Gets or sets the request header whose value is the hash key of <c>ring-hash</c> and <c>maglev</c> and of sticky
    /// traffic splits, or <see langword="null"/> (default) for none.
    /// </summary>
    /// <remarks>
    /// The key is the first found of: this header, the <see cref="HashKeyCookie"/> cookie, the
    /// <see cref="LoadBalancingRequestOptions.HashKey"/> request option, <see cref="HashKeySelector"/>. Without a key
    /// the pick is random.
    /// </remarks>
    public string? HashKeyHeader { get; set; }

    /// <summary>Gets or sets the cookie whose value is the hash key, or <see langword="null"/> (default) for none.</summary>
    public string? HashKeyCookie { get; set; }

    /// <summary>
    /// Gets or sets a delegate that returns the hash key of a request (or <see langword="null"/> for none); asked last.
    /// Code only; default <see langword="null"/>. It runs on the request path, so it should not allocate.
    /// </summary>
    public Func<HttpRequestMessage, string?>? HashKeySelector { get; set; }

    /// <summary>
    /// Gets or sets the least number of entries on the <c>ring-hash</c> ring. Default 16,384; range 1 to 8,388,608.
    /// More entries spread keys more evenly at the cost of memory (12 bytes each) and rebuild time.
    /// </summary>
    /// <remarks>
    /// An endpoint's share of the keys strays from its weight's by about 1/√(its points). Envoy's default of 1,024 gives
    /// each of five equal endpoints 256 points, and their shares a max/min of up to 1.3; 16,384 gives them 4,096 each
    /// and keeps max/min within 1.1 for up to five equal endpoints. Raise it for larger fleets that need an even spread.
    /// </remarks>
    public int RingHashMinimumRingSize { get; set; } = 16_384;

    /// <summary>Gets or sets the most entries on the <c>ring-hash</c> ring. Default 8,388,608 (Envoy's); range 1 to 8,388,608.</summary>
    public int RingHashMaximumRingSize { get; set; } = 8 * 1024 * 1024;

    /// <summary>
    /// Gets or sets the load factor of consistent hashing with bounded loads (Mirrokni et al.): no endpoint takes more
    /// than this multiple of the average in-flight load (scaled by weight); a key whose endpoint is full moves
    /// clockwise to the next one with room. Default 1.25; 0 turns bounding off; otherwise 1 or more.
    /// </summary>
    public double HashBalanceFactor { get; set; } = 1.25;

    /// <summary>Gets or sets the size of the <c>maglev</c> lookup table; must be prime. Default 65,537; range 7 to 5,000,011.</summary>
    public int MaglevTableSize { get; set; } = 65_537;

    /// <summary>
    /// Gets or sets the caller's zone for zone-aware routing, or <see langword="null"/> (default) to read the
    /// <c>NODE_ZONE</c> environment variable; zone-aware routing is off when neither is set.
    /// </summary>
    public string? LocalZone { get; set; }

    /// <summary>
    /// Gets or sets whether zone-aware routing is on when a local zone is known. Default <see langword="true"/>.
    /// </summary>
    public bool ZoneAware { get; set; } = true;

    /// <summary>
    /// Gets or sets the fewest endpoints a service needs before zone-aware routing applies (Envoy's
    /// <c>min_cluster_size</c>). Default 6; range 1 to 1,000,000.
    /// </summary>
    public int ZoneAwareMinimumEndpoints { get; set; } = 6;

    /// <summary>
    /// Gets or sets the overprovisioning factor of priority failover and zone spill-over: a group keeps all of its
    /// traffic while <c>healthy fraction × factor ≥ 1</c> (Envoy's default 1.4, so 72 % healthy is enough).
    /// Default 1.4; range 1 to 10.
    /// </summary>
    public double OverprovisioningFactor { get; set; } = 1.4;

    /// <summary>
    /// Gets or sets the slow-start window: an endpoint that joined less than this long ago gets a weight ramped from
    /// <see cref="SlowStartMinimumWeightPercent"/> to full (Envoy's semantics), for <c>round-robin</c>,
    /// <c>weighted-round-robin</c> and <c>least-request</c>. Default zero (off); range 0 to 1 hour.
    /// </summary>
    public TimeSpan SlowStartWindow { get; set; }

    /// <summary>
    /// Gets or sets the aggression of the slow-start ramp: weight factor = <c>(elapsed / window) ^ (1 / aggression)</c>.
    /// 1 (default) is linear; above 1 ramps faster early. Range 0.1 to 10.
    /// </summary>
    public double SlowStartAggression { get; set; } = 1.0;

    /// <summary>Gets or sets the least weight, in percent of the full weight, during slow start. Default 10; range 1 to 100.</summary>
    public double SlowStartMinimumWeightPercent { get; set; } = 10;

    /// <summary>
    /// Gets the traffic split: each entry sends a percentage of requests to the endpoints whose metadata matches it
    /// (the canary pattern); the remaining requests go to the endpoints that match no entry. Sticky per hash key when
    /// a request has one. Default empty. Percentages add up to at most 100.
    /// </summary>
    public IList<TrafficSplit> TrafficSplits { get; } = [];

    internal string? ResolveLocalZone()
    {
        if (!ZoneAware)
        {
            return null;
        }

        var zone = LocalZone ?? Environment.GetEnvironmentVariable("NODE_ZONE");
        return string.IsNullOrWhiteSpace(zone) ? null : zone;
    }
}

/// <summary>One entry of <see cref="LoadBalancingOptions.TrafficSplits"/>: which endpoints, and what share of requests.</summary>
public sealed class TrafficSplit
{
    /// <summary>Gets or sets the share of requests for the subset, in percent. Range 0 to 100; default 0.</summary>
    public double Percent { get; set; }

    /// <summary>Gets the metadata an endpoint must carry (every pair, ordinal) to belong to the subset, e.g. <c>version=v2</c>.</summary>
    public IDictionary<string, string> Match { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>Per-request options that steer the pick, set with <see cref="HttpRequestOptions.Set{TValue}"/>.</summary>
public static class LoadBalancingRequestOptions
{
    /// <summary>The hash key of the request for <c>ring-hash</c>, <c>maglev</c> and sticky traffic splits.</summary>
    public static readonly HttpRequestOptionsKey<string> HashKey = new("Lodestar.HashKey");
}
