using System.Collections.Concurrent;
using Lodestar.Health;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Admission;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Lodestar.Xds.Clusters.Internal;

/// <summary>
/// Keeps the accepted CDS settings of every cluster the <c>xds</c> source follows and applies them to the cluster's
/// named <see cref="LoadBalancingOptions"/>, <see cref="OutlierDetectionOptions"/>, <see cref="ConcurrencyLimitOptions"/>
/// and <see cref="ConnectionOptions"/> (the options of the service of that name), so that core's per-service machinery
/// uses them; a change is announced through the options' change tokens and takes effect on the service's next request
/// (for <see cref="ConnectionOptions"/>, which core reads on every connection attempt, on the next connection).
/// </summary>
/// <remarks>
/// <para>
/// The settings apply after configuration binding (this setup is registered after core's), so a control plane's
/// cluster wins over <c>Lodestar:LoadBalancing:Services:&lt;cluster&gt;</c>; code configured after <c>AddXds</c> wins
/// over both. Values are clamped to Lodestar's ranges, so a control plane can never make a service's options fail
/// validation on the request path.
/// </para>
/// <para>
/// <see cref="IOptionsChangeTokenSource{TOptions}"/> has one fixed name, and clusters come and go at run time, so the
/// tokens carry the default name: the store first evicts the changed cluster's cached options, then fires the token,
/// whose listeners (core's route registry) rebuild the balancers on the next request. Only a change of the mapped
/// values fires, not every CDS update.
/// </para>
/// </remarks>
internal sealed class XdsClusterOptions : IConfigureNamedOptions<LoadBalancingOptions>, IConfigureNamedOptions<OutlierDetectionOptions>,
    IConfigureNamedOptions<ConcurrencyLimitOptions>, IConfigureNamedOptions<ConnectionOptions>
{
    /// <summary>Envoy's connect timeout when a cluster sets none.</summary>
    internal static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, XdsClusterSettings> _clusters = new(StringComparer.Ordinal);
    private readonly IOptionsMonitorCache<LoadBalancingOptions> _loadBalancingCache;
    private readonly IOptionsMonitorCache<OutlierDetectionOptions> _outlierCache;
    private readonly IOptionsMonitorCache<ConcurrencyLimitOptions>? _concurrencyCache;
    private readonly IOptionsMonitorCache<ConnectionOptions>? _connectionCache;
    private readonly Lock _gate = new();

    public XdsClusterOptions(IOptionsMonitorCache<LoadBalancingOptions> loadBalancingCache, IOptionsMonitorCache<OutlierDetectionOptions> outlierCache,
        IOptionsMonitorCache<ConcurrencyLimitOptions>? concurrencyCache = null, IOptionsMonitorCache<ConnectionOptions>? connectionCache = null)
    {
        _loadBalancingCache = loadBalancingCache;
        _outlierCache = outlierCache;
        _concurrencyCache = concurrencyCache;
        _connectionCache = connectionCache;
    }

    /// <summary>Gets the change token source of <see cref="LoadBalancingOptions"/>.</summary>
    public ChangeSource<LoadBalancingOptions> LoadBalancingChanges { get; } = new();

    /// <summary>Gets the change token source of <see cref="OutlierDetectionOptions"/>.</summary>
    public ChangeSource<OutlierDetectionOptions> OutlierChanges { get; } = new();

    /// <summary>Gets the change token source of <see cref="ConcurrencyLimitOptions"/>.</summary>
    public ChangeSource<ConcurrencyLimitOptions> ConcurrencyChanges { get; } = new();

    /// <summary>Gets the settings of a cluster, when the source follows it and its CDS resource was accepted.</summary>
    public bool TryGet(string cluster, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out XdsClusterSettings? settings)
        => _clusters.TryGetValue(cluster, out settings);

    /// <summary>Records a cluster's accepted settings, or forgets them (<see langword="null"/>: removed, or no longer followed).</summary>
    /// <returns>Whether the options the cluster maps to changed (and the change was announced).</returns>
    public bool Update(string cluster, XdsClusterSettings? settings)
    {
        lock (_gate)
        {
            _clusters.TryGetValue(cluster, out var previous);
            if (SameOptions(previous, settings))
            {
                if (settings is not null)
                {
                    _clusters[cluster] = settings;
                }

                return false;
            }

            if (settings is null)
            {
                _clusters.TryRemove(cluster, out _);
            }
            else
            {
                _clusters[cluster] = settings;
            }

            // Evict first: the token's listeners read the options again.
            _loadBalancingCache.TryRemove(cluster);
            _outlierCache.TryRemove(cluster);
            _concurrencyCache?.TryRemove(cluster);
            _connectionCache?.TryRemove(cluster);
        }

        LoadBalancingChanges.Fire();
        OutlierChanges.Fire();
        ConcurrencyChanges.Fire();
        return true;
    }

    public void Configure(LoadBalancingOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, LoadBalancingOptions options)
    {
        if (name is null || !_clusters.TryGetValue(name, out var cluster))
        {
            return;
        }

        options.Policy = cluster.Policy;
        options.ChoiceCount = Math.Clamp(cluster.ChoiceCount, 2, 100);
        options.ActiveRequestBias = Math.Clamp(cluster.ActiveRequestBias, 0, 10);
        var maximum = (int)Math.Clamp(cluster.MaximumRingSize, 1, ClusterDecoder.MaxRingSize);
        options.RingHashMaximumRingSize = maximum;
        options.RingHashMinimumRingSize = (int)Math.Clamp(cluster.MinimumRingSize, 1, maximum);
        if (cluster.MaglevTableSize is >= 7 and <= 5_000_011)
        {
            options.MaglevTableSize = (int)cluster.MaglevTableSize;
        }

        if (cluster.SlowStart is { } slowStart)
        {
            options.SlowStartWindow = slowStart.Window > TimeSpan.FromHours(1) ? TimeSpan.FromHours(1) : slowStart.Window;
            options.SlowStartAggression = Math.Clamp(slowStart.Aggression, 0.1, 10);
            options.SlowStartMinimumWeightPercent = Math.Clamp(slowStart.MinWeightPercent, 1, 100);
        }
        else
        {
            options.SlowStartWindow = TimeSpan.Zero;
        }
    }

    public void Configure(OutlierDetectionOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, OutlierDetectionOptions options)
    {
        if (name is null || !_clusters.TryGetValue(name, out var cluster))
        {
            return;
        }

        // A cluster without outlier_detection has none, as in Envoy and gRPC.
        if (cluster.OutlierDetection is not { } detection)
        {
            options.Enabled = false;
            return;
        }

        options.Enabled = true;
        options.Interval = Clamp(detection.Interval, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(10));
        options.BaseEjectionTime = Clamp(detection.BaseEjectionTime, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1));
        options.MaxEjectionTime = Clamp(detection.MaxEjectionTime, options.BaseEjectionTime, TimeSpan.FromHours(24));
        options.MaxEjectionPercent = Math.Clamp(detection.MaxEjectionPercent, 0, 100);
        options.ConsecutiveServerErrors = Math.Clamp(detection.Consecutive5xx, 0, 1_000_000);
        options.EnforcingConsecutiveServerErrors = Math.Clamp(detection.EnforcingConsecutive5xx, 0, 100);
        options.ConsecutiveGatewayFailures = Math.Clamp(detection.ConsecutiveGatewayFailure, 0, 1_000_000);
        options.EnforcingConsecutiveGatewayFailures = Math.Clamp(detection.EnforcingConsecutiveGatewayFailure, 0, 100);
        options.EnforcingSuccessRate = Math.Clamp(detection.EnforcingSuccessRate, 0, 100);
        options.SuccessRateMinimumHosts = Math.Clamp(detection.SuccessRateMinimumHosts, 1, 1_000_000);
        options.SuccessRateRequestVolume = Math.Clamp(detection.SuccessRateRequestVolume, 1, 1_000_000_000);
        options.SuccessRateStdevFactor = Math.Clamp(detection.SuccessRateStdevFactor / 1000.0, 0, 100);
        options.FailurePercentageThreshold = Math.Clamp(detection.FailurePercentageThreshold, 0, 100);
        options.EnforcingFailurePercentage = Math.Clamp(detection.EnforcingFailurePercentage, 0, 100);
        options.FailurePercentageMinimumHosts = Math.Clamp(detection.FailurePercentageMinimumHosts, 1, 1_000_000);
        options.FailurePercentageRequestVolume = Math.Clamp(detection.FailurePercentageRequestVolume, 1, 1_000_000_000);
    }

    public void Configure(ConcurrencyLimitOptions options) => Configure(Options.DefaultName, options);

    /// <summary>
    /// Maps the cluster's circuit-breaker thresholds (DEFAULT priority, Envoy's defaults when unset): <c>max_requests</c>
    /// becomes the most requests in flight, <c>max_pending_requests</c> how many may wait for a slot and
    /// <c>max_retries</c> the most retries in flight. Core applies them to every client of the service that sets no limit
    /// of its own, each client with its own slots.
    /// </summary>
    public void Configure(string? name, ConcurrencyLimitOptions options)
    {
        if (name is null || !_clusters.TryGetValue(name, out var cluster))
        {
            return;
        }

        options.MaxConcurrentRequests = Math.Clamp(cluster.CircuitBreakers.MaxRequests, 1, 1_000_000);
        options.MaxPendingRequests = Math.Clamp(cluster.CircuitBreakers.MaxPendingRequests, 0, 1_000_000);
        options.MaxConcurrentRetries = Math.Clamp(cluster.CircuitBreakers.MaxRetries, 0, 1_000_000);
    }

    public void Configure(ConnectionOptions options) => Configure(Options.DefaultName, options);

    /// <summary>
    /// Maps the cluster's <c>connect_timeout</c> (Envoy's 5 s when unset) and its circuit-breaker <c>max_connections</c>
    /// (DEFAULT priority, Envoy's 1,024 when unset) onto the service's connection settings, clamped to their ranges
    /// (100 ms to 2 minutes; 1 to 1,000,000). Core applies them per client handler, and a client's own
    /// <c>ConnectTimeout</c> still bounds every connect (the shorter applies).
    /// </summary>
    public void Configure(string? name, ConnectionOptions options)
    {
        if (name is null || !_clusters.TryGetValue(name, out var cluster))
        {
            return;
        }

        options.ConnectTimeout = Clamp(cluster.ConnectTimeout ?? DefaultConnectTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(2));
        options.MaxConnections = Math.Clamp(cluster.CircuitBreakers.MaxConnections, 1, 1_000_000);
    }

    private static TimeSpan Clamp(TimeSpan value, TimeSpan min, TimeSpan max) => value < min ? min : value > max ? max : value;

    private static bool SameOptions(XdsClusterSettings? a, XdsClusterSettings? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        return a.Policy == b.Policy && a.ChoiceCount == b.ChoiceCount && a.ActiveRequestBias.Equals(b.ActiveRequestBias)
               && a.MinimumRingSize == b.MinimumRingSize && a.MaximumRingSize == b.MaximumRingSize && a.MaglevTableSize == b.MaglevTableSize
               && Equals(a.OutlierDetection, b.OutlierDetection) && Equals(a.SlowStart, b.SlowStart)
               && a.CircuitBreakers.MaxRequests == b.CircuitBreakers.MaxRequests && a.CircuitBreakers.MaxPendingRequests == b.CircuitBreakers.MaxPendingRequests
               && a.CircuitBreakers.MaxRetries == b.CircuitBreakers.MaxRetries
               && a.CircuitBreakers.MaxConnections == b.CircuitBreakers.MaxConnections && a.ConnectTimeout == b.ConnectTimeout;
    }

    /// <summary>A change token source under the default name, fired by the store.</summary>
    internal sealed class ChangeSource<TOptions> : IOptionsChangeTokenSource<TOptions>
    {
        private CancellationTokenSource _cts = new();

        public string Name => Options.DefaultName;

        public IChangeToken GetChangeToken() => new CancellationChangeToken(Volatile.Read(ref _cts).Token);

        public void Fire()
        {
            // Not disposed: a listener may still be registering on the old token.
            Interlocked.Exchange(ref _cts, new CancellationTokenSource()).Cancel();
        }
    }
}
