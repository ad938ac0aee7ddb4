using Envoy.Config.Endpoint.V3;
using Envoy.Type.V3;
using Lodestar.Resilience.Admission;
using Lodestar.Testing;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using static Lodestar.Xds.Tests.Infrastructure.XdsTrafficHarness;

namespace Lodestar.Xds.Tests.Routing;

/// <summary>EDS drop overloads on the <c>HttpClient</c> path, against the fake control plane and real backends.</summary>
public sealed class XdsDropOverloadTrafficTests
{
    [Fact]
    public async Task Send_HundredPercentDropThenDropRemoved_EveryRequestFailsUnsentThenRequestsFlow()
    {
        // Arrange: cluster "a" drops everything in category "lb"; the client would retry three times.
        await using var h = await StartAsync(["a"], client: o => o.MaxAttempts = 3);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", WithDrops(Assignment("a", ("127.0.0.1", h.Backends["a"].Port)), ("lb", 100)));
        h.SetRoutes(PrefixRoute("/", "a"));

        // Act + Assert: each request fails at once with the named drop and never reaches the backend.
        for (var i = 0; i < 10; i++)
        {
            var error = await Assert.ThrowsAsync<ServiceOverloadedException>(() => h.GetInstanceAsync("/"));
            Assert.Equal("The request to xDS cluster 'a' was dropped by the control plane's drop overload 'lb' (100 % of requests); it was not sent.", error.Message);
            Assert.Equal("a", error.ServiceName);
        }

        Assert.Equal(0, h.Backends["a"].Requests);

        // Act: a new EDS push without drops.
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", ("127.0.0.1", h.Backends["a"].Port)));

        // Assert: requests flow again.
        await Eventually.TrueAsync(async () => await TrySendAsync(h) == "a", TimeSpan.FromSeconds(10), "the push without drops reaches traffic");
        Assert.Equal("a", await h.GetInstanceAsync("/"));
    }

    [Fact]
    public async Task Send_TwoCategoriesBothDropping_TheFirstCategoryNamesTheDrop()
    {
        await using var h = await StartAsync(["a"]);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", WithDrops(Assignment("a", ("127.0.0.1", h.Backends["a"].Port)), ("lb", 100), ("throttle", 100)));
        h.SetRoutes(PrefixRoute("/", "a"));

        var error = await Assert.ThrowsAsync<ServiceOverloadedException>(() => h.GetInstanceAsync("/"));

        Assert.Contains("drop overload 'lb'", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, h.Backends["a"].Requests);
    }

    [Fact]
    public async Task Send_ScriptedDrawsAgainstTwoCategories_DropsByCategoryInOrder()
    {
        // The router's draws: the route (a single cluster) draws none, so each request draws for "lb" (30 %) then,
        // if not dropped, for "throttle" (50 %).
        double[] script = [0.10, 0.40, 0.40, 0.90, 0.60];
        var next = 0;
        await using var h = await StartAsync(["a"], random: () => script[next++]);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", WithDrops(Assignment("a", ("127.0.0.1", h.Backends["a"].Port)), ("lb", 30), ("throttle", 50)));
        h.SetRoutes(PrefixRoute("/", "a"));

        var first = await Assert.ThrowsAsync<ServiceOverloadedException>(() => h.GetInstanceAsync("/")); // 0.10 < 0.3
        var second = await Assert.ThrowsAsync<ServiceOverloadedException>(() => h.GetInstanceAsync("/")); // 0.40, then 0.40 < 0.5
        var third = await h.GetInstanceAsync("/"); // 0.90, then 0.60

        Assert.Contains("'lb'", first.Message, StringComparison.Ordinal);
        Assert.Contains("'throttle'", second.Message, StringComparison.Ordinal);
        Assert.Equal("a", third);
        Assert.Equal(5, next);
        Assert.Equal(1, h.Backends["a"].Requests);
    }

    /// <summary>Adds drop overloads to an assignment, each with its percentage.</summary>
    internal static ClusterLoadAssignment WithDrops(ClusterLoadAssignment assignment, params (string Category, uint Percent)[] drops)
    {
        assignment.Policy = new ClusterLoadAssignment.Types.Policy();
        foreach (var (category, percent) in drops)
        {
            assignment.Policy.DropOverloads.Add(new ClusterLoadAssignment.Types.Policy.Types.DropOverload
            {
                Category = category,
                DropPercentage = new FractionalPercent { Numerator = percent, Denominator = FractionalPercent.Types.DenominatorType.Hundred },
            });
        }

        return assignment;
    }

    private static async Task<string?> TrySendAsync(XdsTrafficHarness h)
    {
        try
        {
            return await h.GetInstanceAsync("/");
        }
        catch (ServiceOverloadedException)
        {
            return null;
        }
    }
}
