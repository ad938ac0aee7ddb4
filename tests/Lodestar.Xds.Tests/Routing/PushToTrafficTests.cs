using System.Diagnostics;
using System.Globalization;
using Lodestar.Xds.Tests.Infrastructure;
using Xunit.Abstractions;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;
using static Lodestar.Xds.Tests.Infrastructure.XdsTrafficHarness;

namespace Lodestar.Xds.Tests.Routing;

/// <summary>
/// Measures push-to-traffic time on loopback: from the control plane's push of a route change to the first request
/// that the new route sends to its cluster. Times are printed, never asserted; the loop is bounded in count and time.
/// </summary>
public sealed class PushToTrafficTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RouteChange_PushedTwentyTimes_EveryPushReachesTrafficAndTimesArePrinted()
    {
        await using var h = await StartAsync(["blue", "green"]);
        h.SetRoutes(PrefixRoute("/", "blue"));
        Assert.Equal("blue", await h.GetInstanceAsync("/"));
        h.SetRoutes(PrefixRoute("/", "green"));
        Assert.Equal("green", await RouteToAsync(h, "green")); // warms the second cluster's balancer and connection

        var samples = new List<double>();
        for (var push = 0; push < 20; push++)
        {
            var target = push % 2 == 0 ? "blue" : "green"; // alternates, starting from green
            var started = Stopwatch.GetTimestamp();
            h.SetRoutes(PrefixRoute("/", target));
            var answered = await RouteToAsync(h, target);
            samples.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            Assert.Equal(target, answered);
        }

        samples.Sort();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"push-to-traffic over {samples.Count} route pushes: median {samples[samples.Count / 2]:0.0} ms, p95 {samples[(int)(samples.Count * 0.95) - 1]:0.0} ms, max {samples[^1]:0.0} ms"));
    }

    /// <summary>Sends requests back to back until one reaches <paramref name="target"/>; at most 5 s or 50,000 requests.</summary>
    private static async Task<string> RouteToAsync(XdsTrafficHarness h, string target)
    {
        var deadline = Stopwatch.GetTimestamp() + (5 * Stopwatch.Frequency);
        var instance = string.Empty;
        for (var i = 0; i < 50_000 && Stopwatch.GetTimestamp() < deadline; i++)
        {
            instance = await h.GetInstanceAsync("/");
            if (instance == target)
            {
                break;
            }
        }

        return instance;
    }
}
