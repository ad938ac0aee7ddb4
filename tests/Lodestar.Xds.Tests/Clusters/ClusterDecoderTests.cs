using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Type.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using Cluster = Envoy.Config.Cluster.V3.Cluster;

namespace Lodestar.Xds.Tests.Clusters;

public sealed class ClusterDecoderTests
{
    [Theory]
    [InlineData(0, "round-robin")]
    [InlineData(1, "least-request")]
    [InlineData(2, "ring-hash")]
    [InlineData(5, "maglev")]
    [InlineData(3, "random")]
    public void Map_LbPolicy_BecomesTheLodestarPolicyName(int policy, string expected)
        => Assert.Equal(expected, ClusterDecoder.Map(EdsCluster("c", policy: (Cluster.Types.LbPolicy)policy)).Policy);

    [Fact]
    public void Map_EdsCluster_UsesServiceNameAndConnectTimeout()
    {
        var settings = ClusterDecoder.Map(EdsCluster("outbound|8080||orders.default.svc.cluster.local", serviceName: "orders-eds"));

        Assert.Equal(XdsClusterKind.Eds, settings.Kind);
        Assert.Equal("orders-eds", settings.EdsServiceName);
        Assert.Equal(TimeSpan.FromSeconds(10), settings.ConnectTimeout);
        Assert.Null(settings.OutlierDetection);
        Assert.Equal(XdsCircuitBreakers.Default, settings.CircuitBreakers);
    }

    [Fact]
    public void Map_LeastRequestConfig_CarriesChoiceCountBiasAndSlowStart()
    {
        var cluster = EdsCluster("c", policy: Cluster.Types.LbPolicy.LeastRequest);
        cluster.LeastRequestLbConfig = new Cluster.Types.LeastRequestLbConfig
        {
            ChoiceCount = 3,
            ActiveRequestBias = new RuntimeDouble { DefaultValue = 0.5 },
            SlowStartConfig = new Cluster.Types.SlowStartConfig
            {
                SlowStartWindow = Duration.FromTimeSpan(TimeSpan.FromSeconds(30)),
                Aggression = new RuntimeDouble { DefaultValue = 2 },
                MinWeightPercent = new Percent { Value = 20 },
            },
        };

        var settings = ClusterDecoder.Map(cluster);

        Assert.Equal((3, 0.5), (settings.ChoiceCount, settings.ActiveRequestBias));
        Assert.Equal(new XdsSlowStart(TimeSpan.FromSeconds(30), 2, 20), settings.SlowStart);
    }

    [Fact]
    public void Map_RingHashAndMaglev_CarryTheirSizes()
    {
        var ring = EdsCluster("r", policy: Cluster.Types.LbPolicy.RingHash);
        ring.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = 4096, MaximumRingSize = 65536 };
        var maglev = EdsCluster("m", policy: Cluster.Types.LbPolicy.Maglev);
        maglev.MaglevLbConfig = new Cluster.Types.MaglevLbConfig { TableSize = 131 };

        Assert.Equal((4096L, 65536L), (ClusterDecoder.Map(ring).MinimumRingSize, ClusterDecoder.Map(ring).MaximumRingSize));
        Assert.Equal(131, ClusterDecoder.Map(maglev).MaglevTableSize);
    }

    [Fact]
    public void Map_OutlierDetectionAndCircuitBreakers_SetFieldsOverrideEnvoyDefaults()
    {
        var cluster = EdsCluster("c");
        cluster.OutlierDetection = new OutlierDetection
        {
            Consecutive5Xx = 3,
            Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            BaseEjectionTime = Duration.FromTimeSpan(TimeSpan.FromSeconds(60)),
            MaxEjectionPercent = 50,
            EnforcingFailurePercentage = 100,
        };
        cluster.CircuitBreakers = new CircuitBreakers();
        cluster.CircuitBreakers.Thresholds.Add(new CircuitBreakers.Types.Thresholds { Priority = RoutingPriority.High, MaxRequests = 1 });
        cluster.CircuitBreakers.Thresholds.Add(new CircuitBreakers.Types.Thresholds { Priority = RoutingPriority.Default, MaxRequests = 200, MaxRetries = 7 });

        var settings = ClusterDecoder.Map(cluster);

        var od = settings.OutlierDetection!;
        Assert.Equal((3, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(60), 50, 100), (od.Consecutive5xx, od.Interval, od.BaseEjectionTime, od.MaxEjectionPercent, od.EnforcingFailurePercentage));
        Assert.Equal(TimeSpan.FromSeconds(300), od.MaxEjectionTime);
        Assert.Equal(1900, od.SuccessRateStdevFactor);
        Assert.Equal(new XdsCircuitBreakers(1024, 1024, 200, 7), settings.CircuitBreakers);
    }

    [Fact]
    public void Map_StaticCluster_TakesItsInlineEndpoints()
    {
        var cluster = new Cluster { Name = "static", Type = Cluster.Types.DiscoveryType.Static, LoadAssignment = Assignment(string.Empty, ("10.0.0.9", 9000)) };

        var settings = ClusterDecoder.Map(cluster);

        Assert.Equal(XdsClusterKind.Static, settings.Kind);
        Assert.Equal("10.0.0.9", Assert.Single(settings.InlineAssignment!.RoutableEndpoints).Host);
    }

    [Theory]
    [InlineData("cluster-provided", "lb_policy ClusterProvided is not supported")]
    [InlineData("dns", "type StrictDns is not supported; only EDS, STATIC and LOGICAL_DNS clusters are")]
    [InlineData("custom", "cluster_type 'envoy.clusters.aggregate' is not supported")]
    [InlineData("eds-path", "eds_cluster_config.eds_config must be 'ads' or 'self'")]
    [InlineData("ring-order", "ring_hash_lb_config.minimum_ring_size 2048 is above maximum_ring_size 1024")]
    [InlineData("ring-murmur", "ring_hash_lb_config.hash_function MurmurHash2 is not supported")]
    [InlineData("choice", "least_request_lb_config.choice_count is 1; it must be at least 2")]
    [InlineData("maglev", "maglev_lb_config.table_size 100 must be a prime number")]
    [InlineData("outlier", "outlier_detection.max_ejection_percent is 150; it must be at most 100")]
    public void Decode_InvalidCluster_IsRejectedNamingTheField(string kind, string expected)
    {
        var cluster = EdsCluster("bad");
        switch (kind)
        {
            case "cluster-provided": cluster.LbPolicy = Cluster.Types.LbPolicy.ClusterProvided; break;
            case "dns": cluster.Type = Cluster.Types.DiscoveryType.StrictDns; break;
            case "custom": cluster.ClusterType = new Cluster.Types.CustomClusterType { Name = "envoy.clusters.aggregate" }; break;
            case "eds-path": cluster.EdsClusterConfig.EdsConfig = new ConfigSource { Path = "/eds.yaml" }; break;
            case "ring-order": cluster.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = 2048, MaximumRingSize = 1024 }; break;
            case "ring-murmur": cluster.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { HashFunction = Cluster.Types.RingHashLbConfig.Types.HashFunction.MurmurHash2 }; break;
            case "choice": cluster.LeastRequestLbConfig = new Cluster.Types.LeastRequestLbConfig { ChoiceCount = 1 }; break;
            case "maglev": cluster.MaglevLbConfig = new Cluster.Types.MaglevLbConfig { TableSize = 100 }; break;
            default: cluster.OutlierDetection = new OutlierDetection { MaxEjectionPercent = 150 }; break;
        }

        var result = ClusterDecoder.Instance.Decode(Any.Pack(cluster));

        Assert.Equal("bad", result.Name);
        Assert.Null(result.Resource);
        Assert.StartsWith($"Cluster 'bad': {expected}", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Decode_FieldsUnknownToLodestar_AreKeptAndIgnored()
    {
        // Field 998 is not declared by Lodestar's subset of the API (a newer control plane, or a field not read).
        var bytes = EdsCluster("c").ToByteArray().Concat(new byte[] { 0xB2, 0x3E, 0x03, 0x61, 0x62, 0x63 }).ToArray();
        var any = new Any { TypeUrl = "type.googleapis.com/envoy.config.cluster.v3.Cluster", Value = ByteString.CopyFrom(bytes) };

        var result = ClusterDecoder.Instance.Decode(any);

        Assert.Null(result.Error);
        Assert.Equal("c", ((XdsClusterSettings)result.Resource!).Name);
        Assert.Equal(bytes, Cluster.Parser.ParseFrom(bytes).ToByteArray());
    }
}
