using System.Text;
using System.Threading.Channels;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Http;
using Lodestar.Testing;
using Lodestar.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
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
    public async Task Watch_Reload_PublishesAddedAndRemovedEndpointsAsNewVersions()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.SetEndpoints("orders", "10.0.0.1:80");
        var resolver = client.Services.GetRequiredService<IEndpointResolver>();
        // By version: a subscription made while a set is being published may be handed that set twice.
        var seen = new SortedDictionary<long, int>();
        using var subscription = resolver.Watch("orders", null, set => { lock (seen) { seen[set.Version] = set.Count; } });
        await Eventually.TrueAsync(() => { lock (seen) { return seen.Count == 1; } }, TimeSpan.FromSeconds(5), "first set");

        client.Configuration.SetEndpoints("orders", "10.0.0.1:80", "10.0.0.2:80");
        await Eventually.TrueAsync(() => { lock (seen) { return seen.GetValueOrDefault(2) == 2; } }, TimeSpan.FromSeconds(5), "added");
        client.Configuration.SetEndpoints("orders", "10.0.0.2:80");
        await Eventually.TrueAsync(() => { lock (seen) { return seen.GetValueOrDefault(3) == 1; } }, TimeSpan.FromSeconds(5), "removed");

        var current = await resolver.GetEndpointsAsync("orders");
        Assert.Equal(3, current.Version);
        Assert.Equal("10.0.0.2:80", current.Endpoints.Single().Address);
    }

    [Fact]
    public async Task Reload_EveryEntryInvalid_KeepsPreviousSetAndNamesTheList()
    {
        await using var client = LodestarClient.Create();
        await using var watch = await WatchAsync(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80","10.0.0.2:80"]}}}}""");

        Load(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["htp:/x",{"Weight":2},"10.0.0.3:99999"]}}}}""");

        var error = await watch.NextErrorAsync("None of the 3 entries");
        Assert.Contains("'Lodestar:Services:orders:Endpoints'", error, StringComparison.Ordinal);
        Assert.Contains("previous endpoint set stays in force", error, StringComparison.Ordinal);
        var current = await watch.Resolver.GetEndpointsAsync("orders");
        Assert.Equal(1, current.Version);
        Assert.Equal(["10.0.0.1:80", "10.0.0.2:80"], current.Endpoints.Select(e => e.Address));
        Assert.Contains(client.Logs.Entries, e => e.EventId.Name == "SourceError" && e.Message.Contains("None of the 3 entries of 'Lodestar:Services:orders:Endpoints'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_EndpointsBecomesScalarString_KeepsPreviousSetAndLogsTheKeyPath()
    {
        await using var client = LodestarClient.Create();
        await using var watch = await WatchAsync(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80"]}}}}""");

        Load(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":"10.0.0.9:80"}}}}""");

        var error = await watch.NextErrorAsync("single string");
        Assert.Contains("'Lodestar:Services:orders:Endpoints'", error, StringComparison.Ordinal);
        var current = await watch.Resolver.GetEndpointsAsync("orders");
        Assert.Equal(1, current.Version);
        Assert.Equal("10.0.0.1:80", current.Endpoints.Single().Address);
        Assert.Contains(client.Logs.Entries, e => e.EventId.Name == "SourceError" && e.Message.Contains("'Lodestar:Services:orders:Endpoints' is a single string", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_ExplicitlyEmptyList_RemovesEveryEndpoint()
    {
        await using var client = LodestarClient.Create();
        await using var watch = await WatchAsync(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80"]}}}}""");

        Load(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":[]}}}}""");

        var set = await watch.NextSetAsync();
        Assert.Equal(0, set.Count);
        Assert.Equal(2, set.Version);
        await Assert.ThrowsAsync<NoEndpointsException>(() => client.Http.GetAsync("http://orders/"));
    }

    [Fact]
    public async Task Reload_ServiceNoLongerDeclared_KeepsPreviousSetAndSaysHowToRemove()
    {
        // An appsettings.json that fails to parse on reload leaves its provider empty: that is not a removal.
        await using var client = LodestarClient.Create();
        await using var watch = await WatchAsync(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80"]}}}}""");

        client.Configuration.Replace([]);

        var error = await watch.NextErrorAsync("no longer declared");
        Assert.Contains("'Lodestar:Services:orders'", error, StringComparison.Ordinal);
        Assert.Contains("An empty list", error, StringComparison.Ordinal);
        Assert.Equal("10.0.0.1:80", (await watch.Resolver.GetEndpointsAsync("orders")).Endpoints.Single().Address);
    }

    [Fact]
    public async Task Reload_SectionWithoutEndpointsList_KeepsPreviousSetAndNamesTheKeysFound()
    {
        await using var client = LodestarClient.Create();
        await using var watch = await WatchAsync(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80"]}}}}""");

        Load(client, """{"Lodestar":{"Services":{"orders":{"Endpoint":["10.0.0.2:80"]}}}}""");

        var error = await watch.NextErrorAsync("has no 'Endpoints' list");
        Assert.Contains("'Lodestar:Services:orders'", error, StringComparison.Ordinal);
        Assert.Contains("'Endpoint'", error, StringComparison.Ordinal);
        Assert.Equal(1, (await watch.Resolver.GetEndpointsAsync("orders")).Version);
    }

    [Fact]
    public async Task Reload_AfterKeptSet_ValidListIsPublishedAgain()
    {
        await using var client = LodestarClient.Create();
        await using var watch = await WatchAsync(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80"]}}}}""");
        Load(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["htp:/x"]}}}}""");
        await watch.NextErrorAsync("None of the 1 entries");

        Load(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.2:80"]}}}}""");

        var set = await watch.NextSetAsync();
        Assert.Equal(2, set.Version);
        Assert.Equal("10.0.0.2:80", set.Endpoints.Single().Address);
    }

    [Fact]
    public async Task Reload_CompatibilityShapeAllInvalid_KeepsPreviousSet()
    {
        await using var client = LodestarClient.Create();
        await using var watch = await WatchAsync(client, """{"Services":{"basket":{"http":["10.0.0.9:8080"]}}}""", "basket");

        Load(client, """{"Services":{"basket":{"http":["not an address"],"https":["::::"]}}}""");

        var error = await watch.NextErrorAsync("None of the 2 entries");
        Assert.Contains("'Services:basket:http' and 'Services:basket:https'", error, StringComparison.Ordinal);
        Assert.Equal(1, (await watch.Resolver.GetEndpointsAsync("basket")).Version);
    }

    [Fact]
    public async Task Resolve_FirstReadHasNothingValid_FailsWithTheReasonInsteadOfAnEmptySet()
    {
        await using var client = LodestarClient.Create();
        Load(client, """{"Lodestar":{"Services":{"orders":{"Endpoints":["htp:/x"]}}}}""");
        var resolver = client.Services.GetRequiredService<IEndpointResolver>();

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(async () => await resolver.GetEndpointsAsync("orders"));

        Assert.Contains("None of the 1 entries of 'Lodestar:Services:orders:Endpoints'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_NamedEndpointList_ReadsOnlyThatEndpointsSection()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.Replace(
        [
            new("Services:basket:http:0", "10.0.0.9:8080"),
            new("Services:basket:grpc:0", "https://10.0.0.9:9000"),
            new("Services:basket:grpc:1", "10.0.0.10:9000"),
        ]);

        var set = await client.Services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("_grpc.basket");

        Assert.Equal(["https://10.0.0.9:9000", "10.0.0.10:9000"], set.Endpoints.Select(e => e.ToString()));
    }

    [Fact]
    public async Task Resolve_NamedEndpointSingleValue_IsOneEndpoint()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.Replace([new("Services:basket:grpc", "https://10.0.0.9:9000")]);

        var set = await client.Services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("_grpc.basket");

        Assert.Equal("https://10.0.0.9:9000", Assert.Single(set.Endpoints).ToString());
    }

    [Fact]
    public async Task Resolve_NamedEndpointNotDeclared_NoSourceAcceptsIt()
    {
        await using var client = LodestarClient.Create();
        client.Configuration.Replace([new("Services:basket:http:0", "10.0.0.9:8080")]);

        var error = await Assert.ThrowsAsync<EndpointResolutionException>(
            async () => await client.Services.GetRequiredService<IEndpointResolver>().GetEndpointsAsync("_grpc.basket"));

        Assert.Contains("_grpc.basket", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NamedEndpointEntryIsASection_NamesTheKeyPath()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(
        [
            new("Services:basket:grpc:0", "10.0.0.9:9000"),
            new("Services:basket:grpc:1:Address", "10.0.0.10:9000"),
        ]).Build();
        var source = new Lodestar.Discovery.Configuration.Internal.ConfigurationEndpointSource("_grpc.basket", configuration, new());

        var read = source.Read();

        Assert.Equal(["10.0.0.9:9000"], read.Endpoints!.Select(e => e.Address));
        Assert.Contains(read.Errors, e => e.Message.Contains("'Services:basket:grpc:1' is a section", StringComparison.Ordinal));
    }

    [Fact]
    public void Read_EmptyValueAsAnEnvironmentVariableSetsIt_IsAnExplicitlyEmptyList()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Lodestar:Services:orders:Endpoints", "")]).Build();
        var source = new Lodestar.Discovery.Configuration.Internal.ConfigurationEndpointSource("orders", configuration, new());

        var read = source.Read();

        Assert.NotNull(read.Endpoints);
        Assert.Empty(read.Endpoints);
        Assert.Empty(read.Errors);
    }

    private static void Load(LodestarClient client, string json)
    {
        // The JSON provider's own reading, so empty arrays and nesting look exactly as appsettings.json makes them.
        var parsed = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();
        client.Configuration.Replace(parsed.AsEnumerable());
    }

    private static async Task<Watch> WatchAsync(LodestarClient client, string json, string service = "orders")
    {
        Load(client, json);
        var watch = new Watch(client.Services.GetRequiredService<IEndpointResolver>(), service);
        var first = await watch.NextSetAsync();
        Assert.Equal(1, first.Version);
        return watch;
    }

    /// <summary>
    /// A subscription whose sets and errors arrive in order on one channel. A set already seen (same version) is
    /// skipped: a subscription made while a set is being published may be handed that set twice.
    /// </summary>
    private sealed class Watch : IAsyncDisposable
    {
        private readonly Channel<object> _events = Channel.CreateUnbounded<object>();
        private readonly IDisposable _subscription;
        private long _lastVersion;

        public Watch(IEndpointResolver resolver, string service)
        {
            Resolver = resolver;
            _subscription = resolver.Watch(service, null, set => _events.Writer.TryWrite(set), error => _events.Writer.TryWrite(error));
        }

        public IEndpointResolver Resolver { get; }

        public async Task<EndpointSet> NextSetAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                if (await _events.Reader.ReadAsync(timeout.Token) is EndpointSet set && set.Version > _lastVersion)
                {
                    _lastVersion = set.Version;
                    return set;
                }
            }
        }

        public async Task<string> NextErrorAsync(string containing)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                switch (await _events.Reader.ReadAsync(timeout.Token))
                {
                    case Exception error when error.Message.Contains(containing, StringComparison.Ordinal):
                        return error.Message;
                    case EndpointSet set when set.Version > _lastVersion:
                        Assert.Fail($"A set (version {set.Version}, {set.Count} endpoints) was published where the previous one should have stayed.");
                        break;
                }
            }
        }

        public ValueTask DisposeAsync()
        {
            _subscription.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
