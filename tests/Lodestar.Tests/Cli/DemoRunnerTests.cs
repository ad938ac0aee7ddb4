using System.Text.Json;
using Lodestar.Cli.Demo;
using Lodestar.LoadBalancing;

namespace Lodestar.Tests.Cli;

public sealed class DemoRunnerTests
{
    [Theory]
    [InlineData(LoadBalancingPolicies.RoundRobin, false)]
    [InlineData(LoadBalancingPolicies.LeastRequest, true)]
    public async Task Run_SlowRestartAndKill_NoRequestFails(string policy, bool http2)
    {
        // Arrange: a short run with the full scenario (slow instance, rolling restart, kill without warning).
        var options = new DemoOptions { Policy = policy, Instances = 4, Duration = TimeSpan.FromSeconds(8), Rps = 150, Concurrency = 8, Http2 = http2, Json = true };
        await using var runner = new DemoRunner(options);

        // Act
        await runner.RunAsync(CancellationToken.None);

        // Assert: every request succeeded although instances slowed, restarted and died, and the JSON has the documented shape.
        using var json = JsonDocument.Parse(DemoReport.Json(runner));
        var root = json.RootElement;
        Assert.Equal(policy, root.GetProperty("policy").GetString());
        Assert.Equal(options.MaxRequests, root.GetProperty("requests").GetInt64());
        Assert.Equal(0, root.GetProperty("failed").GetInt64());
        Assert.True(root.GetProperty("retried").GetInt64() >= 0);
        Assert.True(root.GetProperty("latency").GetProperty("p99Ms").GetDouble() > 0);
        var endpoints = root.GetProperty("endpoints").EnumerateArray().ToList();
        Assert.True(endpoints.Count >= 2 * options.Instances - 1, "every instance restarted on a new port took traffic");
        Assert.All(endpoints, e => Assert.Equal(0, e.GetProperty("failed").GetInt64()));
        Assert.Contains(runner.RecentEvents(100), e => e.Contains("killed", StringComparison.Ordinal));
    }
}
