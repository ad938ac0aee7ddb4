using Lodestar.Http;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Tests.Infrastructure;

/// <summary>A service provider with Lodestar over a mutable configuration, and a named client "orders".</summary>
internal sealed class LodestarClient : IAsyncDisposable
{
    private LodestarClient(ServiceProvider services, MutableConfigurationProvider configuration, CapturingLoggerProvider logs)
    {
        Services = services;
        Configuration = configuration;
        Logs = logs;
        Http = services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
    }

    public ServiceProvider Services { get; }

    public MutableConfigurationProvider Configuration { get; }

    public CapturingLoggerProvider Logs { get; }

    public HttpClient Http { get; }

    public static LodestarClient Create(Action<LodestarClientOptions>? configure = null, bool http2 = false, Action<IServiceCollection>? services = null)
    {
        var source = new MutableConfigurationSource();
        var configuration = new ConfigurationBuilder().Add(source).Build();
        var logs = new CapturingLoggerProvider();
        var collection = new ServiceCollection();
        collection.AddSingleton<IConfiguration>(configuration);
        collection.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        collection.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(2));
        collection.AddHttpClient("orders", c =>
        {
            if (http2)
            {
                c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
                c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            }
        }).AddLodestar(configure);
        services?.Invoke(collection);
        return new LodestarClient(collection.BuildServiceProvider(), source.Provider, logs);
    }

    public async ValueTask DisposeAsync() => await Services.DisposeAsync();
}
