using BenchmarkDotNet.Attributes;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Benchmarks.Http;

/// <summary>
/// One GET to one loopback Kestrel backend: plain HttpClient against the Lodestar handler (same SocketsHttpHandler
/// settings), with and without the connection tracking that retires connections to endpoints that left, and with
/// hedging on at a delay no answer reaches (what hedging costs a request that never hedges).
/// </summary>
[MemoryDiagnoser]
public class HandlerOverheadBenchmarks
{
    private TestBackend _backend = null!;
    private HttpClient _plain = null!;
    private HttpClient _lodestar = null!;
    private HttpClient _untracked = null!;
    private HttpClient _hedged = null!;
    private ServiceProvider _services = null!;
    private ServiceProvider _untrackedServices = null!;
    private ServiceProvider _hedgedServices = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _backend = await TestBackend.StartAsync("b0");
        _plain = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) }) { BaseAddress = new Uri(_backend.Url) };
        _services = Build(_backend.Url, retire: true);
        _untrackedServices = Build(_backend.Url, retire: false);
        _hedgedServices = Build(_backend.Url, retire: true, hedging: true);
        _lodestar = _services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        _untracked = _untrackedServices.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        _hedged = _hedgedServices.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        (await _lodestar.GetAsync("/")).EnsureSuccessStatusCode();
        (await _untracked.GetAsync("/")).EnsureSuccessStatusCode();
        (await _hedged.GetAsync("/")).EnsureSuccessStatusCode();
    }

    private static ServiceProvider Build(string url, bool retire, bool hedging = false)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([
                new KeyValuePair<string, string?>("Lodestar:Services:orders:Endpoints:0", url),
                new KeyValuePair<string, string?>("Lodestar:RetireRemovedConnections", retire ? "true" : "false"),
            ])
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddHttpClient("orders", c => c.BaseAddress = new Uri("http://orders")).AddLodestar(o =>
        {
            o.Hedging.Enabled = hedging;
            o.Hedging.Delay = TimeSpan.FromSeconds(1);
        });
        return services.BuildServiceProvider();
    }

    [Benchmark(Baseline = true)]
    public async Task<int> PlainHttpClient()
    {
        using var response = await _plain.GetAsync("/");
        return (int)response.StatusCode;
    }

    [Benchmark]
    public async Task<int> LodestarHandler()
    {
        using var response = await _lodestar.GetAsync("/");
        return (int)response.StatusCode;
    }

    [Benchmark]
    public async Task<int> LodestarHandlerWithoutConnectionTracking()
    {
        using var response = await _untracked.GetAsync("/");
        return (int)response.StatusCode;
    }

    [Benchmark]
    public async Task<int> LodestarHandlerWithIdleHedging()
    {
        using var response = await _hedged.GetAsync("/");
        return (int)response.StatusCode;
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _plain.Dispose();
        await _services.DisposeAsync();
        await _untrackedServices.DisposeAsync();
        await _hedgedServices.DisposeAsync();
        await _backend.DisposeAsync();
    }
}
