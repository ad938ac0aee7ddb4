using Grpc.Core;
using Lodestar.Testing;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using Lodestar.Xds.Tests.Protos;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using static Lodestar.Xds.Tests.Routing.XdsDropOverloadTrafficTests;

namespace Lodestar.Xds.Tests.Channels;

/// <summary>EDS drop overloads on <c>xds:///</c> channels, against the fake control plane and real gRPC backends.</summary>
public sealed class XdsChannelDropOverloadTests
{
    [Fact]
    public async Task Call_HundredPercentDropThenDropRemoved_EveryCallFailsUnsentThenCallsFlow()
    {
        // Arrange: cluster "a" drops everything in category "lb".
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", WithDrops(Assignment("a", ("127.0.0.1", h.Backends["a"].Port)), ("lb", 100)));
        h.SetRoutes(PrefixRoute("/", "a"));

        // Act + Assert: each call fails Unavailable with the named drop, wait-for-ready ones too, and none is sent.
        for (var i = 0; i < 10; i++)
        {
            var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)).WithWaitForReady(i % 2 == 0);
            var error = await Assert.ThrowsAsync<RpcException>(async () => await h.Client.HelloAsync(new HelloRequest(), options));
            Assert.Equal(StatusCode.Unavailable, error.StatusCode);
            Assert.Equal("The request to xDS cluster 'a' was dropped by the control plane's drop overload 'lb' (100 % of requests); it was not sent.", error.Status.Detail);
        }

        Assert.Equal(0, h.Backends["a"].Calls);

        // Act: a new EDS push without drops.
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", h.Backends["a"].Port)));

        // Assert: calls flow again.
        await Eventually.TrueAsync(async () => await TryCallAsync(h) == "a", TimeSpan.FromSeconds(10), "the push without drops reaches calls");
        Assert.Equal("a", await h.CallAsync());
    }

    private static async Task<string?> TryCallAsync(XdsChannelHarness h)
    {
        try
        {
            return await h.CallAsync();
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            return null;
        }
    }
}
