using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Lodestar.Ecosystem.Tests.Aspire;

/// <summary>
/// An app wired as Aspire's ServiceDefaults template wires it (service discovery and the standard resilience handler
/// on every client), plus <c>AddLodestar()</c> on one client, against the real packages and Kestrel backends.
/// </summary>
/// <remarks>
/// The backends are declared twice, as Aspire declares them (<c>Services:orders:http</c>) and in Lodestar's own section
/// where the third one carries weight 0. Microsoft.Extensions.ServiceDiscovery knows no weights and would send that
/// backend a third of the requests; only requests balanced by Lodestar leave it alone.
/// </remarks>
public sealed class AspireServiceDefaultsTests
{
    public enum Wiring
    {
        /// <summary>The template's order: service defaults first, then the app's client with AddLodestar.</summary>
        DefaultsBeforeClient,

        /// <summary>The client with AddLodestar registered before the service defaults.</summary>
        DefaultsAfterClient,

        /// <summary>AddServiceDiscovery added to the client itself, after AddLodestar.</summary>
        ServiceDiscoveryAfterLodestarOnClient,
    }

    [Theory]
    [InlineData(Wiring.DefaultsBeforeClient)]
    [InlineData(Wiring.DefaultsAfterClient)]
    [InlineData(Wiring.ServiceDiscoveryAfterLodestarOnClient)]
    public async Task AddLodestar_NamedClientWithAspireServiceDefaults_RequestsSpreadThroughLodestar(Wiring wiring)
    {
        await using var backends = await Backends.StartAsync(3);
        var builder = CreateBuilder(backends);
        if (wiring == Wiring.DefaultsBeforeClient)
        {
            AddServiceDefaults(builder);
        }

        var client = builder.Services.AddHttpClient("orders").AddLodestar();
        if (wiring == Wiring.ServiceDiscoveryAfterLodestarOnClient)
        {
            client.AddServiceDiscovery();
        }

        if (wiring != Wiring.DefaultsBeforeClient)
        {
            AddServiceDefaults(builder);
        }

        using var host = builder.Build();
        await host.StartAsync();
        var http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");

        for (var i = 0; i < 30; i++)
        {
            using var response = await http.GetAsync(new Uri("http://orders/work"));
            response.EnsureSuccessStatusCode();
        }

        Assert.Equal(30, backends[0].Requests + backends[1].Requests);
        Assert.True(backends[0].Requests >= 5 && backends[1].Requests >= 5, $"requests did not spread: {backends[0].Requests} and {backends[1].Requests}");
        Assert.Equal(0, backends[2].Requests);
        await host.StopAsync();
    }

    [Fact]
    public async Task AddLodestar_TypedClientWithSchemeListAndAspireServiceDefaults_RequestsSpreadThroughLodestar()
    {
        await using var backends = await Backends.StartAsync(3);
        var builder = CreateBuilder(backends);
        AddServiceDefaults(builder);
        builder.Services.AddHttpClient<OrdersClient>(c => c.BaseAddress = new Uri("https+http://orders")).AddLodestar();
        using var host = builder.Build();
        await host.StartAsync();
        var orders = host.Services.GetRequiredService<OrdersClient>();

        for (var i = 0; i < 20; i++)
        {
            await orders.GetAsync();
        }

        Assert.Equal(20, backends[0].Requests + backends[1].Requests);
        Assert.True(backends[0].Requests >= 4 && backends[1].Requests >= 4, $"requests did not spread: {backends[0].Requests} and {backends[1].Requests}");
        Assert.Equal(0, backends[2].Requests);
        await host.StopAsync();
    }

    [Fact]
    public async Task AddServiceDiscovery_ClientWithoutLodestarBesideALodestarClient_KeepsItsOwnResolution()
    {
        await using var backends = await Backends.StartAsync(3);
        var builder = CreateBuilder(backends);
        AddServiceDefaults(builder);
        builder.Services.AddHttpClient("orders").AddLodestar();
        builder.Services.AddHttpClient("plain");
        using var host = builder.Build();
        await host.StartAsync();
        var http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("plain");

        for (var i = 0; i < 9; i++)
        {
            using var response = await http.GetAsync(new Uri("http://orders/work"));
            response.EnsureSuccessStatusCode();
        }

        // Microsoft.Extensions.ServiceDiscovery's round robin, which knows no weights, still serves the other client.
        Assert.All(backends, b => Assert.Equal(3, b.Requests));
        await host.StopAsync();
    }

    [Fact]
    public async Task AddLodestar_NamedEndpointUriWithAspireServiceDefaults_BalancesOverThatEndpointsInstances()
    {
        await using var backends = await Backends.StartAsync(3);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(
        [
            new("Services:orders:http:0", backends[0].Url),
            new("Services:orders:grpc:0", backends[1].Url),
            new("Services:orders:grpc:1", backends[2].Url),
        ]);
        AddServiceDefaults(builder);
        builder.Services.AddHttpClient("orders-grpc").AddLodestar();
        using var host = builder.Build();
        await host.StartAsync();
        var http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders-grpc");

        for (var i = 0; i < 10; i++)
        {
            using var response = await http.GetAsync(new Uri("https+http://_grpc.orders/work"));
            response.EnsureSuccessStatusCode();
        }

        Assert.Equal(0, backends[0].Requests);
        Assert.Equal(5, backends[1].Requests);
        Assert.Equal(5, backends[2].Requests);
        await host.StopAsync();
    }

    [Fact]
    public void AddLodestar_InConfigureHttpClientDefaults_FailsAtStartupSayingWhereToCallIt()
    {
        var services = new ServiceCollection();

        var error = Assert.Throws<InvalidOperationException>(() => services.ConfigureHttpClientDefaults(http => http.AddLodestar()));

        Assert.Contains("ConfigureHttpClientDefaults", error.Message, StringComparison.Ordinal);
        Assert.Contains("AddHttpClient(\"orders\").AddLodestar()", error.Message, StringComparison.Ordinal);
    }

    /// <summary>The template's wiring, verbatim: the service collection's discovery plus the client defaults.</summary>
    private static void AddServiceDefaults(HostApplicationBuilder builder)
    {
        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });
    }

    private static HostApplicationBuilder CreateBuilder(Backends backends)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var values = new List<KeyValuePair<string, string?>>();
        for (var i = 0; i < backends.Count; i++)
        {
            // As Aspire's app host injects them (services__orders__http__0 and so on).
            values.Add(new($"Services:orders:http:{i}", backends[i].Url));
            values.Add(new($"Lodestar:Services:orders:Endpoints:{i}:Address", backends[i].Url));
            values.Add(new($"Lodestar:Services:orders:Endpoints:{i}:Weight", i == 2 ? "0" : "1"));
        }

        builder.Configuration.AddInMemoryCollection(values);
        return builder;
    }

    public sealed class OrdersClient(HttpClient http)
    {
        public async Task GetAsync()
        {
            using var response = await http.GetAsync(new Uri("/work", UriKind.Relative));
            response.EnsureSuccessStatusCode();
        }
    }
}
