using System.Diagnostics;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Resilience.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.Resilience;

/// <summary>A service provider with one Lodestar client named <c>test</c>, endpoints declared in a mutable configuration.</summary>
internal sealed class ResilienceTestHost : IAsyncDisposable
{
    public const string Service = "orders";

    private readonly ServiceProvider _provider;

    private ResilienceTestHost(ServiceProvider provider, MutableConfigurationProvider configuration, CapturingLoggerProvider logs)
    {
        _provider = provider;
        Configuration = configuration;
        Logs = logs;
    }

    public MutableConfigurationProvider Configuration { get; }

    public CapturingLoggerProvider Logs { get; }

    public IServiceProvider Services => _provider;

    public static ResilienceTestHost Create(Action<LodestarClientOptions>? configure = null, TimeProvider? timeProvider = null,
        HttpMessageHandler? primaryHandler = null, Action<IServiceCollection>? services = null, IEnumerable<KeyValuePair<string, string?>>? settings = null)
    {
        var source = new MutableConfigurationSource();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings ?? []).Add(source).Build();
        var logs = new CapturingLoggerProvider();
        var collection = new ServiceCollection();
        collection.AddSingleton<IConfiguration>(configuration);
        collection.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        if (timeProvider is not null)
        {
            collection.AddSingleton(timeProvider);
        }

        services?.Invoke(collection);
        collection.AddLodestar();
        var client = collection.AddHttpClient("test").AddLodestar(configure);
        if (primaryHandler is not null)
        {
            client.ConfigurePrimaryHttpMessageHandler(() => primaryHandler);
        }

        return new ResilienceTestHost(collection.BuildServiceProvider(), source.Provider, logs);
    }

    public HttpClient CreateClient() => _provider.GetRequiredService<IHttpClientFactory>().CreateClient("test");

    public void SetEndpoints(params string[] addresses) => Configuration.SetEndpoints(Service, addresses);

    /// <summary>Gets the balancer the <c>test</c> client's requests use (its route, with its own health settings).</summary>
    public async Task<ServiceBalancer> GetBalancerAsync(string client = "test")
    {
        var options = _provider.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>().Get(client);
        var route = await _provider.GetRequiredService<ResilienceRegistry>().GetRouteAsync(client, Service, options, CancellationToken.None);
        return route.Balancer;
    }

    /// <summary>Gets what the <c>test</c> client keeps for the service: retry budget, limiters, hedging latency tracker.</summary>
    public async Task<ClientResilience> GetResilienceAsync(string client = "test")
    {
        var options = _provider.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>().Get(client);
        var route = await _provider.GetRequiredService<ResilienceRegistry>().GetRouteAsync(client, Service, options, CancellationToken.None);
        return route.Resilience;
    }

    public async Task<EndpointState?> FindStateAsync(string address, string client = "test")
        => (await GetBalancerAsync(client)).Endpoints.FirstOrDefault(e => e.Endpoint.Address == address);

    public ValueTask DisposeAsync() => _provider.DisposeAsync();
}

/// <summary>Steady load from a few workers, each pacing itself; counts outcomes. Bounded in time and count.</summary>
internal sealed class LoadGenerator
{
    private readonly HttpClient _client;
    private readonly int _workers;
    private readonly TimeSpan _pause;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];
    private int _succeeded;
    private int _failed;
    private int _total;

    public LoadGenerator(HttpClient client, int requestsPerSecond, int workers = 8)
    {
        _client = client;
        _workers = workers;
        _pause = TimeSpan.FromSeconds(workers / (double)requestsPerSecond);
    }

    public int Succeeded => Volatile.Read(ref _succeeded);

    public int Failed => Volatile.Read(ref _failed);

    public int Total => Volatile.Read(ref _total);

    public ConcurrentQueueOfStrings Errors { get; } = new();

    public void Start(TimeSpan maxDuration)
    {
        _stop.CancelAfter(maxDuration);
        for (var i = 0; i < _workers; i++)
        {
            _tasks.Add(Task.Run(RunAsync));
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_tasks).WaitAsync(TimeSpan.FromSeconds(30));
    }

    private async Task RunAsync()
    {
        var clock = Stopwatch.StartNew();
        var sent = 0;
        while (!_stop.IsCancellationRequested && sent < 100_000)
        {
            sent++;
            Interlocked.Increment(ref _total);
            try
            {
                using var response = await _client.GetAsync($"http://{ResilienceTestHost.Service}/work");
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref _succeeded);
                }
                else
                {
                    Interlocked.Increment(ref _failed);
                    Errors.Enqueue($"status {(int)response.StatusCode}");
                }
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _failed);
                Errors.Enqueue(ex.GetType().Name + ": " + ex.Message);
            }

            // Pace to the target rate: each worker sends one request per pause on average.
            var due = _pause * sent - clock.Elapsed;
            if (due > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(due, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}

/// <summary>A thread-safe bag of short error descriptions for assertion messages.</summary>
internal sealed class ConcurrentQueueOfStrings : System.Collections.Concurrent.ConcurrentQueue<string>
{
    public override string ToString() => string.Join("; ", this.Take(10));
}

/// <summary>A source double: publishes endpoints once, then reports errors on every tick until stopped.</summary>
internal sealed class FlakySourceProvider(IReadOnlyList<string> addresses, TimeSpan errorPeriod) : IEndpointSourceProvider
{
    private int _errors;

    public string Name => "flaky";

    public int Errors => Volatile.Read(ref _errors);

    public bool Failing { get; set; } = true;

    public bool TryCreateSource(string serviceName, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IEndpointSource? source)
    {
        source = new Source(this);
        return true;
    }

    private sealed class Source(FlakySourceProvider owner) : IEndpointSource
    {
        public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
        {
            observer.OnEndpoints(owner.AddressesAsEndpoints());
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(owner.ErrorPeriod(), cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                if (owner.Failing)
                {
                    Interlocked.Increment(ref owner._errors);
                    observer.OnError(new HttpRequestException("registry unreachable (test double)"));
                }
            }
        }
    }

    private TimeSpan ErrorPeriod() => errorPeriod;

    private List<DiscoveredEndpoint> AddressesAsEndpoints()
        => addresses.Select(a => DiscoveredEndpoint.Create("127.0.0.1", int.Parse(a.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture))).ToList();
}

internal static class ServiceCollectionTestExtensions
{
    public static IServiceCollection AddSourceProvider(this IServiceCollection services, IEndpointSourceProvider provider)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton(provider));
        return services;
    }
}
