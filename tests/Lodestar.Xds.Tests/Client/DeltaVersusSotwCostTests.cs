using System.Diagnostics;
using Envoy.Config.Endpoint.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Discovery;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Bootstrap.Internal;
using Lodestar.Xds.Client;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Endpoints;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Client;

/// <summary>
/// Delta against state of the world at 1,000 endpoints when one endpoint changes: bytes on the wire per update (the
/// response and the client's ACK, protobuf payload) and the client's CPU and allocation to handle the response (parse
/// from bytes, decode, validate, apply; the watchers' callbacks run on another thread and are not counted). Printed for
/// docs/xds.md; only the wire-size relation and the delivered change are asserted.
/// </summary>
[Collection(MeasurementCollection.Name)]
public sealed class DeltaVersusSotwCostTests(ITestOutputHelper output)
{
    private const int Rounds = 200;

    [Theory]
    [InlineData(1, 1000)]
    [InlineData(100, 10)]
    public async Task Update_OneEndpointChanges_DeltaSendsOnlyTheChangedClusterAndBothApplyIt(int clusters, int endpointsPerCluster)
    {
        var sotw = await MeasureAsync(clusters, endpointsPerCluster, delta: false);
        var delta = await MeasureAsync(clusters, endpointsPerCluster, delta: true);
        output.WriteLine($"{clusters} cluster(s) x {endpointsPerCluster} endpoints, one endpoint changes per update ({Rounds} updates):");
        output.WriteLine($"  state of the world: {sotw}");
        output.WriteLine($"  delta:              {delta}");

        // One cluster: both send the whole assignment. Many clusters: state of the world sends every subscribed
        // assignment, delta only the changed one.
        if (clusters == 1)
        {
            Assert.InRange(delta.ResponseBytes, sotw.ResponseBytes * 0.9, sotw.ResponseBytes * 1.1);
        }
        else
        {
            Assert.True(delta.ResponseBytes * 20 < sotw.ResponseBytes, $"delta {delta.ResponseBytes} B against state of the world {sotw.ResponseBytes} B");
            Assert.True(delta.AllocatedBytes * 5 < sotw.AllocatedBytes, $"delta {delta.AllocatedBytes} B against state of the world {sotw.AllocatedBytes} B allocated");
        }
    }

    private static async Task<Figures> MeasureAsync(int clusters, int endpointsPerCluster, bool delta)
    {
        // A client whose stream never opens (its server is stopped and the clock does not move): the test hands it the
        // responses itself, so only the client's own work is measured.
        await using var stopped = await FakeXdsServer.StartAsync();
        await stopped.StopAsync();
        var options = new XdsOptions { BootstrapJson = stopped.Bootstrap(), UseDelta = delta };
        await using var client = new XdsClient(XdsBootstrapParser.Load(options, static _ => null), options, new FakeTimeProvider(DateTimeOffset.UtcNow),
            NullLogger.Instance, new SecretRedactor());
        var names = Enumerable.Range(0, clusters).Select(static c => $"cluster-{c:000}").ToArray();
        var last = new TaskCompletionSource<XdsEndpointAssignment>(TaskCreationOptions.RunContinuationsAsynchronously);
        var expectedLast = FirstAddress(Rounds);
        foreach (var name in names)
        {
            client.Watch(EndpointAssignmentDecoder.Instance, name, new XdsWatcher<XdsEndpointAssignment>(a =>
            {
                if (a.RoutableEndpoints[0].Address == expectedLast)
                {
                    last.TrySetResult(a);
                }
            }));
        }

        // The initial state, then one update per round in which endpoint 0 of cluster 0 moves.
        Handle(client, Build(names, endpointsPerCluster, 0, delta, initial: true), delta);
        var updates = Enumerable.Range(1, Rounds).Select(round => Build(names, endpointsPerCluster, round, delta, initial: false)).ToArray();
        var ackBytes = delta
            ? new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.ClusterLoadAssignment, ResponseNonce = "nonce-1" }.CalculateSize()
            : AckOf(names).CalculateSize();

        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        foreach (var update in updates)
        {
            Handle(client, update, delta);
        }

        var allocated = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / Rounds;
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / Rounds;

        // The last change reached the watcher of cluster 0.
        var delivered = await last.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(endpointsPerCluster, delivered.RoutableEndpoints.Count);
        return new Figures(updates[^1].Length, ackBytes, cpu, allocated);
    }

    private static void Handle(XdsClient client, byte[] bytes, bool delta)
    {
        if (delta)
        {
            client.HandleDelta(DeltaDiscoveryResponse.Parser.ParseFrom(bytes));
        }
        else
        {
            client.HandleSotw(DiscoveryResponse.Parser.ParseFrom(bytes));
        }
    }

    /// <summary>The response the server sends for a round: state of the world carries every assignment, delta the changed one (all of them initially).</summary>
    private static byte[] Build(string[] names, int endpointsPerCluster, int round, bool delta, bool initial)
    {
        var version = round.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var nonce = "nonce-" + version;
        if (delta)
        {
            var response = new DeltaDiscoveryResponse { TypeUrl = XdsTypeUrls.ClusterLoadAssignment, SystemVersionInfo = version, Nonce = nonce };
            for (var c = 0; c < (initial ? names.Length : 1); c++)
            {
                response.Resources.Add(new Resource { Name = names[c], Version = version, Resource_ = Any.Pack(AssignmentOf(names[c], c, endpointsPerCluster, round)) });
            }

            return response.ToByteArray();
        }

        var sotw = new DiscoveryResponse { TypeUrl = XdsTypeUrls.ClusterLoadAssignment, VersionInfo = version, Nonce = nonce };
        for (var c = 0; c < names.Length; c++)
        {
            sotw.Resources.Add(Any.Pack(AssignmentOf(names[c], c, endpointsPerCluster, round)));
        }

        return sotw.ToByteArray();
    }

    private static ClusterLoadAssignment AssignmentOf(string name, int cluster, int endpointsPerCluster, int round)
    {
        var endpoints = new LbEndpoint[endpointsPerCluster];
        for (var e = 0; e < endpointsPerCluster; e++)
        {
            var address = cluster == 0 && e == 0 ? FirstAddress(round).Split(':')[0] : $"10.{cluster % 250}.{e / 250}.{(e % 250) + 1}";
            endpoints[e] = Endpoint(address, 8080);
        }

        return Assignment(name, Locality("zone-a", 1, 0, endpoints));
    }

    /// <summary>The address of endpoint 0 of cluster 0 in a round (a different one every round).</summary>
    private static string FirstAddress(int round) => $"10.255.{round / 250}.{(round % 250) + 1}:8080";

    private static DiscoveryRequest AckOf(string[] names)
    {
        var ack = new DiscoveryRequest { TypeUrl = XdsTypeUrls.ClusterLoadAssignment, VersionInfo = "1", ResponseNonce = "nonce-1" };
        ack.ResourceNames.AddRange(names);
        return ack;
    }

    private sealed record Figures(int ResponseBytes, int AckBytes, double CpuMilliseconds, long AllocatedBytes)
    {
        public override string ToString()
            => $"response {ResponseBytes:N0} B + ACK {AckBytes:N0} B on the wire, {CpuMilliseconds:0.###} ms CPU (process), {AllocatedBytes:N0} B allocated per update";
    }
}
