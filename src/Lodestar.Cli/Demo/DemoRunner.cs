using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Diagnostics;
using Lodestar.Grpc;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Cli.Demo;

/// <summary>
/// Runs the demo: starts the backends, declares them in the embedded configuration source, drives bounded load
/// through a Lodestar HttpClient (or, with <see cref="DemoOptions.Grpc"/>, unary gRPC calls through a <c>lodestar:///</c>
/// channel and a Lodestar gRPC balancer), and during the run slows one instance, restarts every instance in turn and
/// kills one.
/// </summary>
internal sealed class DemoRunner : IAsyncDisposable
{
    public const string ServiceName = "demo";

    private readonly DemoOptions _options;
    private readonly DemoConfigurationSource _configuration = new();
    private readonly List<DemoBackend> _current = [];
    private readonly Dictionary<string, DemoBackend> _byAddress = new(StringComparer.Ordinal);
    private readonly List<DemoBackend> _all = [];
    private readonly List<string> _events = [];
    private readonly Lock _gate = new();
    private readonly long _startTimestamp = Stopwatch.GetTimestamp();
    private ServiceProvider? _services;
    private MeterListener? _listener;
    private DemoMetricsServer? _metrics;
    private DemoAdminServer? _admin;
    private GrpcChannel? _channel;

    public DemoRunner(DemoOptions options)
    {
        _options = options;
    }

    public DemoStats Stats { get; } = new();

    /// <summary>Gets the URL of the demo's own /metrics endpoint once started.</summary>
    public string? MetricsUrl => _metrics?.Url;

    /// <summary>Gets the admin page's URL, or <see langword="null"/> when it is not served.</summary>
    public string? AdminUrl => _admin?.Url;

    public DemoOptions Options => _options;

    /// <summary>Gets a value indicating whether the backends speak HTTP/2 (asked for, or needed by gRPC).</summary>
    private bool UsesHttp2 => _options.Http2 || _options.Grpc;

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_startTimestamp);

    public IReadOnlyList<string> RecentEvents(int count)
    {
        lock (_gate)
        {
            return _events.TakeLast(count).ToList();
        }
    }

    public IReadOnlyList<DemoBackend> AllBackends()
    {
        lock (_gate)
        {
            return _all.ToList();
        }
    }

    public DemoBackend? FindBackend(string address)
    {
        lock (_gate)
        {
            return _byAddress.GetValueOrDefault(address);
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (_options.Grpc && DemoGrpc.BalancerFor(_options.Policy) is null)
        {
            // Before any backend starts.
            throw new CliException($"--grpc works with the policies {string.Join(", ", DemoGrpc.Policies)}; '{_options.Policy}' has no gRPC balancer.");
        }

        if (_options.MetricsPort is { } metricsPort)
        {
            _metrics = await DemoMetricsServer.StartAsync(metricsPort, cancellationToken);
            Event($"metrics at {_metrics.Url}");
        }

        for (var i = 0; i < _options.Instances; i++)
        {
            await AddBackendAsync($"i{i}", cancellationToken);
        }

        PublishEndpoints();
        Event($"started {_options.Instances} instances ({(_options.Grpc ? "gRPC over HTTP/2" : _options.Http2 ? "HTTP/2" : "HTTP/1.1")}), policy {_options.Policy}");

        _services = BuildServices();
        if (_options.AdminPort is { } adminPort)
        {
            _admin = await DemoAdminServer.StartAsync(adminPort, _services.GetRequiredService<ILodestarInspector>(), cancellationToken);
            Event($"admin page at {_admin.Url}");
        }

        ListenForRetries();
        Func<CancellationToken, Task> send;
        if (_options.Grpc)
        {
            _channel = CreateChannel(_services);
            var invoker = _channel.CreateCallInvoker();
            send = token => SendOneGrpcAsync(invoker, token);
        }
        else
        {
            var client = _services.GetRequiredService<IHttpClientFactory>().CreateClient(ServiceName);
            send = token => SendOneAsync(client, token);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Hard bound on wall time: the run plus a grace period for the last requests.
        stop.CancelAfter(_options.Duration + TimeSpan.FromSeconds(15));
        var load = RunLoadAsync(send, stop.Token);
        var chaos = RunScenarioAsync(stop.Token);
        await Task.WhenAll(load, chaos);
    }

    public async ValueTask DisposeAsync()
    {
        _listener?.Dispose();
        _channel?.Dispose();
        if (_metrics is not null)
        {
            await _metrics.DisposeAsync();
        }

        if (_admin is not null)
        {
            await _admin.DisposeAsync();
        }

        if (_services is not null)
        {
            await _services.DisposeAsync();
        }

        foreach (var backend in AllBackends())
        {
            await backend.DisposeAsync();
        }
    }

    private ServiceProvider BuildServices()
    {
        var configuration = new ConfigurationBuilder().Add(_configuration).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.None));
        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(5));
        if (_options.Grpc)
        {
            // The lodestar:/// resolver and the lodestar_* balancers; the client options below apply to the channel too
            // (outlier detection, breakers, active checks), by the client name it is given.
            services.AddLodestarGrpc();
        }

        services.AddHttpClient(ServiceName, c =>
        {
            c.Timeout = TimeSpan.FromSeconds(10);
            if (UsesHttp2)
            {
                c.DefaultRequestVersion = System.Net.HttpVersion.Version20;
                c.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            }
        }).AddLodestar(o =>
        {
            o.Policy = _options.Policy;
            o.MaxAttempts = 3;

            // The resilience features the demo shows off (docs/resilience.md explains each):
            // retries on 5xx too, bounded per try and overall, inside the retry budget;
            o.Retry.RetryOnStatusCodes = [500, 502, 503, 504];
            o.Retry.PerTryTimeout = TimeSpan.FromSeconds(1);
            o.Retry.Timeout = TimeSpan.FromSeconds(5);

            // ejection of an instance that stops answering after three gateway failures, for a few seconds;
            o.OutlierDetection.Interval = TimeSpan.FromSeconds(1);
            o.OutlierDetection.BaseEjectionTime = TimeSpan.FromSeconds(3);
            o.OutlierDetection.ConsecutiveGatewayFailures = 3;
            o.OutlierDetection.EnforcingConsecutiveGatewayFailures = 100;

            // active checks of each instance's readiness endpoint, so draining instances leave before they close;
            o.HealthChecks.Enabled = true;
            o.HealthChecks.Path = "/readyz";
            o.HealthChecks.Interval = TimeSpan.FromMilliseconds(500);
            o.HealthChecks.IntervalJitter = TimeSpan.FromMilliseconds(100);
            o.HealthChecks.UnhealthyThreshold = 1;

            // per-instance circuit breakers, and hedging of requests slower than the 95th percentile.
            o.CircuitBreaker.Enabled = true;
            o.CircuitBreaker.MinimumThroughput = 10;
            o.Hedging.Enabled = true;
            o.Hedging.DelayPercentile = 0.95;
        });
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }

    private GrpcChannel CreateChannel(IServiceProvider services)
    {
        var balancer = DemoGrpc.BalancerFor(_options.Policy)!;
        var options = new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(services, balancer, clientName: ServiceName);
        options.ServiceConfig!.MethodConfigs.Add(DemoGrpc.RetryConfig());
        return GrpcChannel.ForAddress($"lodestar:///{ServiceName}", options);
    }

    private void ListenForRetries()
    {
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == LodestarDiagnostics.Name && instrument.Name == "lodestar.client.retries")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
        {
            for (var i = 0; i < value; i++)
            {
                Stats.AddRetry();
            }
        });
        _listener.Start();
    }

    private async Task RunLoadAsync(Func<CancellationToken, Task> send, CancellationToken cancellationToken)
    {
        var total = _options.MaxRequests;
        var interval = TimeSpan.FromSeconds(1.0 / _options.Rps);
        long issued = 0;
        var start = Stopwatch.GetTimestamp();

        async Task WorkerAsync()
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var n = Interlocked.Increment(ref issued) - 1;
                if (n >= total)
                {
                    return;
                }

                var due = interval * n - Stopwatch.GetElapsedTime(start);
                if (due > TimeSpan.FromMilliseconds(1))
                {
                    try
                    {
                        await Task.Delay(due, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                await send(cancellationToken);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(WorkerAsync, CancellationToken.None)));
    }

    private async Task SendOneAsync(HttpClient client, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://{ServiceName}/work")
        {
            // SendAsync does not apply HttpClient.DefaultRequestVersion: set it on the message.
            Version = client.DefaultRequestVersion,
            VersionPolicy = client.DefaultVersionPolicy,
        };
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            Stats.Record(request.RequestUri!.Authority, ms, response.IsSuccessStatusCode);
            if (!response.IsSuccessStatusCode)
            {
                Event($"request to {request.RequestUri.Authority} answered {(int)response.StatusCode} {response.ReasonPhrase}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            if (cancellationToken.IsCancellationRequested && ex is OperationCanceledException)
            {
                return;
            }

            var address = request.RequestUri is { IsAbsoluteUri: true } uri ? uri.Authority : "-";
            Stats.Record(address, Stopwatch.GetElapsedTime(started).TotalMilliseconds, ok: false);
            Event($"request failed on {address}: {ex.Message}");
        }
    }

    private async Task SendOneGrpcAsync(CallInvoker invoker, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            // The run's token is not the call's: a call in flight when the run ends finishes within its deadline.
            var reply = await invoker.AsyncUnaryCall(DemoGrpc.Work, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(10)), string.Empty);
            var (address, previousAttempts) = DemoGrpc.ParseReply(reply);
            Stats.Record(address, Stopwatch.GetElapsedTime(started).TotalMilliseconds, ok: true);
            for (var i = 0; i < previousAttempts; i++)
            {
                Stats.AddRetry();
            }
        }
        catch (RpcException ex)
        {
            if (cancellationToken.IsCancellationRequested && ex.StatusCode == StatusCode.Cancelled)
            {
                return;
            }

            Stats.Record("-", Stopwatch.GetElapsedTime(started).TotalMilliseconds, ok: false);
            Event($"call failed: {ex.StatusCode} {ex.Status.Detail}");
        }
    }

    private async Task RunScenarioAsync(CancellationToken cancellationToken)
    {
        var d = _options.Duration;
        try
        {
            // 1. One instance becomes 10x slower for a while.
            await WaitUntilAsync(d * 0.15, cancellationToken);
            var slow = Current(0);
            slow.SlowFactor = 10;
            slow.State = DemoInstanceState.Slow;
            Event($"{slow.Name} ({slow.Address}) is now 10x slower");
            await WaitUntilAsync(d * 0.40, cancellationToken);
            slow.SlowFactor = 1;
            slow.State = DemoInstanceState.Serving;
            Event($"{slow.Name} is back to normal speed");

            // 2. Rolling restart, one instance at a time: stop, start on a new port, update the configuration.
            var step = d * 0.35 / _options.Instances;
            for (var i = 0; i < _options.Instances; i++)
            {
                await WaitUntilAsync(d * 0.45 + step * i, cancellationToken);
                var old = Current(i);
                old.State = DemoInstanceState.Restarting;
                await old.StopAsync();
                var replacement = await DemoBackend.StartAsync(old.Name, UsesHttp2, cancellationToken);
                Replace(i, replacement);
                PublishEndpoints();
                Event($"restarted {old.Name}: {old.Address} -> {replacement.Address}");
            }

            // 3. One instance dies without warning; the configuration still lists it.
            await WaitUntilAsync(d * 0.85, cancellationToken);
            var victim = Current(_options.Instances - 1);
            await victim.KillAsync();
            Event($"killed {victim.Name} ({victim.Address}) without warning");
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task WaitUntilAsync(TimeSpan at, CancellationToken cancellationToken)
    {
        var wait = at - Elapsed;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }
    }

    private async Task AddBackendAsync(string name, CancellationToken cancellationToken)
    {
        var backend = await DemoBackend.StartAsync(name, UsesHttp2, cancellationToken);
        lock (_gate)
        {
            _current.Add(backend);
            _all.Add(backend);
            _byAddress[backend.Address] = backend;
        }
    }

    private DemoBackend Current(int index)
    {
        lock (_gate)
        {
            return _current[index];
        }
    }

    private void Replace(int index, DemoBackend replacement)
    {
        lock (_gate)
        {
            _current[index] = replacement;
            _all.Add(replacement);
            _byAddress[replacement.Address] = replacement;
        }
    }

    private void PublishEndpoints()
    {
        List<string> urls;
        lock (_gate)
        {
            urls = _current.Select(b => b.Url).ToList();
        }

        _configuration.Provider.SetEndpoints(ServiceName, urls);
    }

    private void Event(string text)
    {
        lock (_gate)
        {
            _events.Add(string.Create(CultureInfo.InvariantCulture, $"{Elapsed.TotalSeconds,5:0.0}s {text}"));
        }
    }
}
