using System.Net;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Benchmarks.Http;

/// <summary>
/// What hedging costs a request that never hedges, with no network: the same Lodestar client (default resilience on)
/// with hedging off and on (a delay no answer reaches), over a transport that answers on the thread pool after the
/// request's first await, as a socket does. One caller, and <see cref="Callers"/> callers at once (the pooled rounds
/// and the timer are shared by every request of a client, so contention shows only there).
/// </summary>
[MemoryDiagnoser]
public class IdleHedgingBenchmarks
{
    /// <summary>Concurrent callers in the <c>Concurrent</c> benchmarks.</summary>
    public const int Callers = 16;

    /// <summary>Requests each concurrent caller sends per invocation.</summary>
    public const int PerCaller = 64;

    private const string Path = "/items?id=7";
    private readonly YieldingTransport _transport = new();
    private HttpClient _unhedged = null!;

    /// <summary>The hedging delay: a few milliseconds (deadlines pass all the time, as with answers in a millisecond and a p98 delay), or one no run reaches.</summary>
    [Params(2, 10_000)]
    public int DelayMilliseconds { get; set; }

    private HttpClient _hedged = null!;
    private ServiceProvider _services = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var services = NoNetworkServices.Create();
        services.AddHttpClient("unhedged").AddLodestar().ConfigurePrimaryHttpMessageHandler(() => _transport);
        services.AddHttpClient("hedged").AddLodestar(o =>
        {
            o.Hedging.Enabled = true;
            o.Hedging.Delay = TimeSpan.FromMilliseconds(DelayMilliseconds);
        }).ConfigurePrimaryHttpMessageHandler(() => _transport);
        _services = services.BuildServiceProvider();
        var factory = _services.GetRequiredService<IHttpClientFactory>();
        _unhedged = factory.CreateClient("unhedged");
        _unhedged.BaseAddress = new Uri("http://svc");
        _hedged = factory.CreateClient("hedged");
        _hedged.BaseAddress = new Uri("http://svc");
        foreach (var client in new[] { _unhedged, _hedged })
        {
            (await client.GetAsync(Path)).EnsureSuccessStatusCode();
        }
    }

    [Benchmark(Baseline = true)]
    public Task<int> Unhedged() => SendAsync(_unhedged);

    [Benchmark]
    public Task<int> IdleHedging() => SendAsync(_hedged);

    [Benchmark(OperationsPerInvoke = Callers * PerCaller)]
    public Task ConcurrentUnhedged() => ConcurrentCallers.RunAsync(_unhedged, Path, Callers, PerCaller);

    [Benchmark(OperationsPerInvoke = Callers * PerCaller)]
    public Task ConcurrentIdleHedging() => ConcurrentCallers.RunAsync(_hedged, Path, Callers, PerCaller);

    private static async Task<int> SendAsync(HttpClient client)
    {
        using var response = await client.GetAsync(Path);
        return (int)response.StatusCode;
    }

    [GlobalCleanup]
    public async Task CleanupAsync() => await _services.DisposeAsync();

    /// <summary>
    /// Answers with an empty 200 after yielding to the thread pool, holding a registration on the request's token
    /// meanwhile, as <see cref="SocketsHttpHandler"/> does while it waits for the response.
    /// </summary>
    private sealed class YieldingTransport : HttpMessageHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            using var registration = cancellationToken.UnsafeRegister(static _ => { }, null);
            await Task.Yield();
            return new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request };
        }

        protected override void Dispose(bool disposing)
        {
            // Shared by every client of the benchmark; it holds nothing.
        }
    }
}
