using System.Diagnostics;
using Envoy.Config.Endpoint.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Xunit.Abstractions;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Endpoints;

/// <summary>
/// Bounds, in bytes, the cost of one EDS update (parse the response, validate, map to Lodestar endpoints) and the memory
/// an accepted assignment holds; the measured figures (with CPU time, which is reported, never asserted) go to the test
/// output for docs/xds.md.
/// </summary>
[Collection(MeasurementCollection.Name)]
public sealed class EndpointAssignmentCostTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(100, 150_000)]
    [InlineData(10_000, 15_000_000)]
    public void Update_EndpointCount_AllocatesWithinItsBudget(int endpoints, long budgetBytesPerUpdate)
    {
        var bytes = Response(endpoints).ToByteArray();
        for (var i = 0; i < 3; i++)
        {
            Decode(bytes);
        }

        var rounds = endpoints >= 10_000 ? 20 : 500;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var stopwatch = Stopwatch.StartNew();
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < rounds; i++)
        {
            Decode(bytes);
        }

        var allocated = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / rounds;
        var elapsed = stopwatch.Elapsed.TotalMilliseconds / rounds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / rounds;
        output.WriteLine($"EDS update, {endpoints} endpoints ({bytes.Length} bytes on the wire): {elapsed:0.###} ms elapsed, {cpu:0.###} ms CPU (process), {allocated} bytes allocated per update");

        Assert.InRange(allocated, 1, budgetBytesPerUpdate);
    }

    [Fact]
    public void Assignment_TenThousandEndpoints_RetainsUnderEightHundredKilobytesPerThousand()
    {
        var bytes = Response(10_000).ToByteArray();
        Decode(bytes);

        var before = GC.GetTotalMemory(forceFullCollection: true);
        var kept = Decode(bytes);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var perThousand = (after - before) / 10;
        output.WriteLine($"Accepted EDS assignment: {perThousand} bytes retained per 1,000 endpoints");
        GC.KeepAlive(kept);

        Assert.Equal(10_000, kept.RoutableEndpoints.Count);
        Assert.InRange(perThousand, 1, 800_000);
    }

    private static XdsEndpointAssignment Decode(byte[] response)
    {
        var message = DiscoveryResponse.Parser.ParseFrom(response);
        var result = EndpointAssignmentDecoder.Instance.Decode(message.Resources[0]);
        return (XdsEndpointAssignment)result.Resource!;
    }

    private static DiscoveryResponse Response(int endpoints)
    {
        var localities = new List<LocalityLbEndpoints>();
        for (var l = 0; l < 10; l++)
        {
            var locality = Locality($"zone-{l}", 1, 0);
            for (var e = 0; e < endpoints / 10; e++)
            {
                var index = (l * (endpoints / 10)) + e;
                locality.LbEndpoints.Add(Endpoint($"10.{l}.{index / 250}.{(index % 250) + 1}", 8080));
            }

            localities.Add(locality);
        }

        var response = new DiscoveryResponse { TypeUrl = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", VersionInfo = "1", Nonce = "n" };
        response.Resources.Add(Any.Pack(Assignment("orders", [.. localities])));
        return response;
    }
}

/// <summary>Tests that read process-wide memory figures run alone, after the parallel ones.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MeasurementCollection
{
    public const string Name = "Measurements";
}
