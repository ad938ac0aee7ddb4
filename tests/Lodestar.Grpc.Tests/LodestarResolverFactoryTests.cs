using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Grpc.Tests;

public sealed class LodestarResolverFactoryTests
{
    [Fact]
    public async Task Resolve_ConfigurationReload_NewSetReachesChannel()
    {
        // Arrange: the configuration lists only the first of two instances.
        await using var host = await GrpcTestHost.StartAsync(2);
        var (first, second) = (host.Backends[0], host.Backends[1]);
        host.Configuration.Provider.SetEndpoints(GrpcTestHost.Service, first.Address);
        var client = host.CreateClient();
        var before = await GrpcTestHost.CountUnaryAsync(client, 5);

        // Act: the registry now lists only the second.
        host.Configuration.Provider.SetEndpoints(GrpcTestHost.Service, second.Address);

        // Assert
        Assert.Equal([first.Name], before.Keys);
        await Eventually.TrueAsync(async () => (await GrpcTestHost.CountUnaryAsync(client, 1)).ContainsKey(second.Name), TimeSpan.FromSeconds(10),
            "calls follow the reloaded configuration");
        var after = await GrpcTestHost.CountUnaryAsync(client, 10);
        Assert.Equal([second.Name], after.Keys);
    }

    [Fact]
    public void Start_EndpointMetadata_BecomesAddressAttributes()
    {
        // Arrange
        var endpoint = DiscoveredEndpoint.Create("127.0.0.1", 5001, weight: 7, zone: "eu-1", metadata: new Dictionary<string, string> { ["version"] = "v2" }, priority: 1);
        var resolver = new FakeEndpointResolver();
        var results = new List<ResolverResult>();
        using var subject = Create(resolver, "lodestar:///orders?source=configuration");

        // Act
        subject.Start(results.Add);
        resolver.Publish(EndpointSet.Create("orders", "configuration", [endpoint], 1, DateTimeOffset.UnixEpoch));

        // Assert
        var result = Assert.Single(results);
        Assert.Equal(("orders", "configuration"), (resolver.Service, resolver.Source));
        var address = Assert.Single(result.Addresses!);
        Assert.Equal(("127.0.0.1", 5001), (address.EndPoint.Host, address.EndPoint.Port));
        Assert.True(address.Attributes.TryGetValue(LodestarBalancerAttributes.Weight, out var weight) && weight == 7);
        Assert.True(address.Attributes.TryGetValue(LodestarBalancerAttributes.Zone, out var zone) && zone == "eu-1");
        Assert.True(address.Attributes.TryGetValue(LodestarBalancerAttributes.Priority, out var priority) && priority == 1);
        Assert.True(address.Attributes.TryGetValue(LodestarBalancerAttributes.Labels, out var labels) && labels["version"] == "v2");
        Assert.True(result.Attributes.TryGetValue(LodestarBalancerAttributes.Service, out var service) && service == "orders");
        Assert.True(result.Attributes.TryGetValue(LodestarBalancerAttributes.Source, out var source) && source == "configuration");
    }

    [Fact]
    public void Start_ErrorBeforeAnySet_ReportsUnavailableNamingServiceWithoutSecrets()
    {
        // Arrange
        var resolver = new FakeEndpointResolver();
        var results = new List<ResolverResult>();
        using var subject = Create(resolver, "lodestar:///orders");
        subject.Start(results.Add);

        // Act
        resolver.Fail(new HttpRequestException("registry at 127.0.0.1:8500 said: Authorization: Bearer abc.def.ghi"));

        // Assert
        var result = Assert.Single(results);
        Assert.Equal(StatusCode.Unavailable, result.Status.StatusCode);
        Assert.Contains("'orders'", result.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("abc.def.ghi", result.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Start_ErrorAfterASet_KeepsLastGoodAddresses()
    {
        // Arrange
        var resolver = new FakeEndpointResolver();
        var results = new List<ResolverResult>();
        using var subject = Create(resolver, "lodestar:///orders");
        subject.Start(results.Add);
        resolver.Publish(EndpointSet.Create("orders", "configuration", [DiscoveredEndpoint.Create("127.0.0.1", 5001)], 1, DateTimeOffset.UnixEpoch));

        // Act
        resolver.Fail(new InvalidOperationException("registry unreachable"));

        // Assert: nothing reached the channel after the set.
        var result = Assert.Single(results);
        Assert.Equal(StatusCode.OK, result.Status.StatusCode);
    }

    [Fact]
    public void Start_OlderSetAfterNewer_Ignored()
    {
        // Arrange
        var resolver = new FakeEndpointResolver();
        var results = new List<ResolverResult>();
        using var subject = Create(resolver, "lodestar:///orders");
        subject.Start(results.Add);

        // Act
        resolver.Publish(EndpointSet.Create("orders", "configuration", [DiscoveredEndpoint.Create("127.0.0.1", 5002)], 2, DateTimeOffset.UnixEpoch));
        resolver.Publish(EndpointSet.Create("orders", "configuration", [DiscoveredEndpoint.Create("127.0.0.1", 5001)], 1, DateTimeOffset.UnixEpoch));

        // Assert
        Assert.Equal(5002, Assert.Single(Assert.Single(results).Addresses!).EndPoint.Port);
    }

    [Fact]
    public void Dispose_EndsTheSubscription()
    {
        // Arrange
        var resolver = new FakeEndpointResolver();
        var subject = Create(resolver, "lodestar:///orders");
        subject.Start(_ => { });

        // Act
        subject.Dispose();

        // Assert
        Assert.True(resolver.Unsubscribed);
    }

    [Theory]
    [InlineData("lodestar:///", "names no single service")]
    [InlineData("lodestar:///a/b", "names no single service")]
    [InlineData("lodestar:///orders?zone=eu", "'zone'")]
    public void Create_BadAddress_ThrowsNamingAddress(string address, string expected)
    {
        // Act
        var error = Assert.Throws<ArgumentException>(() => Create(new FakeEndpointResolver(), address));

        // Assert
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains(address, error.Message, StringComparison.Ordinal);
    }

    private static Resolver Create(IEndpointResolver resolver, string address)
    {
        // ResolverOptions cannot be built outside grpc-dotnet; the factory does exactly this with the channel's address.
        var (service, source) = Internal.LodestarAddress.Parse(new Uri(address));
        return new Internal.LodestarResolver(resolver, service, source, NullLoggerFactory.Instance);
    }

    /// <summary>An endpoint resolver driven by the test: it publishes sets and errors to the one subscriber.</summary>
    private sealed class FakeEndpointResolver : IEndpointResolver
    {
        private Action<EndpointSet>? _onChange;
        private Action<Exception>? _onError;

        public string? Service { get; private set; }

        public string? Source { get; private set; }

        public bool Unsubscribed { get; private set; }

        public void Publish(EndpointSet set) => _onChange!(set);

        public void Fail(Exception error) => _onError!(error);

        public ValueTask<EndpointSet> GetEndpointsAsync(string serviceName, string? sourceName = null, CancellationToken cancellationToken = default)
            => throw new NotSupportedException();

        public IDisposable Watch(string serviceName, string? sourceName, Action<EndpointSet> onChange, Action<Exception>? onError = null)
        {
            (Service, Source, _onChange, _onError) = (serviceName, sourceName, onChange, onError);
            return new Subscription(this);
        }

        private sealed class Subscription(FakeEndpointResolver owner) : IDisposable
        {
            public void Dispose() => owner.Unsubscribed = true;
        }
    }
}
