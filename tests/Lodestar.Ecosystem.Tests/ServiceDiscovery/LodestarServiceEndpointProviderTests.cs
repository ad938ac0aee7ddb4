using System.Net;
using Lodestar.Endpoints;
using Lodestar.ServiceDiscovery.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.ServiceDiscovery;

namespace Lodestar.Ecosystem.Tests.ServiceDiscovery;

/// <summary>Lodestar's sources behind the real Microsoft.Extensions.ServiceDiscovery package.</summary>
public sealed class LodestarServiceEndpointProviderTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AddLodestarServiceEndpointProvider_ServiceInLodestarSection_ResolvesLodestarEndpointsInEitherRegistrationOrder(bool libraryFirst)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(Configuration(
            Pair("Lodestar:Services:orders:Endpoints:0", "10.0.0.1:8080"),
            Pair("Lodestar:Services:orders:Endpoints:1", "10.0.0.2:8080")));
        if (libraryFirst)
        {
            services.AddServiceDiscovery();
        }

        services.AddLodestarServiceEndpointProvider();
        if (!libraryFirst)
        {
            services.AddServiceDiscovery();
        }

        await using var provider = services.BuildServiceProvider();
        var resolver = provider.GetRequiredService<ServiceEndpointResolver>();

        var result = await resolver.GetEndpointsAsync("http://orders", CancellationToken.None);

        // The pass-through provider alone would answer orders:0; these addresses only Lodestar knows.
        Assert.Equal(["10.0.0.1:8080", "10.0.0.2:8080"], result.Endpoints.Select(e => e.EndPoint.ToString()));
        Assert.All(result.Endpoints, e => Assert.IsType<DiscoveredEndpoint>(e.Features.Get<DiscoveredEndpoint>()));
    }

    [Fact]
    public void AddLodestarServiceEndpointProvider_CalledTwice_RegistersOneProviderFirst()
    {
        var services = new ServiceCollection();
        services.AddServiceDiscovery();

        services.AddLodestarServiceEndpointProvider();
        services.AddLodestarServiceEndpointProvider();

        Assert.Single(services, d => d.ImplementationType == typeof(LodestarServiceEndpointProviderFactory));
        Assert.Equal(typeof(LodestarServiceEndpointProviderFactory), services.First(d => d.ServiceType == typeof(IServiceEndpointProviderFactory)).ImplementationType);
    }

    [Fact]
    public async Task GetEndpointsAsync_RegistryChanges_ChangeTokenFiresAndNextResolutionHasTheNewSet()
    {
        var configuration = new MutableConfigurationSource();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Add(configuration).Build());
        services.AddServiceDiscovery();
        services.AddLodestarServiceEndpointProvider();
        await using var provider = services.BuildServiceProvider();
        configuration.Provider.SetEndpoints("orders", "10.0.0.1:8080");
        var resolver = provider.GetRequiredService<ServiceEndpointResolver>();
        var first = await resolver.GetEndpointsAsync("http://orders", CancellationToken.None);
        Assert.Equal(["10.0.0.1:8080"], first.Endpoints.Select(e => e.EndPoint.ToString()));
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = first.ChangeToken.RegisterChangeCallback(static s => ((TaskCompletionSource)s!).TrySetResult(), changed);

        configuration.Provider.SetEndpoints("orders", "10.0.0.3:8080", "10.0.0.4:8080");
        await changed.Task.WaitAsync(s_wait);

        await Eventually.TrueAsync(
            async () => (await resolver.GetEndpointsAsync("http://orders", CancellationToken.None)).Endpoints.Count == 2,
            s_wait,
            "the resolver did not pick up the new set");
        var next = await resolver.GetEndpointsAsync("http://orders", CancellationToken.None);
        Assert.Equal(["10.0.0.3:8080", "10.0.0.4:8080"], next.Endpoints.Select(e => e.EndPoint.ToString()));
    }

    [Theory]
    [InlineData("https+http://_grpc.orders", true)]
    [InlineData("_grpc.orders", true)]
    [InlineData("https+http://orders", true)]
    [InlineData("http://orders", true)]
    [InlineData("http://_grpc.orders", false)] // the grpc endpoints are https only: both leave it to the pass-through provider
    public async Task GetEndpointsAsync_ServicesSection_ResolvesAsTheLibrarysOwnConfigurationProviderDoes(string query, bool answeredByLodestar)
    {
        KeyValuePair<string, string?>[] values =
        [
            new("Services:orders:https:0", "https://10.0.0.1:8443"),
            new("Services:orders:http:0", "http://10.0.0.1:8080"),
            new("Services:orders:grpc:0", "https://10.0.0.1:9000"),
            new("Services:orders:grpc:1", "https://10.0.0.2:9000"),
        ];
        var library = new ServiceCollection();
        library.AddSingleton<IConfiguration>(Configuration(values));
        library.AddServiceDiscovery();
        var lodestar = new ServiceCollection();
        lodestar.AddSingleton<IConfiguration>(Configuration(values));
        lodestar.AddServiceDiscovery();
        lodestar.AddLodestarServiceEndpointProvider();
        await using var libraryProvider = library.BuildServiceProvider();
        await using var lodestarProvider = lodestar.BuildServiceProvider();

        var expected = await libraryProvider.GetRequiredService<ServiceEndpointResolver>().GetEndpointsAsync(query, CancellationToken.None);
        var actual = await lodestarProvider.GetRequiredService<ServiceEndpointResolver>().GetEndpointsAsync(query, CancellationToken.None);

        Assert.NotEmpty(expected.Endpoints);
        Assert.Equal(expected.Endpoints.Select(e => e.EndPoint.ToString()), actual.Endpoints.Select(e => e.EndPoint.ToString()));
        Assert.All(actual.Endpoints, e => Assert.Equal(answeredByLodestar, e.Features.Get<DiscoveredEndpoint>() is not null));
    }

    [Fact]
    public async Task GetEndpointsAsync_NoLodestarSourceServesTheService_FallsThroughToTheLibrarysProviders()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(Configuration(Pair("Lodestar:Services:orders:Endpoints:0", "10.0.0.1:8080")));
        services.AddServiceDiscovery();
        services.AddLodestarServiceEndpointProvider();
        await using var provider = services.BuildServiceProvider();

        var result = await provider.GetRequiredService<ServiceEndpointResolver>().GetEndpointsAsync("http://billing:5000", CancellationToken.None);

        Assert.Equal(new DnsEndPoint("billing", 5000), Assert.Single(result.Endpoints).EndPoint);
        Assert.Null(result.Endpoints[0].Features.Get<DiscoveredEndpoint>());
    }

    [Fact]
    public async Task AddServiceDiscovery_HttpClientOverLodestarProvider_SpreadsRequestsAndFollowsChanges()
    {
        await using var backends = await Backends.StartAsync(3);
        var configuration = new MutableConfigurationSource();
        configuration.Provider.SetEndpoints("orders", backends[0].Url, backends[1].Url);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        ((IConfigurationBuilder)builder.Configuration).Add(configuration);
        builder.Services.AddServiceDiscovery();
        builder.Services.AddLodestarServiceEndpointProvider();
        builder.Services.AddHttpClient("orders").AddServiceDiscovery();
        using var host = builder.Build();
        await host.StartAsync();
        var http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

        for (var i = 0; i < 10; i++)
        {
            using var response = await http.GetAsync(new Uri("http://orders/work"));
            response.EnsureSuccessStatusCode();
        }

        Assert.Equal(10, backends[0].Requests + backends[1].Requests);
        Assert.True(backends[0].Requests >= 3 && backends[1].Requests >= 3, $"requests did not spread: {backends[0].Requests} and {backends[1].Requests}");

        configuration.Provider.SetEndpoints("orders", backends[2].Url);
        await Eventually.TrueAsync(
            async () =>
            {
                using var response = await http.GetAsync(new Uri("http://orders/work"));
                return response.Headers.TryGetValues("X-Instance", out var names) && names.Single() == "b2";
            },
            s_wait,
            "requests never reached the backend the registry switched to");
        var before = backends[2].Requests;
        for (var i = 0; i < 5; i++)
        {
            using var response = await http.GetAsync(new Uri("http://orders/work"));
            response.EnsureSuccessStatusCode();
        }

        Assert.Equal(before + 5, backends[2].Requests);
        await host.StopAsync();
    }

    [Theory]
    [InlineData("orders", null, "orders")]
    [InlineData("orders", "grpc", "_grpc.orders")]
    [InlineData("127.0.0.1", null, null)]
    [InlineData("::1", null, null)]
    [InlineData("localhost", null, null)]
    public void ToServiceName_Query_IsTheLodestarServiceName(string host, string? endpointName, string? expected)
    {
        var text = (endpointName is null ? host : $"_{endpointName}.{host}").Contains(':', StringComparison.Ordinal) ? $"http://[{host}]" : $"http://{(endpointName is null ? host : $"_{endpointName}.{host}")}";
        Assert.True(ServiceEndpointQuery.TryParse(text, out var query));

        Assert.Equal(expected, LodestarServiceEndpointProviderFactory.ToServiceName(query));
    }

    [Theory]
    [InlineData(new string[0], new[] { "https://10.0.0.1:1", "http://10.0.0.2:1", "10.0.0.3:1" })]
    [InlineData(new[] { "https", "http" }, new[] { "https://10.0.0.1:1", "10.0.0.3:1" })]
    [InlineData(new[] { "http" }, new[] { "http://10.0.0.2:1", "10.0.0.3:1" })]
    [InlineData(new[] { "ftp" }, new[] { "10.0.0.3:1" })]
    public void Select_SchemeList_KeepsTheMostPreferredSchemePresentAndSchemelessEndpoints(string[] schemes, string[] expected)
    {
        DiscoveredEndpoint[] endpoints =
        [
            DiscoveredEndpoint.Create("10.0.0.1", 1, "https"),
            DiscoveredEndpoint.Create("10.0.0.2", 1, "http"),
            DiscoveredEndpoint.Create("10.0.0.3", 1),
        ];

        var selected = LodestarServiceEndpointProvider.Select(endpoints, schemes);

        Assert.Equal(expected, selected.Select(e => e.ToString()));
    }

    private static KeyValuePair<string, string?> Pair(string key, string value) => new(key, value);

    private static IConfiguration Configuration(params KeyValuePair<string, string?>[] values)
        => new ConfigurationBuilder().AddInMemoryCollection(values).Build();
}
