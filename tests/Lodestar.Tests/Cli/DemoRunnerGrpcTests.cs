using System.Text.Json;
using Lodestar.Cli.Demo;
using Lodestar.LoadBalancing;

namespace Lodestar.Tests.Cli;

public sealed class DemoRunnerGrpcTests
{
    [Theory]
    [InlineData(LoadBalancingPolicies.RoundRobin)]
    [InlineData(LoadBalancingPolicies.LeastRequest)]
    public async Task RunGrpc_SlowRestartAndKill_NoCallFails(string policy)
    {
        // Arrange: a short run with the full scenario (slow instance, rolling restart, kill without warning), as gRPC calls.
        var options = new DemoOptions { Policy = policy, Instances = 4, Duration = TimeSpan.FromSeconds(8), Rps = 150, Concurrency = 8, Grpc = true, Json = true };
        await using var runner = new DemoRunner(options);

        // Act
        await runner.RunAsync(CancellationToken.None);

        // Assert: every call succeeded although instances slowed, restarted and died, and the JSON has the HTTP demo's shape.
        using var json = JsonDocument.Parse(DemoReport.Json(runner));
        var root = json.RootElement;
        Assert.Equal(policy, root.GetProperty("policy").GetString());
        Assert.Equal(options.MaxRequests, root.GetProperty("requests").GetInt64());
        Assert.Equal(0, root.GetProperty("failed").GetInt64());
        Assert.True(root.GetProperty("retried").GetInt64() >= 0);
        Assert.True(root.GetProperty("latency").GetProperty("p99Ms").GetDouble() > 0);
        var endpoints = root.GetProperty("endpoints").EnumerateArray().ToList();
        Assert.True(endpoints.Count >= 2 * options.Instances - 1, "every instance restarted on a new port took calls");
        Assert.All(endpoints, e => Assert.Equal(0, e.GetProperty("failed").GetInt64()));
        Assert.All(endpoints, e => Assert.NotNull(runner.FindBackend(e.GetProperty("address").GetString()!)));
        Assert.Contains(runner.RecentEvents(100), e => e.Contains("gRPC over HTTP/2", StringComparison.Ordinal));
        Assert.Contains(runner.RecentEvents(100), e => e.Contains("killed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunGrpc_PolicyWithoutGrpcBalancer_FailsNamingThePolicy()
    {
        // Arrange
        var options = new DemoOptions { Policy = LoadBalancingPolicies.Maglev, Instances = 2, Duration = TimeSpan.FromSeconds(5), Rps = 10, Grpc = true, Json = true };
        await using var runner = new DemoRunner(options);

        // Act
        var error = await Assert.ThrowsAsync<Lodestar.Cli.CliException>(() => runner.RunAsync(CancellationToken.None));

        // Assert
        Assert.Contains(LoadBalancingPolicies.Maglev, error.Message, StringComparison.Ordinal);
        Assert.Contains(LoadBalancingPolicies.PeakEwma, error.Message, StringComparison.Ordinal);
    }
}
