using BenchmarkDotNet.Attributes;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Benchmarks.Http;

/// <summary>One GET to one loopback Kestrel backend: plain HttpClient against the Lodestar handler (same SocketsHttpHandler settings).</summary>
[MemoryDiagnoser]
public class HandlerOverheadBenchmarks
{
    private TestBackend _backend = null!;
    private HttpClient _plain = null!;
    private HttpClient _lodestar = null!;
    private ServiceProvider _services = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _backend = await TestBackend.StartAsync("b0");
        _plain = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) }) { BaseAddress = new Uri(_backend.Url) };
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([new KeyValuePair<string, string?>("Lodestar:Services:orders:Endpoints:0", _backend.Url)])
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddHttpClient("orders", c => c.BaseAddress = new Uri("http://orders")).AddLodestar();
        _services = services.BuildServiceProvider();
        _lodestar = _services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        (await _lodestar.GetAsync("/")).EnsureSuccessStatusCode();
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

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _plain.Dispose();
        await _services.DisposeAsync();
        await _backend.DisposeAsync();
    }
}
