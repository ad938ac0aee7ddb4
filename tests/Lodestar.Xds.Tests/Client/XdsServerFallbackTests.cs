using System.Text.Json.Nodes;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Resources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Client;

/// <summary>A bootstrap with two <c>xds_servers</c>: fallback to the second, and back to the first (gRFC A71).</summary>
public sealed class XdsServerFallbackTests
{
    [Fact]
    public async Task Watch_PrimaryUnreachable_FallsBackToTheSecondThenReturnsWhenThePrimaryAnswers()
    {
        // Arrange: the primary is down; the secondary serves cluster a at 10.0.0.2.
        await using var primary = await FakeXdsServer.StartAsync();
        await using var secondary = await FakeXdsServer.StartAsync();
        await primary.StopAsync();
        Publish(primary, "10.0.0.1");
        Publish(secondary, "10.0.0.2");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var services = Build(TwoServerBootstrap(primary, secondary), clock);
        var resolver = services.GetRequiredService<IEndpointResolver>();

        // Act 1: the first stream fails to reach the primary, the next one goes to the secondary.
        var first = await resolver.GetEndpointsAsync("a", "xds");

        // Assert 1
        Assert.Equal("10.0.0.2:8080", Assert.Single(first.Endpoints).Address);
        Assert.Equal(0, primary.StreamsOpened);

        // Act 2: the primary comes back; the client's probe finds it after a backoff delay.
        await primary.StartAgainAsync();
        await Eventually.TrueAsync(async () =>
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            var set = await resolver.GetEndpointsAsync("a", "xds");
            return set.Endpoints.Single().Address == "10.0.0.1:8080";
        }, TimeSpan.FromSeconds(20), "the client goes back to the primary and takes its endpoints");

        // Assert 2: the fallback's stream is closed; the primary keeps one stream.
        await Eventually.TrueAsync(() => secondary.OpenStreams == 0 && primary.OpenStreams == 1, TimeSpan.FromSeconds(10),
            $"only the primary's stream stays open (primary {primary.OpenStreams}, secondary {secondary.OpenStreams})");
    }

    [Fact]
    public async Task Watch_PrimaryReachable_NeverOpensAStreamToTheSecond()
    {
        // Arrange
        await using var primary = await FakeXdsServer.StartAsync();
        await using var secondary = await FakeXdsServer.StartAsync();
        Publish(primary, "10.0.0.1");
        Publish(secondary, "10.0.0.2");
        await using var services = Build(TwoServerBootstrap(primary, secondary), new FakeTimeProvider(DateTimeOffset.UtcNow));

        // Act
        var set = await services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("a", "xds");

        // Assert
        Assert.Equal("10.0.0.1:8080", Assert.Single(set.Endpoints).Address);
        Assert.Equal(0, secondary.StreamsOpened);
    }

    [Fact]
    public async Task Watch_BothServersUnreachable_TriesThemInOrderThenBacksOffFromThePrimary()
    {
        // Arrange: both down; cluster a only on the secondary, which comes back first.
        await using var primary = await FakeXdsServer.StartAsync();
        await using var secondary = await FakeXdsServer.StartAsync();
        await primary.StopAsync();
        await secondary.StopAsync();
        Publish(secondary, "10.0.0.2");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var services = Build(TwoServerBootstrap(primary, secondary), clock);
        var resolver = services.GetRequiredService<IEndpointResolver>();
        var sets = new List<string>();
        using var watch = resolver.Watch("a", "xds", s => { lock (sets) { sets.Add(s.Endpoints.Single().Address); } });

        // Act
        await secondary.StartAgainAsync();
        await Eventually.TrueAsync(() =>
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            lock (sets)
            {
                return sets.Count > 0;
            }
        }, TimeSpan.FromSeconds(20), "a later round reaches the secondary");

        // Assert
        lock (sets)
        {
            Assert.Equal("10.0.0.2:8080", sets[0]);
        }

        Assert.Equal(0, primary.StreamsOpened);
    }

    private static void Publish(FakeXdsServer server, string host)
    {
        server.SetResource(XdsTypeUrls.Cluster, "a", EdsCluster("a"));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a", Assignment("a", (host, 8080)));
    }

    private static string TwoServerBootstrap(FakeXdsServer primary, FakeXdsServer secondary)
    {
        var bootstrap = JsonNode.Parse(primary.Bootstrap())!;
        var second = JsonNode.Parse(secondary.Bootstrap())!["xds_servers"]![0]!.DeepClone();
        bootstrap["xds_servers"]!.AsArray().Add(second);
        return bootstrap.ToJsonString();
    }

    private static ServiceProvider Build(string bootstrap, TimeProvider clock)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(clock);
        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(10)).AddXds(o => o.BootstrapJson = bootstrap);
        return services.BuildServiceProvider();
    }
}
