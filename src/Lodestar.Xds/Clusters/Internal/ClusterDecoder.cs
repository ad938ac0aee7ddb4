using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.LoadBalancing;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;
using ClusterProto = Envoy.Config.Cluster.V3.Cluster;

namespace Lodestar.Xds.Clusters.Internal;

/// <summary>
/// Decodes and validates CDS <c>Cluster</c> resources in the manner of grpc-go's xdsresource unmarshaller and maps them
/// to <see cref="XdsClusterSettings"/>.
/// </summary>
/// <remarks>
/// Supported: <c>EDS</c> clusters whose <c>eds_config</c> is <c>ads</c> or <c>self</c>, and <c>STATIC</c> clusters
/// with a <c>load_assignment</c>, and <c>LOGICAL_DNS</c> clusters whose <c>load_assignment</c> names one host and port
/// (gRFC A37). Rejected: <c>STRICT_DNS</c>, original-destination and custom (including aggregate) clusters,
/// <c>CLUSTER_PROVIDED</c> and <c>LOAD_BALANCING_POLICY_CONFIG</c> policies, a ring hash with a hash function other
/// than xxHash or with a minimum above its maximum, a least-request choice count below 2, and outlier-detection
/// percentages above 100.
/// </remarks>
internal sealed class ClusterDecoder : XdsResourceType
{
    /// <summary>The largest ring Envoy and gRPC allow.</summary>
    public const long MaxRingSize = 8_388_608;

    public static readonly ClusterDecoder Instance = new();

    public override string TypeUrl => XdsTypeUrls.Cluster;

    public override bool AllResourcesRequiredInSotW => true;

    public override XdsDecodeResult Decode(Any resource)
    {
        ClusterProto message;
        try
        {
            message = ClusterProto.Parser.ParseFrom(resource.Value);
        }
        catch (Exception ex)
        {
            return XdsDecodeResult.Invalid(null, $"a Cluster could not be decoded: {ex.Message}");
        }

        try
        {
            return XdsDecodeResult.Valid(message.Name, Map(message));
        }
        catch (XdsResourceException ex)
        {
            return XdsDecodeResult.Invalid(message.Name, $"Cluster '{message.Name}': {ex.Message}");
        }
    }

    public static XdsClusterSettings Map(ClusterProto message)
    {
        if (string.IsNullOrEmpty(message.Name))
        {
            throw new XdsResourceException("name is empty");
        }

        var kind = ReadKind(message, out var edsServiceName);
        var inline = kind == XdsClusterKind.Static ? EndpointAssignmentDecoder.Map(WithName(message)) : null;
        var (dnsHost, dnsPort) = kind == XdsClusterKind.LogicalDns ? ReadLogicalDnsAddress(message) : (null, 0);
        var refresh = message.DnsRefreshRate is { } rate ? ReadDuration(rate, "dns_refresh_rate") : TimeSpan.FromSeconds(5);
        if (kind == XdsClusterKind.LogicalDns && refresh < TimeSpan.FromMilliseconds(1))
        {
            throw new XdsResourceException("dns_refresh_rate must be at least 1 ms");
        }

        var family = message.DnsLookupFamily switch
        {
            ClusterProto.Types.DnsLookupFamily.Auto => XdsDnsLookupFamily.Auto,
            ClusterProto.Types.DnsLookupFamily.V4Only => XdsDnsLookupFamily.V4Only,
            ClusterProto.Types.DnsLookupFamily.V6Only => XdsDnsLookupFamily.V6Only,
            ClusterProto.Types.DnsLookupFamily.V4Preferred => XdsDnsLookupFamily.V4Preferred,
            ClusterProto.Types.DnsLookupFamily.All => XdsDnsLookupFamily.All,
            _ => throw new XdsResourceException($"dns_lookup_family {message.DnsLookupFamily} is not supported"),
        };

        var policy = message.LbPolicy switch
        {
            ClusterProto.Types.LbPolicy.RoundRobin => LoadBalancingPolicies.RoundRobin,
            ClusterProto.Types.LbPolicy.LeastRequest => LoadBalancingPolicies.LeastRequest,
            ClusterProto.Types.LbPolicy.RingHash => LoadBalancingPolicies.RingHash,
            ClusterProto.Types.LbPolicy.Maglev => LoadBalancingPolicies.Maglev,
            ClusterProto.Types.LbPolicy.Random => LoadBalancingPolicies.Random,
            _ => throw new XdsResourceException($"lb_policy {message.LbPolicy} is not supported"),
        };

        var choiceCount = 2;
        var bias = 1.0;
        long minRing = 1024;
        long maxRing = MaxRingSize;
        long maglev = 65_537;
        XdsSlowStart? slowStart = null;
        switch (message.LbConfigCase)
        {
            case ClusterProto.LbConfigOneofCase.LeastRequestLbConfig:
                var lr = message.LeastRequestLbConfig;
                if (lr.ChoiceCount is { } count)
                {
                    if (count < 2)
                    {
                        throw new XdsResourceException($"least_request_lb_config.choice_count is {count}; it must be at least 2");
                    }

                    // Lodestar compares at most 100 endpoints per pick, as its own option allows.
                    choiceCount = (int)Math.Min(count, 100u);
                }

                if (lr.ActiveRequestBias is { } runtimeBias)
                {
                    if (runtimeBias.DefaultValue < 0 || double.IsNaN(runtimeBias.DefaultValue))
                    {
                        throw new XdsResourceException($"least_request_lb_config.active_request_bias is {runtimeBias.DefaultValue}; it must be 0 or more");
                    }

                    bias = Math.Min(runtimeBias.DefaultValue, 10.0);
                }

                slowStart = ReadSlowStart(lr.SlowStartConfig, "least_request_lb_config.slow_start_config");
                break;
            case ClusterProto.LbConfigOneofCase.RingHashLbConfig:
                var ring = message.RingHashLbConfig;
                if (ring.HashFunction != ClusterProto.Types.RingHashLbConfig.Types.HashFunction.XxHash)
                {
                    throw new XdsResourceException($"ring_hash_lb_config.hash_function {ring.HashFunction} is not supported; only XX_HASH is");
                }

                minRing = (long)(ring.MinimumRingSize ?? 1024);
                maxRing = (long)(ring.MaximumRingSize ?? (ulong)MaxRingSize);
                if (minRing is < 1 or > MaxRingSize || maxRing is < 1 or > MaxRingSize)
                {
                    throw new XdsResourceException($"ring_hash_lb_config: ring sizes must be between 1 and {MaxRingSize} (minimum {minRing}, maximum {maxRing})");
                }

                if (minRing > maxRing)
                {
                    throw new XdsResourceException($"ring_hash_lb_config.minimum_ring_size {minRing} is above maximum_ring_size {maxRing}");
                }

                break;
            case ClusterProto.LbConfigOneofCase.MaglevLbConfig:
                if (message.MaglevLbConfig.TableSize is { } table)
                {
                    if (table is < 1 or > 5_000_011 || !IsPrime(table))
                    {
                        throw new XdsResourceException($"maglev_lb_config.table_size {table} must be a prime number up to 5000011");
                    }

                    maglev = (long)table;
                }

                break;
            case ClusterProto.LbConfigOneofCase.RoundRobinLbConfig:
                slowStart = ReadSlowStart(message.RoundRobinLbConfig.SlowStartConfig, "round_robin_lb_config.slow_start_config");
                break;
        }

        double? panic = null;
        if (message.CommonLbConfig?.HealthyPanicThreshold is { } threshold)
        {
            if (threshold.Value is < 0 or > 100 || double.IsNaN(threshold.Value))
            {
                throw new XdsResourceException($"common_lb_config.healthy_panic_threshold {threshold.Value} is outside 0-100");
            }

            panic = threshold.Value;
        }

        return new XdsClusterSettings
        {
            Name = message.Name,
            Kind = kind,
            EdsServiceName = edsServiceName,
            InlineAssignment = inline,
            DnsHost = dnsHost,
            DnsPort = dnsPort,
            DnsRefreshRate = refresh,
            DnsLookupFamily = family,
            Policy = policy,
            ChoiceCount = choiceCount,
            ActiveRequestBias = bias,
            MinimumRingSize = minRing,
            MaximumRingSize = maxRing,
            MaglevTableSize = maglev,
            ConnectTimeout = message.ConnectTimeout is { } connect ? ReadDuration(connect, "connect_timeout") : null,
            OutlierDetection = message.OutlierDetection is { } od ? ReadOutlierDetection(od) : null,
            CircuitBreakers = ReadCircuitBreakers(message.CircuitBreakers),
            SlowStart = slowStart,
            HealthyPanicThresholdPercent = panic,
        };
    }

    private static XdsClusterKind ReadKind(ClusterProto message, out string edsServiceName)
    {
        edsServiceName = message.Name;
        if (message.ClusterDiscoveryTypeCase == ClusterProto.ClusterDiscoveryTypeOneofCase.ClusterType)
        {
            throw new XdsResourceException($"cluster_type '{message.ClusterType.Name}' is not supported");
        }

        switch (message.Type)
        {
            case ClusterProto.Types.DiscoveryType.Eds:
                var eds = message.EdsClusterConfig?.EdsConfig;
                if (eds is null || eds.ConfigSourceSpecifierCase is not (ConfigSource.ConfigSourceSpecifierOneofCase.Ads or ConfigSource.ConfigSourceSpecifierOneofCase.Self))
                {
                    throw new XdsResourceException("eds_cluster_config.eds_config must be 'ads' or 'self'");
                }

                if (message.EdsClusterConfig!.ServiceName.Length > 0)
                {
                    edsServiceName = message.EdsClusterConfig.ServiceName;
                }

                return XdsClusterKind.Eds;
            case ClusterProto.Types.DiscoveryType.Static:
                if (message.LoadAssignment is null)
                {
                    throw new XdsResourceException("a STATIC cluster has no load_assignment");
                }

                return XdsClusterKind.Static;
            case ClusterProto.Types.DiscoveryType.LogicalDns:
                return XdsClusterKind.LogicalDns;
            default:
                throw new XdsResourceException($"type {message.Type} is not supported; only EDS, STATIC and LOGICAL_DNS clusters are");
        }
    }

    private static (string Host, int Port) ReadLogicalDnsAddress(ClusterProto message)
    {
        var localities = message.LoadAssignment?.Endpoints;
        if (localities is null || localities.Count != 1)
        {
            throw new XdsResourceException($"a LOGICAL_DNS cluster must have exactly one locality in load_assignment; it has {localities?.Count ?? 0}");
        }

        var endpoints = localities[0].LbEndpoints;
        if (endpoints.Count != 1)
        {
            throw new XdsResourceException($"a LOGICAL_DNS cluster must have exactly one lb_endpoint in load_assignment; it has {endpoints.Count}");
        }

        var socket = endpoints[0].Endpoint?.Address?.SocketAddress
            ?? throw new XdsResourceException("the LOGICAL_DNS endpoint has no socket_address");
        if (string.IsNullOrEmpty(socket.Address))
        {
            throw new XdsResourceException("the LOGICAL_DNS endpoint's socket_address has an empty address");
        }

        if (socket.PortSpecifierCase != SocketAddress.PortSpecifierOneofCase.PortValue || socket.PortValue is 0 or > 65535)
        {
            throw new XdsResourceException($"the LOGICAL_DNS endpoint '{socket.Address}' has port {socket.PortValue}; it must be a port_value in 1-65535");
        }

        return (socket.Address, (int)socket.PortValue);
    }

    private static Envoy.Config.Endpoint.V3.ClusterLoadAssignment WithName(ClusterProto message)
    {
        var assignment = message.LoadAssignment.Clone();
        if (assignment.ClusterName.Length == 0)
        {
            assignment.ClusterName = message.Name;
        }

        return assignment;
    }

    private static XdsSlowStart? ReadSlowStart(ClusterProto.Types.SlowStartConfig? config, string path)
    {
        if (config?.SlowStartWindow is null)
        {
            return null;
        }

        var window = ReadDuration(config.SlowStartWindow, path + ".slow_start_window");
        var aggression = config.Aggression?.DefaultValue ?? 1.0;
        if (aggression <= 0 || double.IsNaN(aggression))
        {
            throw new XdsResourceException($"{path}.aggression {aggression} must be above 0");
        }

        var minWeight = config.MinWeightPercent?.Value ?? 10.0;
        if (minWeight is < 0 or > 100 || double.IsNaN(minWeight))
        {
            throw new XdsResourceException($"{path}.min_weight_percent {minWeight} is outside 0-100");
        }

        return new XdsSlowStart(window, aggression, minWeight);
    }

    private static XdsOutlierDetection ReadOutlierDetection(OutlierDetection od)
    {
        const string Path = "outlier_detection";
        var defaults = new XdsOutlierDetection();
        var baseEjection = od.BaseEjectionTime is { } b ? ReadDuration(b, Path + ".base_ejection_time") : defaults.BaseEjectionTime;
        var maxEjection = od.MaxEjectionTime is { } m ? ReadDuration(m, Path + ".max_ejection_time") : TimeSpan.FromTicks(Math.Max(defaults.MaxEjectionTime.Ticks, baseEjection.Ticks));
        return new XdsOutlierDetection
        {
            Consecutive5xx = Count(od.Consecutive5Xx, defaults.Consecutive5xx),
            Interval = od.Interval is { } i ? ReadDuration(i, Path + ".interval") : defaults.Interval,
            BaseEjectionTime = baseEjection,
            MaxEjectionTime = maxEjection,
            MaxEjectionTimeJitter = od.MaxEjectionTimeJitter is { } j ? ReadDuration(j, Path + ".max_ejection_time_jitter") : TimeSpan.Zero,
            MaxEjectionPercent = Percent(od.MaxEjectionPercent, defaults.MaxEjectionPercent, Path + ".max_ejection_percent"),
            EnforcingConsecutive5xx = Percent(od.EnforcingConsecutive5Xx, defaults.EnforcingConsecutive5xx, Path + ".enforcing_consecutive_5xx"),
            ConsecutiveGatewayFailure = Count(od.ConsecutiveGatewayFailure, defaults.ConsecutiveGatewayFailure),
            EnforcingConsecutiveGatewayFailure = Percent(od.EnforcingConsecutiveGatewayFailure, 0, Path + ".enforcing_consecutive_gateway_failure"),
            EnforcingSuccessRate = Percent(od.EnforcingSuccessRate, defaults.EnforcingSuccessRate, Path + ".enforcing_success_rate"),
            SuccessRateMinimumHosts = Count(od.SuccessRateMinimumHosts, defaults.SuccessRateMinimumHosts),
            SuccessRateRequestVolume = Count(od.SuccessRateRequestVolume, defaults.SuccessRateRequestVolume),
            SuccessRateStdevFactor = Count(od.SuccessRateStdevFactor, defaults.SuccessRateStdevFactor),
            FailurePercentageThreshold = Percent(od.FailurePercentageThreshold, defaults.FailurePercentageThreshold, Path + ".failure_percentage_threshold"),
            EnforcingFailurePercentage = Percent(od.EnforcingFailurePercentage, 0, Path + ".enforcing_failure_percentage"),
            FailurePercentageMinimumHosts = Count(od.FailurePercentageMinimumHosts, defaults.FailurePercentageMinimumHosts),
            FailurePercentageRequestVolume = Count(od.FailurePercentageRequestVolume, defaults.FailurePercentageRequestVolume),
        };
    }

    private static XdsCircuitBreakers ReadCircuitBreakers(CircuitBreakers? breakers)
    {
        var defaults = XdsCircuitBreakers.Default;
        var thresholds = breakers?.Thresholds.FirstOrDefault(static t => t.Priority == RoutingPriority.Default);
        if (thresholds is null)
        {
            return defaults;
        }

        return new XdsCircuitBreakers(
            Count(thresholds.MaxConnections, defaults.MaxConnections),
            Count(thresholds.MaxPendingRequests, defaults.MaxPendingRequests),
            Count(thresholds.MaxRequests, defaults.MaxRequests),
            Count(thresholds.MaxRetries, defaults.MaxRetries));
    }

    private static int Count(uint? value, int fallback) => value is { } v ? (int)Math.Min(v, int.MaxValue) : fallback;

    private static int Percent(uint? value, int fallback, string path)
    {
        if (value is not { } v)
        {
            return fallback;
        }

        return v <= 100 ? (int)v : throw new XdsResourceException($"{path} is {v}; it must be at most 100");
    }

    internal static TimeSpan ReadDuration(Duration duration, string path)
    {
        if (duration.Seconds < 0 || duration.Nanos < 0 || duration.Seconds > 315_576_000_000L || duration.Nanos > 999_999_999)
        {
            throw new XdsResourceException($"{path} is not a valid non-negative duration");
        }

        return TimeSpan.FromSeconds(duration.Seconds) + TimeSpan.FromTicks(duration.Nanos / 100);
    }

    private static bool IsPrime(ulong n)
    {
        if (n < 2)
        {
            return false;
        }

        for (ulong d = 2; d * d <= n; d++)
        {
            if (n % d == 0)
            {
                return false;
            }
        }

        return true;
    }
}
