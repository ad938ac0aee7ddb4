using System.Runtime.CompilerServices;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Resilience;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Health.Internal;

/// <summary>
/// The health view of one service balancer: passive outlier detection (Envoy's), per-endpoint circuit breakers and
/// active checks. Each sets a flag on <see cref="EndpointState"/> and asks the balancer to rebuild its picker, which
/// then routes over endpoints that are healthy by the registry, by active checks, not ejected and not broken — or
/// over all of them in panic mode.
/// </summary>
/// <remarks>
/// Ejections are counted and decided under <see cref="_gate"/> (rare: a consecutive-failure threshold crossed or an
/// interval tick); every per-request update is <see cref="Interlocked"/>. The balancer's rebuild always happens after
/// the gate is released.
/// </remarks>
internal sealed partial class ServiceHealth : IDisposable
{
    private readonly ServiceBalancer _balancer;
    private readonly OutlierDetectionOptions _outlier;
    private readonly CircuitBreakerOptions _breaker;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConditionalWeakTable<EndpointState, EndpointHealth> _endpoints = new();
    private readonly ConditionalWeakTable<EndpointState, EndpointHealth>.CreateValueCallback _create;
    private readonly Lock _gate = new();
    private readonly ITimer? _intervalTimer;
    private readonly ActiveHealthChecker? _checker;
    private volatile bool _disposed;

    public ServiceHealth(ServiceBalancer balancer, OutlierDetectionOptions outlier, CircuitBreakerOptions breaker, HealthCheckOptions checks,
        IEndpointResolver resolver, string? sourceName, TimeProvider timeProvider, RandomSource random, LodestarMetrics metrics, ILoggerFactory loggerFactory)
    {
        _balancer = balancer;
        _outlier = outlier;
        _breaker = breaker;
        _timeProvider = timeProvider;
        _random = random;
        _metrics = metrics;
        _logger = loggerFactory.CreateLogger("Lodestar.Health");
        _create = state => new EndpointHealth(state, _breaker.Enabled
            ? new CircuitBreaker(_timeProvider, _breaker.FailureRatio, _breaker.MinimumThroughput, _breaker.SamplingDuration, _breaker.HalfOpenMaxProbes)
            : null);
        TracksOutcomes = outlier.Enabled || breaker.Enabled;

        using (ExecutionContext.SuppressFlow())
        {
            if (outlier.Enabled)
            {
                _intervalTimer = timeProvider.CreateTimer(static s => ((ServiceHealth)s!).OnInterval(), this, outlier.Interval, outlier.Interval);
            }
        }

        if (checks.Enabled)
        {
            _checker = new ActiveHealthChecker(this, balancer, checks, resolver, sourceName, timeProvider, random, metrics, _logger);
        }
    }

    public string ServiceName => _balancer.ServiceName;

    /// <summary>Gets whether attempt outcomes feed anything (outlier detection or breakers).</summary>
    public bool TracksOutcomes { get; }

    public EndpointHealth Get(EndpointState state) => _endpoints.GetValue(state, _create);

    /// <summary>Asks the endpoint's breaker to admit a request; returns a ticket to report with, or -1 when the breaker rejects it.</summary>
    public static long TryAdmit(EndpointHealth? health) => health?.Breaker?.TryAcquire() ?? 0;

    /// <summary>Feeds one attempt's outcome to outlier detection and the breaker.</summary>
    public void OnAttemptCompleted(EndpointHealth? health, long ticket, AttemptOutcome outcome)
    {
        if (health is null)
        {
            return;
        }

        var refresh = _outlier.Enabled && RecordOutlier(health, outcome);
        if (health.Breaker?.OnResult(ticket, outcome == AttemptOutcome.Success) is { } transition)
        {
            refresh |= OnBreakerTransition(health, transition);
        }

        if (refresh)
        {
            _balancer.RefreshHealth();
        }
    }

    /// <summary>Reports an attempt that ended without an outcome (its caller gave up).</summary>
    public static void OnAttemptAbandoned(EndpointHealth? health, long ticket) => health?.Breaker?.OnAbandoned(ticket);

    public void Dispose()
    {
        _disposed = true;
        _intervalTimer?.Dispose();
        _checker?.Dispose();
        foreach (var state in _balancer.Endpoints)
        {
            if (_endpoints.TryGetValue(state, out var health))
            {
                Interlocked.Exchange(ref health.BreakerTimer, null)?.Dispose();
            }
        }
    }

    private bool RecordOutlier(EndpointHealth health, AttemptOutcome outcome)
    {
        Interlocked.Increment(ref health.IntervalRequests);
        if (outcome == AttemptOutcome.Success)
        {
            Interlocked.Increment(ref health.IntervalSuccesses);
            if (Volatile.Read(ref health.ConsecutiveServerErrors) != 0)
            {
                Volatile.Write(ref health.ConsecutiveServerErrors, 0);
            }

            if (Volatile.Read(ref health.ConsecutiveGatewayFailures) != 0)
            {
                Volatile.Write(ref health.ConsecutiveGatewayFailures, 0);
            }

            return false;
        }

        // Envoy checks gateway failures first; a non-gateway 5xx breaks a gateway streak. Exact equality means one
        // thread crosses each threshold, and it resets the streak.
        var gateway = 0;
        if (outcome == AttemptOutcome.GatewayFailure)
        {
            gateway = Interlocked.Increment(ref health.ConsecutiveGatewayFailures);
        }
        else
        {
            Volatile.Write(ref health.ConsecutiveGatewayFailures, 0);
        }

        var serverErrors = Interlocked.Increment(ref health.ConsecutiveServerErrors);
        if (_outlier.ConsecutiveGatewayFailures > 0 && gateway == _outlier.ConsecutiveGatewayFailures)
        {
            Volatile.Write(ref health.ConsecutiveGatewayFailures, 0);
            if (TryEject(health, "consecutive_gateway_failure", _outlier.EnforcingConsecutiveGatewayFailures))
            {
                Volatile.Write(ref health.ConsecutiveServerErrors, 0);
                return true;
            }
        }

        if (_outlier.ConsecutiveServerErrors > 0 && serverErrors == _outlier.ConsecutiveServerErrors)
        {
            Volatile.Write(ref health.ConsecutiveServerErrors, 0);
            return TryEject(health, "consecutive_5xx", _outlier.EnforcingConsecutiveServerErrors);
        }

        return false;
    }

    private bool TryEject(EndpointHealth health, string reason, int enforcingPercent)
    {
        if (enforcingPercent <= 0 || (enforcingPercent < 100 && _random.Next(100) >= enforcingPercent))
        {
            return false;
        }

        TimeSpan duration;
        lock (_gate)
        {
            if (_disposed || health.State.IsEjected)
            {
                return false;
            }

            var all = _balancer.Endpoints;
            var ejected = 0;
            foreach (var state in all)
            {
                if (state.IsEjected)
                {
                    ejected++;
                }
            }

            // Envoy: eject while the share after ejecting stays within the cap, and always allow the first one.
            if (ejected > 0 && 100.0 * (ejected + 1) / Math.Max(1, all.Count) > _outlier.MaxEjectionPercent)
            {
                return false;
            }

            health.EjectionMultiplier++;
            health.EjectedAt = _timeProvider.GetTimestamp();
            health.EjectedThisInterval = true;
            duration = EjectionTime(health.EjectionMultiplier);
            health.State.SetEjected(true);
        }

        _metrics.RecordEjection(ServiceName, health.State.Endpoint.Address, reason);
        Log.Ejected(_logger, ServiceName, health.State.Endpoint.Address, reason, duration.TotalSeconds);
        return true;
    }

    private TimeSpan EjectionTime(int multiplier)
    {
        var ticks = Math.Min(_outlier.BaseEjectionTime.Ticks * (double)multiplier, _outlier.MaxEjectionTime.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }

    private void OnInterval()
    {
        try
        {
            if (!_disposed && RunInterval())
            {
                _balancer.RefreshHealth();
            }
        }
        catch (Exception ex)
        {
            Log.IntervalFailed(_logger, ServiceName, ex);
        }
    }

    /// <summary>One outlier-detection interval: returns ejected endpoints whose time is up, then runs the statistical checks.</summary>
    internal bool RunInterval()
    {
        var changed = false;
        var now = _timeProvider.GetTimestamp();
        var samples = new List<(EndpointHealth Health, long Requests, long Successes)>();
        List<string>? returned = null;
        lock (_gate)
        {
            foreach (var state in _balancer.Endpoints)
            {
                var health = Get(state);
                var requests = Interlocked.Exchange(ref health.IntervalRequests, 0);
                var successes = Interlocked.Exchange(ref health.IntervalSuccesses, 0);
                if (state.IsEjected)
                {
                    if (_timeProvider.GetElapsedTime(health.EjectedAt, now) >= EjectionTime(health.EjectionMultiplier))
                    {
                        state.SetEjected(false);
                        Volatile.Write(ref health.ConsecutiveServerErrors, 0);
                        Volatile.Write(ref health.ConsecutiveGatewayFailures, 0);
                        (returned ??= []).Add(state.Endpoint.Address);
                        changed = true;
                    }
                }
                else
                {
                    if (!health.EjectedThisInterval && health.EjectionMultiplier > 0)
                    {
                        // Envoy: the multiplier decays by one for every interval the endpoint stays in.
                        health.EjectionMultiplier--;
                    }

                    samples.Add((health, requests, successes));
                }

                health.EjectedThisInterval = false;
            }
        }

        if (returned is not null)
        {
            foreach (var address in returned)
            {
                Log.Returned(_logger, ServiceName, address);
            }
        }

        changed |= SuccessRateEjections(samples);
        changed |= FailurePercentageEjections(samples);
        return changed;
    }

    private bool SuccessRateEjections(List<(EndpointHealth Health, long Requests, long Successes)> samples)
    {
        if (_outlier.EnforcingSuccessRate <= 0)
        {
            return false;
        }

        var qualifying = samples.FindAll(s => s.Requests >= _outlier.SuccessRateRequestVolume && s.Requests > 0);
        if (qualifying.Count < _outlier.SuccessRateMinimumHosts || qualifying.Count == 0)
        {
            return false;
        }

        var rates = qualifying.ConvertAll(s => 100.0 * s.Successes / s.Requests);
        var mean = rates.Average();
        var variance = rates.Sum(r => (r - mean) * (r - mean)) / rates.Count;
        var threshold = mean - (_outlier.SuccessRateStdevFactor * Math.Sqrt(variance));
        var ejected = false;
        for (var i = 0; i < qualifying.Count; i++)
        {
            if (rates[i] < threshold)
            {
                ejected |= TryEject(qualifying[i].Health, "success_rate", _outlier.EnforcingSuccessRate);
            }
        }

        return ejected;
    }

    private bool FailurePercentageEjections(List<(EndpointHealth Health, long Requests, long Successes)> samples)
    {
        if (_outlier.EnforcingFailurePercentage <= 0)
        {
            return false;
        }

        var qualifying = samples.FindAll(s => s.Requests >= _outlier.FailurePercentageRequestVolume && s.Requests > 0);
        if (qualifying.Count < _outlier.FailurePercentageMinimumHosts)
        {
            return false;
        }

        var ejected = false;
        foreach (var (health, requests, successes) in qualifying)
        {
            if (100.0 * (requests - successes) / requests >= _outlier.FailurePercentageThreshold)
            {
                ejected |= TryEject(health, "failure_percentage", _outlier.EnforcingFailurePercentage);
            }
        }

        return ejected;
    }

    private bool OnBreakerTransition(EndpointHealth health, CircuitState state)
    {
        var address = health.State.Endpoint.Address;
        _metrics.RecordBreakerTransition(ServiceName, address, state);
        Log.BreakerTransition(_logger, ServiceName, address, state);
        if (state != CircuitState.Open)
        {
            return false;
        }

        health.State.SetBreakerOpen(true);
        ITimer timer;
        using (ExecutionContext.SuppressFlow())
        {
            timer = _timeProvider.CreateTimer(static s =>
            {
                var (self, h) = ((ServiceHealth, EndpointHealth))s!;
                self.OnBreakDurationElapsed(h);
            }, (this, health), _breaker.BreakDuration, Timeout.InfiniteTimeSpan);
        }

        Interlocked.Exchange(ref health.BreakerTimer, timer)?.Dispose();
        if (_disposed)
        {
            Interlocked.Exchange(ref health.BreakerTimer, null)?.Dispose();
        }

        return true;
    }

    private void OnBreakDurationElapsed(EndpointHealth health)
    {
        try
        {
            if (_disposed || health.Breaker is null || !health.Breaker.TryHalfOpen())
            {
                return;
            }

            health.State.SetBreakerOpen(false);
            _metrics.RecordBreakerTransition(ServiceName, health.State.Endpoint.Address, CircuitState.HalfOpen);
            Log.BreakerTransition(_logger, ServiceName, health.State.Endpoint.Address, CircuitState.HalfOpen);
            _balancer.RefreshHealth();
        }
        catch (Exception ex)
        {
            Log.IntervalFailed(_logger, ServiceName, ex);
        }
    }

    /// <summary>Applies one active check result; returns whether the endpoint's active health changed.</summary>
    internal bool ApplyCheck(EndpointState state, bool passed, HealthCheckOptions options)
    {
        var health = Get(state);
        var first = !health.Checked;
        health.Checked = true;
        if (passed)
        {
            health.CheckFailures = 0;
            health.CheckSuccesses++;
            if (!state.IsActiveHealthy && (first || health.CheckSuccesses >= options.HealthyThreshold))
            {
                state.SetActiveHealthy(true);
                Log.ActiveHealthChanged(_logger, ServiceName, state.Endpoint.Address, true);
                return true;
            }

            return false;
        }

        health.CheckSuccesses = 0;
        health.CheckFailures++;
        if (state.IsActiveHealthy && health.CheckFailures >= options.UnhealthyThreshold)
        {
            state.SetActiveHealthy(false);
            Log.ActiveHealthChanged(_logger, ServiceName, state.Endpoint.Address, false);
            return true;
        }

        return false;
    }

    private static partial class Log
    {
        [LoggerMessage(200, LogLevel.Warning, "Ejected endpoint {Endpoint} of service {Service} ({Reason}) for {Seconds} s.", EventName = "EndpointEjected")]
        public static partial void Ejected(ILogger logger, string service, string endpoint, string reason, double seconds);

        [LoggerMessage(201, LogLevel.Information, "Endpoint {Endpoint} of service {Service} returned from ejection.", EventName = "EndpointReturned")]
        public static partial void Returned(ILogger logger, string service, string endpoint);

        [LoggerMessage(202, LogLevel.Error, "Health bookkeeping of service {Service} failed.", EventName = "HealthIntervalFailed")]
        public static partial void IntervalFailed(ILogger logger, string service, Exception exception);

        [LoggerMessage(203, LogLevel.Information, "Circuit breaker of endpoint {Endpoint} of service {Service} is now {State}.", EventName = "CircuitBreakerTransition")]
        public static partial void BreakerTransition(ILogger logger, string service, string endpoint, CircuitState state);

        [LoggerMessage(204, LogLevel.Information, "Active health checks mark endpoint {Endpoint} of service {Service} healthy: {Healthy}.", EventName = "ActiveHealthChanged")]
        public static partial void ActiveHealthChanged(ILogger logger, string service, string endpoint, bool healthy);
    }
}
