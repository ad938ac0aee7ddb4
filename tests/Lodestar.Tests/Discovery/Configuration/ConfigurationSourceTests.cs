using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Tests.Discovery.Configuration;

public sealed class ConfigurationSourceTests
{
    [Fact]
    public async Task Resolve_BadEntries_AreReportedWithKeyPathAndSkipped()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.Replace(
        [
            new("Lodestar:Services:orders:Endpoints:0", "http://10.0.0.5:8080"),
            new("Lodestar:Services:orders:Endpoints:1", "htp:/x"),
            new("Lodestar:Services:orders:Endpoints:2:Address", "10.0.0.6:8080"),
            new("Lodestar:Services:orders:Endpoints:2:Weight", "-3"),
            new("Lodestar:Services:orders:Endpoints:3:Address", "10.0.0.7:8080"),
            new("Lodestar:Services:orders:Endpoints:3:Weight", "4"),
            new("Lodestar:Services:orders:Endpoints:3:Zone", "eu-1a"),
            new("Lodestar:Services:orders:Endpoints:3:Metadata:version", "v2"),
            new("Lodestar:Services:orders:Endpoints:4:Weight", "1"),
        ]);
        var resolver = client.Services.GetRequiredService<IEndpointResolver>();

        var set = await resolver.GetEndpointsAsync("orders");

        Assert.Equal(["10.0.0.5:8080", "10.0.0.7:8080"], set.Endpoints.Select(e => e.Address));
        var weighted = set.Endpoints[1];
        Assert.Equal(4, weighted.Weight);
        Assert.Equal("eu-1a", weighted.Zone);
        Assert.Equal("v2", weighted.Metadata["version"]);
        var warnings = client.Logs.Entries.Where(e => e.EventId.Name!.StartsWith("SourceError", StringComparison.Ordinal)).Select(e => e.Message).ToList();
        Assert.Contains(warnings, m => m.Contains("'Lodestar:Services:orders:Endpoints:1'", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.Contains("'Lodestar:Services:orders:Endpoints:2'", StringComparison.Ordinal) && m.Contains("weight -3", StringComparison.Ordinal));
        Assert.Contains(warnings, m => m.Contains("'Lodestar:Services:orders:Endpoints:4' has no Address", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Resolve_ServiceDiscoveryShape_IsRead()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.Replace(
        [
            new("Services:basket:https:0", "10.0.0.9:8443"),
            new("Services:basket:http:0", "10.0.0.9:8080"),
            new("Services:basket:grpc:0", "10.0.0.9:9000"),
        ]);

        var set = await client.Services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("basket");

        Assert.Equal(2, set.Count);
        Assert.Contains(set.Endpoints, e => e.Scheme == "https" && e.Port == 8443);
        Assert.Contains(set.Endpoints, e => e.Scheme == "http" && e.Port == 8080);
    }

    [Fact]
    public async Task Watch_Reload_PublishesNewVersionsAndKeepsLastGoodOnBadReload()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.SetEndpoints("orders", "10.0.0.1:80");
        var resolver = client.Services.GetRequiredService<IEndpointResolver>();
        var seen = new List<int>();
        using var subscription = resolver.Watch("orders", null, set => { lock (seen) { seen.Add(set.Count); } });
        await Eventually.TrueAsync(() => { lock (seen) { return seen.Count == 1; } }, TimeSpan.FromSeconds(5), "first set");

        client.Configuration.SetEndpoints("orders", "10.0.0.1:80", "10.0.0.2:80");
        await Eventually.TrueAsync(() => { lock (seen) { return seen.LastOrDefault() == 2; } }, TimeSpan.FromSeconds(5), "added");
        client.Configuration.SetEndpoints("orders", "10.0.0.2:80");
        await Eventually.TrueAsync(() => { lock (seen) { return seen.Count == 3 && seen[2] == 1; } }, TimeSpan.FromSeconds(5), "removed");

        var current = await resolver.GetEndpointsAsync("orders");
        Assert.Equal(3, current.Version);
        Assert.Equal("10.0.0.2:80", current.Endpoints.Single().Address);
    }
}
