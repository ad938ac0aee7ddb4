using System.Net;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Benchmarks.Http;

/// <summary>
/// The client pipeline's own cost, with no network: every client ends in a transport that answers at once, so the time
/// is only what the layers above the transport spend on one GET. Plain <see cref="HttpClient"/>, a bare factory client,
/// Microsoft.Extensions.ServiceDiscovery's resolving handler and Lodestar's handler (default resilience on) over the
/// same transport.
/// </summary>
[MemoryDiagnoser]
public class PipelineCostBenchmarks
{
    private const string Path = "/items?id=7";
    private readonly ImmediateTransport _transport = new();
    private HttpClient _plain = null!;
    private HttpClient _factory = null!;
    private HttpClient _mesd = null!;
    private HttpClient _lodestar = null!;
    private HttpClient _lodestarNoFactoryLogging = null!;
    private ServiceProvider _services = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var services = NoNetworkServices.Create();
        services.AddServiceDiscovery();
        services.AddHttpClient("factory").ConfigurePrimaryHttpMessageHandler(() => _transport);
        services.AddHttpClient("mesd").AddServiceDiscovery().ConfigurePrimaryHttpMessageHandler(() => _transport);
        services.AddHttpClient("lodestar").AddLodestar().ConfigurePrimaryHttpMessageHandler(() => _transport);
        services.AddHttpClient("lodestar-quiet").RemoveAllLoggers().AddLodestar().ConfigurePrimaryHttpMessageHandler(() => _transport);
        _services = services.BuildServiceProvider();
        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _plain = new HttpClient(_transport) { BaseAddress = new Uri("http://127.0.0.1:5000") };
        _factory = factory.CreateClient("factory");
        _factory.BaseAddress = new Uri("http://127.0.0.1:5000");
        _mesd = factory.CreateClient("mesd");
        _mesd.BaseAddress = new Uri("http://svc");
        _lodestar = factory.CreateClient("lodestar");
        _lodestar.BaseAddress = new Uri("http://svc");
        _lodestarNoFactoryLogging = factory.CreateClient("lodestar-quiet");
        _lodestarNoFactoryLogging.BaseAddress = new Uri("http://svc");
        foreach (var client in new[] { _plain, _factory, _mesd, _lodestar, _lodestarNoFactoryLogging })
        {
            (await client.GetAsync(Path)).EnsureSuccessStatusCode();
        }
    }

    [Benchmark(Baseline = true)]
    public Task<int> Plain() => SendAsync(_plain);

    [Benchmark]
    public Task<int> FactoryClient() => SendAsync(_factory);

    [Benchmark]
    public Task<int> ServiceDiscovery() => SendAsync(_mesd);

    [Benchmark]
    public Task<int> Lodestar() => SendAsync(_lodestar);

    [Benchmark]
    public Task<int> LodestarWithoutFactoryLogging() => SendAsync(_lodestarNoFactoryLogging);

    private static async Task<int> SendAsync(HttpClient client)
    {
        using var response = await client.GetAsync(Path);
        return (int)response.StatusCode;
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        _plain.Dispose();
        await _services.DisposeAsync();
    }

    /// <summary>Answers every request at once with an empty 200, as a transport whose answer is already buffered.</summary>
    private sealed class ImmediateTransport : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            => Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request });

        protected override void Dispose(bool disposing)
        {
            // Shared by every client of the benchmark; it holds nothing.
        }
    }
}
