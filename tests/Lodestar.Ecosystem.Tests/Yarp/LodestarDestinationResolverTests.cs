using System.Net;
using Lodestar.Endpoints;
using Lodestar.Testing;
using Lodestar.Yarp.Internal;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.ServiceDiscovery;

namespace Lodestar.Ecosystem.Tests.Yarp;

/// <summary>A real YARP proxy in Kestrel on loopback whose cluster destinations come from Lodestar's sources.</summary>
public sealed class LodestarDestinationResolverTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);

    public enum Resolution
    {
        /// <summary>Lodestar.Yarp's destination resolver.</summary>
        LodestarResolver,

        /// <summary>Microsoft.Extensions.ServiceDiscovery.Yarp's resolver over Lodestar's endpoint provider.</summary>
        ServiceDiscoveryOverLodestarProvider,
    }

    [Theory]
    [InlineData(Resolution.LodestarResolver)]
    [InlineData(Resolution.ServiceDiscoveryOverLodestarProvider)]
    public async Task Proxy_RegistryChanges_ClusterFollowsTheNewEndpoints(Resolution resolution)
    {
        await using var backends = await Backends.StartAsync(3);
        var configuration = new MutableConfigurationSource();
        configuration.Provider.SetEndpoints("orders", backends[0].Url, backends[1].Url);
        await using var proxy = await StartProxyAsync(configuration, "http://orders/", resolution);
        using var http = new HttpClient { BaseAddress = proxy.Url };

        for (var i = 0; i < 20; i++)
        {
            Assert.Contains(await GetInstanceAsync(http), (string[])["b0", "b1"]);
        }

        Assert.True(backends[0].Requests > 0 && backends[1].Requests > 0, $"requests did not spread: {backends[0].Requests} and {backends[1].Requests}");

        configuration.Provider.SetEndpoints("orders", backends[2].Url);
        await Eventually.TrueAsync(async () => await GetInstanceAsync(http) == "b2", s_wait, "the proxy never sent a request to the endpoint the registry switched to");
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("b2", await GetInstanceAsync(http));
        }
    }

    [Fact]
    public async Task ResolveDestinationsAsync_ServiceDestination_ExpandsPerEndpointKeepingPathAndSettings()
    {
        var configuration = new MutableConfigurationSource();
        configuration.Provider.Replace(
        [
            new("Lodestar:Services:orders:Endpoints:0", "https://10.0.0.1:8443"),
            new("Lodestar:Services:orders:Endpoints:1", "10.0.0.2:8080"),
            new("Lodestar:Services:orders:Endpoints:2:Address", "10.0.0.3:8080"),
            new("Lodestar:Services:orders:Endpoints:2:Weight", "0"),
        ]);
        await using var services = Services(configuration);
        var resolver = (LodestarDestinationResolver)services.GetRequiredService<IDestinationResolver>();
        var destinations = new Dictionary<string, DestinationConfig>
        {
            ["api"] = new() { Address = "https+http://orders/api/", Host = "orders.internal", Metadata = new Dictionary<string, string> { ["team"] = "a" } },
            ["fixed"] = new() { Address = "http://127.0.0.1:9000/" },
            ["elsewhere"] = new() { Address = "https://billing.example/" },
        };

        var resolved = await resolver.ResolveDestinationsAsync(destinations, CancellationToken.None);

        Assert.Equal(
            ["api[10.0.0.1:8443]=https://10.0.0.1:8443/api/", "api[10.0.0.2:8080]=https://10.0.0.2:8080/api/", "elsewhere=https://billing.example/", "fixed=http://127.0.0.1:9000/"],
            resolved.Destinations.Select(d => $"{d.Key}={d.Value.Address}").Order(StringComparer.Ordinal));
        Assert.All(resolved.Destinations.Where(d => d.Key.StartsWith("api[", StringComparison.Ordinal)), d =>
        {
            Assert.Equal("orders.internal", d.Value.Host);
            Assert.Equal("a", d.Value.Metadata!["team"]);
        });
        Assert.NotNull(resolved.ChangeToken);
        Assert.False(resolved.ChangeToken.HasChanged);
    }

    [Fact]
    public async Task ResolveDestinationsAsync_WatchDeliversTheSetAlreadyReadAfterwards_TokenFiresOnlyForANewerSet()
    {
        // Arrange: the watch tells of the first set after the caller has read it (a watcher delivers on its own thread).
        var resolver = new LateWatchResolver();
        using var destinations = new LodestarDestinationResolver(resolver, Microsoft.Extensions.Logging.Abstractions.NullLogger<LodestarDestinationResolver>.Instance);
        var resolved = await destinations.ResolveDestinationsAsync(
            new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = "http://orders" } }, CancellationToken.None);

        // Act
        resolver.Deliver(version: 1);
        var changedBySameSet = resolved.ChangeToken!.HasChanged;
        resolver.Deliver(version: 2);

        // Assert
        Assert.False(changedBySameSet);
        Assert.True(resolved.ChangeToken.HasChanged);
    }

    [Fact]
    public async Task ResolveDestinationsAsync_SetChanges_ChangeTokenFires()
    {
        var configuration = new MutableConfigurationSource();
        configuration.Provider.SetEndpoints("orders", "10.0.0.1:8080");
        await using var services = Services(configuration);
        var resolver = services.GetRequiredService<IDestinationResolver>();
        var resolved = await resolver.ResolveDestinationsAsync(new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = "http://orders" } }, CancellationToken.None);
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = resolved.ChangeToken!.RegisterChangeCallback(static s => ((TaskCompletionSource)s!).TrySetResult(), changed);

        configuration.Provider.SetEndpoints("orders", "10.0.0.2:8080");

        await changed.Task.WaitAsync(s_wait);
        var next = await resolver.ResolveDestinationsAsync(new Dictionary<string, DestinationConfig> { ["d"] = new() { Address = "http://orders" } }, CancellationToken.None);
        Assert.Equal("http://10.0.0.2:8080/", Assert.Single(next.Destinations).Value.Address);
    }

    [Fact]
    public void AddLodestarDestinationResolver_AfterAddReverseProxy_ReplacesTheDefaultResolver()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
        services.AddLogging();

        services.AddReverseProxy().AddLodestarDestinationResolver();

        var descriptor = Assert.Single(services, d => d.ServiceType == typeof(IDestinationResolver));
        Assert.Equal(typeof(LodestarDestinationResolver), descriptor.ImplementationType);
    }

    [Theory]
    [InlineData("http://orders/a?b=c", null, "http://10.0.0.1:80/a?b=c")]
    [InlineData("https+http://orders/", "http", "http://10.0.0.1:80/")]
    [InlineData("https+http://orders/", "https", "https://10.0.0.1:80/")]
    [InlineData("https+http://orders/", null, "https://10.0.0.1:80/")]
    [InlineData("http://orders/", "https", "http://10.0.0.1:80/")]
    public void Rewrite_EndpointScheme_UsedOnlyWhenTheAddressAllowsIt(string address, string? endpointScheme, string expected)
    {
        var endpoint = DiscoveredEndpoint.Create("10.0.0.1", 80, endpointScheme);

        Assert.Equal(expected, LodestarDestinationResolver.Rewrite(new Uri(address), endpoint));
    }

    private static ServiceProvider Services(MutableConfigurationSource configuration)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Add(configuration).Build());
        services.AddLogging();
        services.AddReverseProxy().AddLodestarDestinationResolver();
        return services.BuildServiceProvider();
    }

    private static async Task<string> GetInstanceAsync(HttpClient http)
    {
        using var response = await http.GetAsync(new Uri("/work", UriKind.Relative));
        response.EnsureSuccessStatusCode();
        return response.Headers.GetValues("X-Instance").Single();
    }

    private static async Task<Proxy> StartProxyAsync(MutableConfigurationSource configuration, string address, Resolution resolution)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        ((IConfigurationBuilder)builder.Configuration).Add(configuration);
        var proxy = builder.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig { RouteId = "orders", ClusterId = "orders", Match = new RouteMatch { Path = "{**rest}" } }],
            [new ClusterConfig { ClusterId = "orders", Destinations = new Dictionary<string, DestinationConfig> { ["orders"] = new() { Address = address } } }]);
        if (resolution == Resolution.LodestarResolver)
        {
            proxy.AddLodestarDestinationResolver();
        }
        else
        {
            builder.Services.AddServiceDiscovery();
            builder.Services.AddLodestarServiceEndpointProvider();
            proxy.AddServiceDiscoveryDestinationResolver();
        }

        var app = builder.Build();
        app.MapReverseProxy();
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Proxy(app, new Uri(url));
    }

    private sealed class Proxy(WebApplication app, Uri url) : IAsyncDisposable
    {
        public Uri Url { get; } = url;

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>Answers with version 1 at once, and delivers to its watcher only when the test says.</summary>
    private sealed class LateWatchResolver : Lodestar.Discovery.IEndpointResolver
    {
        private Action<EndpointSet>? _onChange;

        public ValueTask<EndpointSet> GetEndpointsAsync(string serviceName, string? sourceName = null, CancellationToken cancellationToken = default)
            => new(Set(serviceName, 1));

        public IDisposable Watch(string serviceName, string? sourceName, Action<EndpointSet> onChange, Action<Exception>? onError = null)
        {
            _onChange = onChange;
            return new Subscription();
        }

        public void Deliver(long version) => _onChange!(Set("orders", version));

        private static EndpointSet Set(string service, long version)
            => EndpointSet.Create(service, "test", [DiscoveredEndpoint.Create("10.0.0.1", 8080)], version, DateTimeOffset.UnixEpoch);

        private sealed class Subscription : IDisposable
        {
            public void Dispose()
            {
            }
        }
    }
}
