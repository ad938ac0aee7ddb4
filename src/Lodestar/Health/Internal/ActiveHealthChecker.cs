using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Health.Internal;

/// <summary>
/// Probes every endpoint of one service with an HTTP GET, all on one timer per service: a round checks all endpoints
/// concurrently, applies the results, rebuilds the picker when a flag changed, and re-arms the timer for the interval
/// plus a random jitter. A change of the endpoint set brings the next round forward, so new endpoints are checked soon.
/// </summary>
internal sealed partial class ActiveHealthChecker : IDisposable
{
    private readonly ServiceHealth _health;
    private readonly ServiceBalancer _balancer;
    private readonly HealthCheckOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics _metrics;
    private readonly ILogger _logger;
    private readonly HttpMessageInvoker _invoker;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ITimer _timer;
    private readonly IDisposable? _subscription;
    private int _running;
    private int _rerun;
    private volatile bool _disposed;

    public ActiveHealthChecker(ServiceHealth health, ServiceBalancer balancer, HealthCheckOptions options, IEndpointResolver resolver, string? sourceName,
        TimeProvider timeProvider, RandomSource random, LodestarMetrics metrics, ILogger logger)
    {
        _health = health;
        _balancer = balancer;
        _options = options;
        _timeProvider = timeProvider;
        _random = random;
        _metrics = metrics;
        _logger = logger;
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            ConnectTimeout = options.Timeout,
            PooledConnectionIdleTimeout = options.Interval + options.Interval,
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
        });
        balancer.NewEndpointsStartUnhealthy = options.HoldNewEndpointsUntilHealthy;
        using (ExecutionContext.SuppressFlow())
        {
            _timer = timeProvider.CreateTimer(static s => ((ActiveHealthChecker)s!).OnTimer(), this, TimeSpan.Zero, Timeout.InfiniteTimeSpan);
            try
            {
                _subscription = resolver.Watch(balancer.ServiceName, sourceName, _ => CheckSoon());
            }
            catch (EndpointResolutionException ex)
            {
                // The balancer exists, so its source does; without the subscription new endpoints wait one interval.
                Log.SubscribeFailed(_logger, balancer.ServiceName, ex);
            }
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _subscription?.Dispose();
        _timer.Dispose();
        _stopping.Cancel();
        _stopping.Dispose();
        _invoker.Dispose();
    }

    private void CheckSoon()
    {
        if (!_disposed)
        {
            _timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnTimer() => _ = RunRoundAsync();

    internal async Task RunRoundAsync()
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            // A round is in progress: run another right after it, so a new endpoint is not left unchecked.
            Volatile.Write(ref _rerun, 1);
            return;
        }

        var rerun = false;
        try
        {
            var endpoints = _balancer.Endpoints;
            var checks = new Task<bool>[endpoints.Count];
            for (var i = 0; i < checks.Length; i++)
            {
                checks[i] = CheckAsync(endpoints[i]);
            }

            var results = await Task.WhenAll(checks).ConfigureAwait(false);
            if (Array.IndexOf(results, true) >= 0)
            {
                _balancer.RefreshHealth();
            }
        }
        catch (Exception ex) when (!_disposed)
        {
            Log.RoundFailed(_logger, _balancer.ServiceName, ex);
        }
        catch (ObjectDisposedException)
        {
            // Disposed mid-round: nothing left to update.
        }
        finally
        {
            rerun = Interlocked.Exchange(ref _rerun, 0) == 1;
            Volatile.Write(ref _running, 0);
        }

        if (!_disposed)
        {
            var next = rerun ? TimeSpan.Zero : _options.Interval + (_options.IntervalJitter * _random.NextDouble());
            try
            {
                _timer.Change(next, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Disposed between the check and the call.
            }
        }
    }

    private async Task<bool> CheckAsync(EndpointState state)
    {
        var endpoint = state.Endpoint;
        bool passed;
        using var timeout = new CancellationTokenSource(_options.Timeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token);
        try
        {
            var uri = new Uri($"{endpoint.Scheme ?? "http"}://{endpoint.Address}{_options.Path}");
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            using var response = await _invoker.SendAsync(request, linked.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            passed = status >= _options.MinHealthyStatus && status <= _options.MaxHealthyStatus;
            if (!passed)
            {
                Log.CheckFailed(_logger, _balancer.ServiceName, endpoint.Address, $"status {status}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException or UriFormatException)
        {
            if (_stopping.IsCancellationRequested)
            {
                return false;
            }

            passed = false;
            Log.CheckFailed(_logger, _balancer.ServiceName, endpoint.Address, timeout.IsCancellationRequested ? "timeout" : ex.Message);
        }

        _metrics.RecordHealthCheck(_balancer.ServiceName, endpoint.Address, passed);
        return _health.ApplyCheck(state, passed, _options);
    }

    private static partial class Log
    {
        [LoggerMessage(210, LogLevel.Debug, "Health check of endpoint {Endpoint} of service {Service} failed: {Reason}.", EventName = "HealthCheckFailed")]
        public static partial void CheckFailed(ILogger logger, string service, string endpoint, string reason);

        [LoggerMessage(211, LogLevel.Error, "A health check round of service {Service} failed.", EventName = "HealthCheckRoundFailed")]
        public static partial void RoundFailed(ILogger logger, string service, Exception exception);

        [LoggerMessage(212, LogLevel.Warning, "Active health checks of service {Service} cannot follow endpoint changes; new endpoints are checked on the next round.", EventName = "HealthCheckSubscribeFailed")]
        public static partial void SubscribeFailed(ILogger logger, string service, Exception exception);
    }
}
