using Lodestar.Xds.Endpoints;

namespace Lodestar.Xds.Clusters;

/// <summary>How a cluster finds its endpoints.</summary>
internal enum XdsClusterKind
{
    /// <summary>Endpoints come from EDS under <see cref="XdsClusterSettings.EdsServiceName"/>.</summary>
    Eds,

    /// <summary>Endpoints are listed in the cluster itself (<c>load_assignment</c>).</summary>
    Static,

    /// <summary>
    /// One endpoint, the first address <see cref="XdsClusterSettings.DnsHost"/> resolves to, re-resolved every
    /// <see cref="XdsClusterSettings.DnsRefreshRate"/> (<c>LOGICAL_DNS</c>).
    /// </summary>
    LogicalDns,
}

/// <summary>Which address families a <see cref="XdsClusterKind.LogicalDns"/> cluster's name resolves to, as Envoy's <c>dns_lookup_family</c>.</summary>
internal enum XdsDnsLookupFamily
{
    /// <summary>IPv6 addresses; IPv4 when there are none.</summary>
    Auto,

    /// <summary>IPv4 addresses only.</summary>
    V4Only,

    /// <summary>IPv6 addresses only.</summary>
    V6Only,

    /// <summary>IPv4 addresses; IPv6 when there are none.</summary>
    V4Preferred,

    /// <summary>Every address, in the order the resolver returns them.</summary>
    All,
}

/// <summary>
/// The read-only settings of one CDS cluster, mapped to Lodestar's names: load-balancing policy and its tuning,
/// outlier detection, circuit-breaker thresholds, slow start, connect timeout.
/// </summary>
internal sealed class XdsClusterSettings
{
    /// <summary>Gets the cluster name.</summary>
    public required string Name { get; init; }

    /// <summary>Gets how the cluster finds its endpoints.</summary>
    public required XdsClusterKind Kind { get; init; }

    /// <summary>Gets the name to subscribe to in EDS: <c>eds_cluster_config.service_name</c>, or the cluster name.</summary>
    public required string EdsServiceName { get; init; }

    /// <summary>Gets the endpoints of a <see cref="XdsClusterKind.Static"/> cluster.</summary>
    public XdsEndpointAssignment? InlineAssignment { get; init; }

    /// <summary>Gets the host name of a <see cref="XdsClusterKind.LogicalDns"/> cluster.</summary>
    public string? DnsHost { get; init; }

    /// <summary>Gets the port of a <see cref="XdsClusterKind.LogicalDns"/> cluster.</summary>
    public int DnsPort { get; init; }

    /// <summary>Gets how often a <see cref="XdsClusterKind.LogicalDns"/> cluster's name is resolved again (Envoy's default 5 s).</summary>
    public TimeSpan DnsRefreshRate { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets the address families a <see cref="XdsClusterKind.LogicalDns"/> cluster's name resolves to.</summary>
    public XdsDnsLookupFamily DnsLookupFamily { get; init; }

    /// <summary>Gets the Lodestar policy name (<c>round-robin</c>, <c>least-request</c>, <c>ring-hash</c>, <c>maglev</c>, <c>random</c>).</summary>
    public required string Policy { get; init; }

    /// <summary>Gets the least-request choice count (Envoy's default 2).</summary>
    public int ChoiceCount { get; init; } = 2;

    /// <summary>Gets the least-request active request bias (Envoy's default 1.0).</summary>
    public double ActiveRequestBias { get; init; } = 1.0;

    /// <summary>Gets the ring-hash minimum ring size (Envoy's default 1,024).</summary>
    public long MinimumRingSize { get; init; } = 1024;

    /// <summary>Gets the ring-hash maximum ring size (Envoy's default 8,388,608).</summary>
    public long MaximumRingSize { get; init; } = 8_388_608;

    /// <summary>Gets the Maglev table size (Envoy's default 65,537).</summary>
    public long MaglevTableSize { get; init; } = 65_537;

    /// <summary>Gets the connect timeout, or <see langword="null"/> when the cluster sets none.</summary>
    public TimeSpan? ConnectTimeout { get; init; }

    /// <summary>Gets the outlier detection settings, or <see langword="null"/> when the cluster has none (detection off).</summary>
    public XdsOutlierDetection? OutlierDetection { get; init; }

    /// <summary>Gets the circuit-breaker thresholds of the default routing priority.</summary>
    public XdsCircuitBreakers CircuitBreakers { get; init; } = XdsCircuitBreakers.Default;

    /// <summary>Gets the slow-start settings, or <see langword="null"/> when slow start is off.</summary>
    public XdsSlowStart? SlowStart { get; init; }

    /// <summary>Gets the healthy panic threshold in percent, or <see langword="null"/> for Envoy's default (50 %).</summary>
    public double? HealthyPanicThresholdPercent { get; init; }
}

/// <summary>Envoy's outlier detection settings with Envoy's defaults for fields the cluster leaves unset.</summary>
internal sealed record XdsOutlierDetection
{
    public int Consecutive5xx { get; init; } = 5;

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);

    public TimeSpan BaseEjectionTime { get; init; } = TimeSpan.FromSeconds(30);

    public TimeSpan MaxEjectionTime { get; init; } = TimeSpan.FromSeconds(300);

    public TimeSpan MaxEjectionTimeJitter { get; init; } = TimeSpan.Zero;

    public int MaxEjectionPercent { get; init; } = 10;

    public int EnforcingConsecutive5xx { get; init; } = 100;

    public int ConsecutiveGatewayFailure { get; init; } = 5;

    public int EnforcingConsecutiveGatewayFailure { get; init; }

    public int EnforcingSuccessRate { get; init; } = 100;

    public int SuccessRateMinimumHosts { get; init; } = 5;

    public int SuccessRateRequestVolume { get; init; } = 100;

    public int SuccessRateStdevFactor { get; init; } = 1900;

    public int FailurePercentageThreshold { get; init; } = 85;

    public int EnforcingFailurePercentage { get; init; }

    public int FailurePercentageMinimumHosts { get; init; } = 5;

    public int FailurePercentageRequestVolume { get; init; } = 50;
}

/// <summary>Circuit-breaker thresholds (Envoy's defaults: 1,024 connections, pending and requests; 3 retries).</summary>
internal sealed record XdsCircuitBreakers(int MaxConnections, int MaxPendingRequests, int MaxRequests, int MaxRetries)
{
    public static readonly XdsCircuitBreakers Default = new(1024, 1024, 1024, 3);
}

/// <summary>Slow-start settings: new endpoints ramp up over <paramref name="Window"/>.</summary>
internal sealed record XdsSlowStart(TimeSpan Window, double Aggression, double MinWeightPercent);
