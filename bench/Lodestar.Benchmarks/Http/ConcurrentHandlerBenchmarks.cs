using BenchmarkDotNet.Attributes;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Benchmarks.Http;

/// <summary>
/// Sixteen callers at once against one loopback Kestrel backend: a plain HttpClient against the Lodestar handler with
/// its defaults (outlier detection and retries on) under two policies, so that shared per-request state (in-flight
/// counters, health bookkeeping, latency estimates) shows up as contention, and against Microsoft.Extensions.ServiceDiscovery's
/// round robin (resolution and the URI rewrite, no resilience). Time and bytes are per request.
/// </summary>
/// <remarks>Uses only the public API, so the same file measures older versions of the handler side by side.</remarks>
[MemoryDiagnoser]
public class ConcurrentHandlerBenchmarks
{
    private const int Callers = 16;
    private const int RequestsPerCaller = 32;
    private const int Requests = Callers * RequestsPerCaller;

    private TestBackend _backend = null!;
    private HttpClient _plain = null!;
    private HttpClient _roundRobin = null!;
    private HttpClient _peakEwma = null!;
    private HttpClient _mesd = null!;
    private ServiceProvider _services = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _backend = await TestBackend.StartAsync("b0");
        _plain = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) }) { BaseAddress = new Uri(_backend.Url) };
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(
            [
                new KeyValuePair<string, string?>("Lodestar:Services:orders:Endpoints:0", _backend.Url),
                new KeyValuePair<string, string?>("Services:orders:http:0", _backend.Address),
            ])
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddHttpClient("round-robin", c => c.BaseAddress = new Uri("http://orders")).AddLodestar(o => o.Policy = "round-robin");
        services.AddHttpClient("peak-ewma", c => c.BaseAddress = new Uri("http://orders")).AddLodestar(o => o.Policy = "peak-ewma");
        services.AddServiceDiscovery();
        services.AddHttpClient("mesd", c => c.BaseAddress = new Uri("http://orders")).AddServiceDiscovery();
        _services = services.BuildServiceProvider();
        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _roundRobin = factory.CreateClient("round-robin");
        _peakEwma = factory.CreateClient("peak-ewma");
        _mesd = factory.CreateClient("mesd");

        // Warm every client up to 16 pooled connections, so no run measures connection setup.
        await RunAsync(_plain);
        await RunAsync(_roundRobin);
        await RunAsync(_peakEwma);
        await RunAsync(_mesd);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Requests)]
    public Task PlainHttpClient() => RunAsync(_plain);

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task LodestarRoundRobin() => RunAsync(_roundRobin);

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task LodestarPeakEwma() => RunAsync(_peakEwma);

    [Benchmark(OperationsPerInvoke = Requests)]
    public Task MesdRoundRobin() => RunAsync(_mesd);

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _plain.Dispose();
        await _services.DisposeAsync();
        await _backend.DisposeAsync();
    }

    private static Task RunAsync(HttpClient client) => ConcurrentCallers.RunAsync(client, "/", Callers, RequestsPerCaller);
}
