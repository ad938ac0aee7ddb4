using Lodestar.AspNetCore.Hosting.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.AspNetCore.Health.Internal;

/// <summary>
/// Evaluates readiness: the registered health checks selected by <see cref="LodestarServingOptions.ReadinessTag"/>,
/// run concurrently, each within its deadline; the result is cached for
/// <see cref="LodestarServingOptions.CacheDuration"/> and concurrent probes share one evaluation.
/// </summary>
/// <remarks>
/// The checks are run here rather than through <see cref="HealthCheckService"/> so that each gets its own deadline
/// and a check that blocks, or ignores its token, cannot hold a probe past it. An evaluation is not tied to the
/// probe that started it: a probe that gives up does not cancel the checks other probes are waiting for.
/// </remarks>
internal sealed partial class ReadinessProbe
{
    private readonly IServiceScopeFactory _scopeFactory;
    private readonly IOptions<HealthCheckServiceOptions> _checks;
    private readonly IOptionsMonitor<LodestarServingOptions> _options;
    private readonly ServingState _state;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private volatile ReadinessReport? _cached;
    private Task<ReadinessReport>? _evaluation;
    private bool? _lastReady;

    public ReadinessProbe(IServiceScopeFactory scopeFactory, IOptions<HealthCheckServiceOptions> checks, IOptionsMonitor<LodestarServingOptions> options,
        ServingState state, TimeProvider timeProvider, ILogger<ReadinessProbe> logger)
    {
        _scopeFactory = scopeFactory;
        _checks = checks;
        _options = options;
        _state = state;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>Gets the current readiness, evaluating the checks only when the cached result has expired.</summary>
    public Task<ReadinessReport> GetAsync(CancellationToken cancellationToken)
    {
        if (_state.IsDraining)
        {
            // Draining answers at once and never calls a dependency.
            return Task.FromResult(ReadinessReport.Draining);
        }

        if (Fresh() is { } cached)
        {
            return Task.FromResult(cached);
        }

        Task<ReadinessReport> evaluation;
        lock (_gate)
        {
            // An evaluation may have finished since the check above: its result is cached before its task completes,
            // so looking again here keeps a probe that arrives at that moment from running the checks a second time.
            if (Fresh() is { } justCached)
            {
                return Task.FromResult(justCached);
            }

            if (_evaluation is null || _evaluation.IsCompleted)
            {
                // Start outside the caller's ExecutionContext: the evaluation is shared and must not carry one probe's Activity.
                using (ExecutionContext.SuppressFlow())
                {
                    _evaluation = Task.Run(EvaluateAsync, CancellationToken.None);
                }
            }

            evaluation = _evaluation;
        }

        return evaluation.WaitAsync(cancellationToken);
    }

    private ReadinessReport? Fresh()
    {
        var cached = _cached;
        return cached is not null && _timeProvider.GetElapsedTime(cached.Timestamp) < _options.CurrentValue.CacheDuration ? cached : null;
    }

    private async Task<ReadinessReport> EvaluateAsync()
    {
        var options = _options.CurrentValue;
        var tag = options.ReadinessTag;
        var registrations = _checks.Value.Registrations.Where(r => tag is null || r.Tags.Contains(tag)).ToArray();
        var scope = _scopeFactory.CreateAsyncScope();
        var runs = new Task<ReadinessEntry>[registrations.Length];
        var checks = new Task?[registrations.Length];
        for (var i = 0; i < registrations.Length; i++)
        {
            var registration = registrations[i];
            var timeout = registration.Timeout > TimeSpan.Zero && registration.Timeout < options.CheckTimeout ? registration.Timeout : options.CheckTimeout;
            runs[i] = RunCheckAsync(scope.ServiceProvider, registration, timeout, checks, i);
        }

        var entries = await Task.WhenAll(runs).ConfigureAwait(false);

        // A check past its deadline may still be running on services from the scope: dispose it only once all end.
        _ = DisposeScopeWhenChecksEndAsync(scope, checks);

        var status = HealthStatus.Healthy;
        foreach (var entry in entries)
        {
            if (entry.Status < status)
            {
                status = entry.Status;
            }
        }

        var report = new ReadinessReport(status, draining: false, entries, _timeProvider.GetTimestamp());
        _cached = report;
        LogTransition(report);
        return report;
    }

    private async Task<ReadinessEntry> RunCheckAsync(IServiceProvider services, HealthCheckRegistration registration, TimeSpan timeout, Task?[] checks, int index)
    {
        var started = _timeProvider.GetTimestamp();
        using var deadline = new CancellationTokenSource(timeout, _timeProvider);
        try
        {
            var check = registration.Factory(services);
            var context = new HealthCheckContext { Registration = registration };

            // Task.Run so that a check which blocks before its first await still cannot hold the probe past its deadline.
            var running = Task.Run(() => check.CheckHealthAsync(context, deadline.Token), CancellationToken.None);
            checks[index] = running;
            var result = await running.WaitAsync(timeout, _timeProvider).ConfigureAwait(false);
            return new ReadinessEntry(registration.Name, result.Status, _timeProvider.GetElapsedTime(started), result.Description);
        }
        catch (Exception ex) when (ex is TimeoutException || (ex is OperationCanceledException && deadline.IsCancellationRequested))
        {
            await deadline.CancelAsync().ConfigureAwait(false);
            Log.CheckTimedOut(_logger, registration.Name, timeout.TotalMilliseconds);
            return new ReadinessEntry(registration.Name, HealthStatus.Unhealthy, _timeProvider.GetElapsedTime(started),
                $"Timed out after {timeout.TotalMilliseconds:0} ms.");
        }
        catch (Exception ex)
        {
            // The exception text may carry details of the dependency; it goes to the log, only its type to the probe.
            Log.CheckThrew(_logger, registration.Name, ex);
            return new ReadinessEntry(registration.Name, registration.FailureStatus, _timeProvider.GetElapsedTime(started),
                $"The check threw {ex.GetType().Name}.");
        }
    }

    private async Task DisposeScopeWhenChecksEndAsync(AsyncServiceScope scope, Task?[] checks)
    {
        try
        {
            foreach (var check in checks)
            {
                if (check is not null && !check.IsCompleted)
                {
                    try
                    {
                        await check.ConfigureAwait(false);
                    }
                    catch (Exception ex)
                    {
                        // Already reported as a timeout; this is how the abandoned check ended.
                        Log.AbandonedCheckEnded(_logger, ex.GetType().Name);
                    }
                }
            }

            await scope.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.ScopeDisposeFailed(_logger, ex);
        }
    }

    private void LogTransition(ReadinessReport report)
    {
        bool? previous;
        lock (_gate)
        {
            previous = _lastReady;
            _lastReady = report.IsReady;
        }

        if (previous == report.IsReady)
        {
            Log.Evaluated(_logger, report.Status.ToString(), report.Entries.Count);
            return;
        }

        if (report.IsReady)
        {
            Log.BecameReady(_logger, report.Entries.Count);
        }
        else
        {
            var failing = string.Join(", ", report.Entries.Where(e => e.Status == HealthStatus.Unhealthy).Select(e => e.Name));
            Log.BecameNotReady(_logger, failing);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Readiness: ready ({Count} checks passing).", EventName = "BecameReady")]
        public static partial void BecameReady(ILogger logger, int count);

        [LoggerMessage(2, LogLevel.Warning, "Readiness: not ready; failing checks: {Checks}.", EventName = "BecameNotReady")]
        public static partial void BecameNotReady(ILogger logger, string checks);

        [LoggerMessage(3, LogLevel.Warning, "Readiness check {Check} did not finish within {TimeoutMs} ms; it counts as unhealthy.", EventName = "CheckTimedOut")]
        public static partial void CheckTimedOut(ILogger logger, string check, double timeoutMs);

        [LoggerMessage(4, LogLevel.Warning, "Readiness check {Check} threw; it counts as its failure status.", EventName = "CheckThrew")]
        public static partial void CheckThrew(ILogger logger, string check, Exception exception);

        [LoggerMessage(5, LogLevel.Debug, "Readiness evaluated: {Status} ({Count} checks).", EventName = "Evaluated")]
        public static partial void Evaluated(ILogger logger, string status, int count);

        [LoggerMessage(7, LogLevel.Debug, "A readiness check abandoned at its deadline ended with {Exception}.", EventName = "AbandonedCheckEnded")]
        public static partial void AbandonedCheckEnded(ILogger logger, string exception);

        [LoggerMessage(6, LogLevel.Error, "Disposing the readiness checks' service scope failed.", EventName = "ScopeDisposeFailed")]
        public static partial void ScopeDisposeFailed(ILogger logger, Exception exception);
    }
}
