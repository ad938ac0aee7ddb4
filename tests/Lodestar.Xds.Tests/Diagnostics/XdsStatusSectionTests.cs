using System.Buffers;
using System.Text.Json;
using Lodestar.Diagnostics;
using Lodestar.Discovery;
using Lodestar.Testing;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Resources;
using Microsoft.Extensions.DependencyInjection;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Diagnostics;

public sealed class XdsStatusSectionTests : IDisposable
{
    private const string Token = "tok-7qz9w2lmxs4k"; // lower case: service names are looked up in lower case

    private readonly string _tokenFile = Path.GetTempFileName();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WriteTo_PushNacked_SectionShowsTheNackWithItsDetailAndNeverTheToken(bool delta)
    {
        // Arrange: a good cluster, then a rejected one whose name carries the call-credential token, as a server could echo it.
        await File.WriteAllTextAsync(_tokenFile, Token + "\n");
        await using var server = await FakeXdsServer.StartAsync();
        var leaky = "leak-" + Token;
        var bad = EdsCluster(leaky);
        bad.LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.ClusterProvided;
        server.SetResources(XdsTypeUrls.Cluster, [("orders", EdsCluster("orders")), (leaky, bad)]);
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", Assignment("orders", ("10.0.0.1", 8080)));
        await using var provider = BuildProvider(server.Bootstrap(tokenFile: _tokenFile), delta);
        var section = Assert.Single(provider.GetServices<ILodestarStatusSection>());
        var resolver = provider.GetRequiredService<IEndpointResolver>();
        Assert.Single((await resolver.GetEndpointsAsync("orders", "xds")).Endpoints);

        // Act: subscribing to the bad cluster makes the server push it; the client rejects it.
        using var watch = resolver.Watch(leaky, "xds", static _ => { });
        await Eventually.TrueAsync(() => Cds(Write(section)).GetProperty("lastNack").ValueKind == JsonValueKind.Object,
            TimeSpan.FromSeconds(10), "the CDS NACK shows in the section");
        var text = Write(section).GetRawText();
        var json = JsonDocument.Parse(text).RootElement;

        // Assert
        Assert.Equal("xds", section.Name);
        Assert.Equal(server.Target, json.GetProperty("server").GetString());
        var cds = Cds(json);
        var nack = cds.GetProperty("lastNack");
        Assert.Contains("Cluster 'leak-" + SecretRedactor.Mask + "'", nack.GetProperty("errorDetail").GetString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(nack.GetProperty("version").GetString()));
        Assert.StartsWith(server.NoncePrefix, nack.GetProperty("nonce").GetString(), StringComparison.Ordinal);
        Assert.True(nack.GetProperty("at").GetDateTimeOffset() > DateTimeOffset.UnixEpoch);
        Assert.StartsWith(server.NoncePrefix, cds.GetProperty("lastNonce").GetString(), StringComparison.Ordinal);
        Assert.Equal(delta, string.IsNullOrEmpty(cds.GetProperty("acceptedVersion").GetString())); // a type's version is state of the world's
        var subscribed = cds.GetProperty("subscribed").EnumerateArray().Select(e => e.GetString()).ToArray();
        Assert.Contains("orders", subscribed);
        Assert.Contains("leak-" + SecretRedactor.Mask, subscribed);
        Assert.Equal(subscribed.Length, cds.GetProperty("subscribedCount").GetInt32());
        Assert.DoesNotContain(Token, text, StringComparison.Ordinal);
        Assert.DoesNotContain("jwt_token_file", text, StringComparison.Ordinal);
        Assert.DoesNotContain(_tokenFile, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WriteTo_ClientNotUsedYet_SaysNotStartedAndStartsNothing()
    {
        // Arrange
        await using var server = await FakeXdsServer.StartAsync();
        await using var provider = BuildProvider(server.Bootstrap());
        var section = Assert.Single(provider.GetServices<ILodestarStatusSection>());

        // Act
        var json = Write(section);

        // Assert
        Assert.StartsWith("not started", json.GetProperty("state").GetString(), StringComparison.Ordinal);
        Assert.False(json.TryGetProperty("types", out _));
        Assert.Equal(0, server.StreamsOpened);
    }

    public void Dispose() => File.Delete(_tokenFile);

    private static ServiceProvider BuildProvider(string bootstrap, bool delta = false)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(10)).AddXds(o =>
        {
            o.BootstrapJson = bootstrap;
            o.UseDelta = delta;
        });
        return services.BuildServiceProvider();
    }

    private static JsonElement Write(ILodestarStatusSection section)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            section.WriteTo(writer);
        }

        return JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
    }

    private static JsonElement Cds(JsonElement json)
        => json.GetProperty("types").EnumerateArray().Single(t => t.GetProperty("type").GetString() == "CDS");
}
