using Lodestar.Discovery;
using Lodestar.Discovery.Internal;
using Lodestar.Http.Internal;
using Lodestar.Tests.Infrastructure;
using Lodestar.Tests.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Tests.Http;

public sealed class PipelineErrorTests
{
    [Fact]
    public async Task Send_UnknownService_ResolutionErrorIsAnHttpRequestExceptionOfNameResolution()
    {
        await using var client = LodestarClient.Create();

        HttpRequestException error = await Assert.ThrowsAsync<EndpointResolutionException>(() => client.Http.GetAsync("http://payments/"));

        Assert.Equal(HttpRequestError.NameResolutionError, error.HttpRequestError);
        Assert.Equal("payments", ((EndpointResolutionException)error).ServiceName);
    }

    [Fact]
    public async Task Dispose_ContainerDisposedSynchronously_StopsWatchersWithoutThrowing()
    {
        // Arrange: a request so that a watcher, a health stage and a balancer exist.
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder()
                .AddInMemoryCollection([new("Lodestar:Services:orders:Endpoints:0", "127.0.0.1:9001")])
                .Build())
            .AddLogging();
        services.AddHttpClient("test").AddLodestar().ConfigurePrimaryHttpMessageHandler(() => handler);
        var provider = services.BuildServiceProvider();
        using (var response = await provider.GetRequiredService<IHttpClientFactory>().CreateClient("test").GetAsync("http://orders/"))
        {
            Assert.Equal(200, (int)response.StatusCode);
        }

        var cache = provider.GetRequiredService<EndpointCache>();
        var watcher = cache.GetWatcher("orders", null);

        // Act
        var error = Record.Exception(provider.Dispose);

        // Assert: disposed, and the cache refuses further use.
        Assert.Null(error);
        Assert.NotNull(watcher);
        Assert.Throws<ObjectDisposedException>(() => cache.GetWatcher("orders", null));
    }

    [Fact]
    public async Task Dispose_ConnectionRetirerKnowsOnlyLiveStates_AfterTheStageIsDisposed()
    {
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        var host = ResilienceTestHost.Create(primaryHandler: handler);
        host.SetEndpoints("127.0.0.1:9001");
        (await host.CreateClient().GetAsync("http://orders/")).Dispose();
        var retirer = host.Services.GetRequiredService<ConnectionRetirer>();
        var known = retirer.CountStates("127.0.0.1:9001");

        await host.DisposeAsync();

        Assert.Equal(1, known);
        Assert.Equal(0, retirer.CountStates("127.0.0.1:9001"));
    }
}
