using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Type.V3;
using Lodestar.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Endpoints;

public sealed class EndpointAssignmentDecoderTests
{
    [Fact]
    public void Map_PrioritiesAndLocalities_BecomePriorityZoneAndMetadata()
    {
        var assignment = Assignment("orders",
            Locality("zone-a", 2, 0, Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80, weight: 3)),
            Locality("zone-b", 1, 1, Endpoint("10.0.1.1", 80)));

        var mapped = EndpointAssignmentDecoder.Map(assignment);

        Assert.Equal(3, mapped.RoutableEndpoints.Count);
        var first = mapped.RoutableEndpoints[0];
        Assert.Equal((0, "zone-a", 2), (first.Priority, first.Zone, first.Weight));
        Assert.Equal(6, mapped.RoutableEndpoints[1].Weight);
        var failover = mapped.RoutableEndpoints[2];
        Assert.Equal((1, "zone-b", 1), (failover.Priority, failover.Zone, failover.Weight));
        Assert.Equal("region-1", failover.Metadata[EndpointAssignmentDecoder.RegionKey]);
        Assert.Equal("zone-b-sub", failover.Metadata[EndpointAssignmentDecoder.SubZoneKey]);
        Assert.Equal("HEALTHY", failover.Metadata[EndpointAssignmentDecoder.HealthKey]);
        Assert.Equal(2, mapped.Localities.Count);
    }

    [Fact]
    public void Map_HealthStatuses_OnlyHealthyAndUnknownAreRoutable()
    {
        var assignment = Assignment("orders", Locality("zone-a", 1, 0,
            Endpoint("10.0.0.1", 80, health: HealthStatus.Healthy),
            Endpoint("10.0.0.2", 80, health: HealthStatus.Unknown),
            Endpoint("10.0.0.3", 80, health: HealthStatus.Draining),
            Endpoint("10.0.0.4", 80, health: HealthStatus.Unhealthy),
            Endpoint("10.0.0.5", 80, health: HealthStatus.Degraded),
            Endpoint("10.0.0.6", 80, health: HealthStatus.Timeout)));

        var mapped = EndpointAssignmentDecoder.Map(assignment);

        Assert.Equal(["10.0.0.1", "10.0.0.2"], mapped.RoutableEndpoints.Select(e => e.Host));
        var draining = mapped.Localities[0].Endpoints.Single(e => e.Endpoint.Host == "10.0.0.3");
        Assert.False(draining.IsRoutable);
        Assert.Equal("DRAINING", draining.Endpoint.Metadata[EndpointAssignmentDecoder.HealthKey]);
    }

    [Fact]
    public void Map_LocalityWithoutWeight_IsSkippedAsGrpcDoes()
    {
        var unweighted = Locality("zone-b", 1, 0, Endpoint("10.0.1.1", 80));
        unweighted.LoadBalancingWeight = null;

        var mapped = EndpointAssignmentDecoder.Map(Assignment("orders", Locality("zone-a", 1, 0, Endpoint("10.0.0.1", 80)), unweighted));

        Assert.Equal("10.0.0.1", Assert.Single(mapped.RoutableEndpoints).Host);
    }

    [Fact]
    public void Map_HugeWeights_AreScaledProportionallyUnderTheLodestarMaximum()
    {
        var mapped = EndpointAssignmentDecoder.Map(Assignment("orders",
            Locality("zone-a", 4_000, 0, Endpoint("10.0.0.1", 80, weight: 1_000), Endpoint("10.0.0.2", 80, weight: 500))));

        Assert.Equal(DiscoveredEndpoint.MaxWeight, mapped.RoutableEndpoints[0].Weight);
        Assert.Equal(DiscoveredEndpoint.MaxWeight / 2, mapped.RoutableEndpoints[1].Weight);
    }

    [Fact]
    public void Map_DropOverloads_AreKeptAsFractions()
    {
        var assignment = Assignment("orders", ("10.0.0.1", 80));
        assignment.Policy = new ClusterLoadAssignment.Types.Policy();
        assignment.Policy.DropOverloads.Add(new ClusterLoadAssignment.Types.Policy.Types.DropOverload
        {
            Category = "throttle",
            DropPercentage = new FractionalPercent { Numerator = 250, Denominator = FractionalPercent.Types.DenominatorType.TenThousand },
        });

        var drop = Assert.Single(EndpointAssignmentDecoder.Map(assignment).DropOverloads);

        Assert.Equal(("throttle", 0.025), (drop.Category, drop.Fraction));
    }

    [Theory]
    [InlineData("missing-locality", "endpoints[0]: locality is missing")]
    [InlineData("duplicate-locality", "locality {region 'region-1', zone 'zone-a', sub_zone 'zone-a-sub'} appears twice at priority 0")]
    [InlineData("priority-gap", "priority 1 is missing (priorities received: 0, 2)")]
    [InlineData("zero-weight", "lb_endpoints[0]: load_balancing_weight is 0")]
    [InlineData("duplicate-address", "address 10.0.0.1:80 appears more than once")]
    [InlineData("pipe", "the endpoint has no socket address")]
    [InlineData("port", "port 0 is outside 1-65535")]
    public void Decode_InvalidAssignment_IsRejectedNamingResourceAndField(string kind, string expected)
    {
        var assignment = kind switch
        {
            "missing-locality" => Assignment("orders", new LocalityLbEndpoints { LoadBalancingWeight = 1 }),
            "duplicate-locality" => Assignment("orders", Locality("zone-a", 1, 0, Endpoint("10.0.0.1", 80)), Locality("zone-a", 1, 0, Endpoint("10.0.0.2", 80))),
            "priority-gap" => Assignment("orders", Locality("zone-a", 1, 0, Endpoint("10.0.0.1", 80)), Locality("zone-b", 1, 2, Endpoint("10.0.0.2", 80))),
            "zero-weight" => Assignment("orders", Locality("zone-a", 1, 0, Endpoint("10.0.0.1", 80, weight: 0))),
            "duplicate-address" => Assignment("orders", Locality("zone-a", 1, 0, Endpoint("10.0.0.1", 80)), Locality("zone-b", 1, 0, Endpoint("10.0.0.1", 80))),
            "pipe" => Assignment("orders", Locality("zone-a", 1, 0, new LbEndpoint { Endpoint = new Envoy.Config.Endpoint.V3.Endpoint { Address = new Address { Pipe = new Pipe { Path = "/tmp/s" } } } })),
            _ => Assignment("orders", Locality("zone-a", 1, 0, Endpoint("10.0.0.1", 0))),
        };

        var result = EndpointAssignmentDecoder.Instance.Decode(Google.Protobuf.WellKnownTypes.Any.Pack(assignment));

        Assert.Equal("orders", result.Name);
        Assert.Null(result.Resource);
        Assert.StartsWith("ClusterLoadAssignment 'orders': ", result.Error, StringComparison.Ordinal);
        Assert.Contains(expected, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void TypeUrl_IsTheV3ClusterLoadAssignment()
        => Assert.Equal(XdsTypeUrls.ClusterLoadAssignment, Google.Protobuf.WellKnownTypes.Any.Pack(new ClusterLoadAssignment()).TypeUrl);
}
