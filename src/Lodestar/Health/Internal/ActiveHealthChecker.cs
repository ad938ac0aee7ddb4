using System.Globalization;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.Logging;

namespace Lodestar.Health.Internal;

/// <summary>
/// Probes every endpoint of one service with the stage's <see cref="HealthProbe"/> (an HTTP GET unless another protocol
/// is configured), all on one timer per service: a round checks all endpoints
/// concurrently, applies the results to the endpoints' states, has the stage publish a new snapshot when a flag
/// changed, and re-arms the timer for the interval plus a random jitter. A change of the endpoint set brings the next
/// round forward (<see cref="CheckSoon"/>), so new endpoints are checked soon.
/// </summary>
internal sealed partial class ActiveHealthChecker : IDisposable
{
    private readonly HealthStage _stage;
    private readonly HealthCheckOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly HealthProbe _probe;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ITimer _timer;
    private int _running;
    private int _rerun;
    private volatile bool _disposed;

    // probe: owned (disposed) by the checker from now on; null for the built-in HTTP probe.
    public ActiveHealthChecker(HealthStage stage, HealthCheckOptions options, TimeProvider timeProvider, RandomSource random, LodestarMetrics? metrics, ILogger logger,
        HealthProbe? probe = null)
    {
        _stage = stage;
        _options = options;
        _timeProvider = timeProvider;
        _random = random;
        _metrics = metrics;
        _logger = logger;
        _probe = probe ?? new HttpHealthProbe(options);
        using (ExecutionContext.SuppressFlow())
        {
            // Created idle and started once assigned: a timer due at once may fire before CreateTimer returns, and the
            // round it starts re-arms _timer.
            _timer = timeProvider.CreateTimer(static s => ((ActiveHealthChecker)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _timer.Dispose();
        _stopping.Cancel();
        _stopping.Dispose();
        _probe.Dispose();
    }

    /// <summary>Tells the probe that endpoints left the service, so it can release what it keeps for them.</summary>
    public void Release(List<EndpointState> removed)
    {
        if (_disposed)
        {
            return;
        }

        foreach (var state in removed)
        {
            Release(state.Endpoint);
        }
    }

    /// <summary>Brings the next round forward: the endpoint set changed.</summary>
    public void CheckSoon()
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
            var endpoints = _stage.Snapshot.Endpoints;
            var checks = new Task<bool>[endpoints.Length];
            for (var i = 0; i < checks.Length; i++)
            {
                checks[i] = CheckAsync(endpoints[i]);
            }

            var results = await Task.WhenAll(checks).ConfigureAwait(false);
            if (Array.IndexOf(results, true) >= 0)
            {
                _stage.PublishHealth();
            }
        }
        catch (Exception ex) when (!_disposed)
        {
            Log.RoundFailed(_logger, _stage.ServiceName, ex);
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
        HealthProbeResult result;
        using var timeout = new CancellationTokenSource(_options.Timeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _stopping.Token);
        try
        {
            result = await _probe.ProbeAsync(endpoint, linked.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!_stopping.IsCancellationRequested)
        {
            // Any failure of the probe is a failed check, whatever the protocol threw.
            result = HealthProbeResult.Unhealthy(string.IsNullOrEmpty(ex.Message) ? ex.GetType().Name : ex.Message);
        }
        catch (Exception) when (_stopping.IsCancellationRequested)
        {
            return false;
        }

        if (state.Departed && !_stage.Tracks(endpoint))
        {
            // The endpoint left while it was probed: what the probe made for it now has no owner but this call.
            Release(endpoint);
        }

        if (_stopping.IsCancellationRequested)
        {
            return false;
        }

        if (!result.IsHealthy)
        {
            // A probe that noticed the cancellation reports it in its own words; the timeout is the cause.
            var reason = timeout.IsCancellationRequested
                ? string.Create(CultureInfo.InvariantCulture, $"timeout after {_options.Timeout.TotalMilliseconds} ms")
                : result.Reason!;
            Log.CheckFailed(_logger, _stage.ServiceName, endpoint.Address, SecretRedactor.Default.Redact(reason)!);
        }

        _metrics?.RecordHealthCheck(_stage.ServiceName, endpoint.Address, result.IsHealthy);
        return _stage.ApplyCheck(state, result.IsHealthy);
    }

    private void Release(DiscoveredEndpoint endpoint)
    {
        try
        {
            _probe.ReleaseEndpoint(endpoint);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.ReleaseFailed(_logger, _stage.ServiceName, endpoint.Address, ex);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(210, LogLevel.Debug, "Health check of endpoint {Endpoint} of service {Service} failed: {Reason}.", EventName = "HealthCheckFailed")]
        public static partial void CheckFailed(ILogger logger, string service, string endpoint, string reason);

        [LoggerMessage(211, LogLevel.Error, "A health check round of service {Service} failed.", EventName = "HealthCheckRoundFailed")]
        public static partial void RoundFailed(ILogger logger, string service, Exception exception);

        [LoggerMessage(212, LogLevel.Warning, "The health probe of service {Service} failed to release what it kept for endpoint {Endpoint}.", EventName = "HealthProbeReleaseFailed")]
        public static partial void ReleaseFailed(ILogger logger, string service, string endpoint, Exception exception);
    }
}
