using System.Globalization;
using Lodestar.Diagnostics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Discovery;
using Lodestar.Discovery.Internal;
using Lodestar.Endpoints;
using Lodestar.Http.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Health.Internal;

/// <summary>
/// The health view of one service from one source under one set of health settings: it owns the service's
/// <see cref="EndpointState"/> records, passive outlier detection (Envoy's), per-endpoint circuit breakers and active
/// checks, and publishes <see cref="HealthSnapshot"/>s that every balancer (policy) and client of the service builds
/// its pickers from.
/// </summary>
/// <remarks>
/// <para>
/// Concurrency rule: writers (a new endpoint set, an ejection or return, a breaker transition, an active-check
/// change) serialise on <see cref="_publishGate"/>, build a new immutable snapshot and publish it with one volatile
/// write; subscribers are told after the gate is released and read <see cref="Snapshot"/> themselves, so a late
/// notification can never take them backwards. Per-request updates are <see cref="Interlocked"/> on the endpoint's
/// state. Ejections are decided under <see cref="_outlierGate"/> (rare: a threshold crossed or an interval tick),
/// never while holding the publish gate.
/// </para>
/// </remarks>
internal sealed partial class HealthStage : IDisposable
{
    private readonly HealthSettings _settings;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics? _metrics;
    private readonly ILogger _logger;
    private readonly ConnectionRetirer? _retirer;
    private readonly Lock _publishGate = new();
    private readonly Lock _outlierGate = new();
    private readonly ITimer? _intervalTimer;
    private Dictionary<DiscoveredEndpoint, EndpointState> _states = [];
    private volatile HealthSnapshot _snapshot = HealthSnapshot.Empty;
    private Action[] _subscribers = [];
    private ActiveHealthChecker? _checker;
    private IDisposable? _subscription;
    private EndpointWatcher? _watcher;
    private long _version;
    private volatile bool _disposed;

    public HealthStage(string serviceName, string? sourceName, HealthSettings settings, LoadBalancingOptions? loadBalancing, TimeProvider timeProvider,
        RandomSource random, LodestarMetrics? metrics = null, ILogger? logger = null, ConnectionRetirer? retirer = null)
    {
        ServiceName = serviceName;
        SourceName = sourceName;
        _settings = settings;
        _timeProvider = timeProvider;
        _random = random;
        _metrics = metrics;
        _logger = logger ?? NullLogger.Instance;
        _retirer = retirer;
        var lb = loadBalancing ?? new LoadBalancingOptions();
        Tracking = new EndpointTracking(timeProvider, lb.PeakEwmaDecay, lb.PeakEwmaFailurePenalty);
        using (ExecutionContext.SuppressFlow())
        {
            if (settings.Outlier.Enabled)
            {
                _intervalTimer = timeProvider.CreateTimer(static s => ((HealthStage)s!).OnInterval(), this, settings.Outlier.Interval, settings.Outlier.Interval);
            }
        }
    }

    public string ServiceName { get; }

    /// <summary>Gets the source the client named, or <see langword="null"/> for the default.</summary>
    public string? SourceName { get; }

    public HealthSettings Settings => _settings;

    public TimeProvider TimeProvider => _timeProvider;

    /// <summary>Gets what the stage's endpoint states share (clock, EWMA settings, statistics to keep).</summary>
    public EndpointTracking Tracking { get; }

    /// <summary>Gets the current snapshot; lock-free.</summary>
    public HealthSnapshot Snapshot => _snapshot;

    /// <summary>Gets the version of the endpoint set last applied; 0 before the first.</summary>
    public long SetVersion => _snapshot.SetVersion;

    /// <summary>Gets whether attempt outcomes feed anything (outlier detection or breakers).</summary>
    public bool TracksOutcomes => _settings.Outlier.Enabled || _settings.Breaker.Enabled;

    /// <summary>Follows the service's endpoint set in the cache and starts active checks when they are on.</summary>
    /// <param name="resolver">The endpoint resolver to follow.</param>
    /// <param name="probeFactory">Creates the probe for the checks' protocol; <see langword="null"/> for the built-in HTTP probe.</param>
    public void Start(IEndpointResolver resolver, HealthProbeFactory? probeFactory = null)
    {
        if (_settings.Checks.Enabled)
        {
            var probe = probeFactory?.Create(ServiceName, _settings.Checks.Clone());
            _checker = new ActiveHealthChecker(this, _settings.Checks, _timeProvider, _random, _metrics, _logger, probe);
        }

        _subscription = resolver.Watch(ServiceName, SourceName, Update);
        _watcher = (resolver as EndpointCache)?.GetWatcher(ServiceName, SourceName);
    }

    /// <summary>Gets the watcher feeding this stage; <see langword="null"/> before <see cref="Start"/> or when the resolver is not the endpoint cache.</summary>
    internal EndpointWatcher? Watcher => _watcher;

    /// <summary>
    /// Applies the watcher's current set if this stage has not been told of it yet. The watcher publishes a set before
    /// it calls its subscribers, in the order they subscribed, and a stage created on a service's first request usually
    /// subscribes after the application's own observers; called at the start of every request, this makes a request
    /// that starts after a set became visible anywhere pick from that set or a newer one. One volatile read when current.
    /// </summary>
    public void CatchUp()
    {
        if (_watcher?.Current is { } current && current.Version > _snapshot.SetVersion)
        {
            Update(current);
        }
    }

    /// <summary>
    /// Calls <paramref name="onChanged"/> after every publication (read <see cref="Snapshot"/> in it) and tracks the
    /// statistics the subscriber's policy needs from now on.
    /// </summary>
    public IDisposable Subscribe(EndpointStatistics statistics, Action onChanged)
    {
        Tracking.Require(statistics);
        lock (_publishGate)
        {
            _subscribers = [.. _subscribers, onChanged];
        }

        return new Subscription(this, onChanged);
    }

    /// <summary>Applies a newer endpoint set; older or equal versions are ignored.</summary>
    public void Update(EndpointSet set)
    {
        List<EndpointState>? added = null;
        List<EndpointState>? removed = null;
        lock (_publishGate)
        {
            if (_disposed || set.Version <= _snapshot.SetVersion)
            {
                return;
            }

            var now = _timeProvider.GetTimestamp();
            var next = new Dictionary<DiscoveredEndpoint, EndpointState>(set.Count);
            var routable = new List<EndpointState>(set.Count);
            foreach (var endpoint in set.Endpoints)
            {
                if (!_states.TryGetValue(endpoint, out var state))
                {
                    state = new EndpointState(endpoint, now, Tracking, CreateBreaker());
                    if (_settings.Checks is { Enabled: true, HoldNewEndpointsUntilHealthy: true })
                    {
                        state.SetActiveHealthy(false);
                    }

                    (added ??= []).Add(state);
                }
                else
                {
                    state.SetEndpoint(endpoint);
                }

                next[endpoint] = state;
                if (endpoint.Weight > 0)
                {
                    routable.Add(state);
                }
            }

            foreach (var (endpoint, state) in _states)
            {
                if (!next.ContainsKey(endpoint))
                {
                    state.Departed = true;
                    Interlocked.Exchange(ref state.BreakerTimer, null)?.Dispose();
                    (removed ??= []).Add(state);
                }
            }

            _states = next;
            _snapshot = new HealthSnapshot(++_version, set.Version, [.. routable]);
        }

        if (_retirer is not null)
        {
            _retirer.Track(added, removed);
        }

        if (removed is not null)
        {
            _checker?.Release(removed);
        }

        Notify();
        _checker?.CheckSoon();
    }

    /// <summary>Gets whether <paramref name="endpoint"/> is in the stage's current endpoint set.</summary>
    internal bool Tracks(DiscoveredEndpoint endpoint)
    {
        lock (_publishGate)
        {
            return _states.ContainsKey(endpoint);
        }
    }

    /// <summary>Asks the endpoint's breaker to admit an attempt; returns a ticket to report with, or -1 when the breaker rejects it.</summary>
    public static long TryAdmit(EndpointState state) => state.Breaker?.TryAcquire() ?? 0;

    /// <summary>Feeds one attempt's outcome to outlier detection and the breaker.</summary>
    public void OnAttemptCompleted(EndpointState state, long ticket, AttemptOutcome outcome)
    {
        var changed = _settings.Outlier.Enabled && RecordOutlier(state, outcome);
        if (state.Breaker?.OnResult(ticket, outcome == AttemptOutcome.Success) is { } transition)
        {
            changed |= OnBreakerTransition(state, transition);
        }

        if (changed)
        {
            PublishHealth();
        }
    }

    /// <summary>Reports an attempt that ended without an outcome (its caller gave up).</summary>
    public static void OnAttemptAbandoned(EndpointState state, long ticket) => state.Breaker?.OnAbandoned(ticket);

    public void Dispose()
    {
        lock (_publishGate)
        {
            _disposed = true;
            _subscribers = [];
        }

        _subscription?.Dispose();
        _intervalTimer?.Dispose();
        _checker?.Dispose();
        EndpointState[] states;
        lock (_publishGate)
        {
            states = [.. _states.Values];
        }

        foreach (var state in states)
        {
            state.Departed = true;
            Interlocked.Exchange(ref state.BreakerTimer, null)?.Dispose();
        }

        _retirer?.Track(null, states);
    }

    /// <summary>Publishes a new snapshot over the same endpoints after a health change.</summary>
    internal void PublishHealth()
    {
        lock (_publishGate)
        {
            if (_disposed)
            {
                return;
            }

            var current = _snapshot;
            _snapshot = new HealthSnapshot(++_version, current.SetVersion, current.Endpoints);
        }

        Notify();
    }

    private void Notify()
    {
        // Outside the gate: subscribers rebuild pickers and may call back into Snapshot.
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber();
        }
    }

    private CircuitBreaker? CreateBreaker()
    {
        var breaker = _settings.Breaker;
        return breaker.Enabled
            ? new CircuitBreaker(_timeProvider, breaker.FailureRatio, breaker.MinimumThroughput, breaker.SamplingDuration, breaker.HalfOpenMaxProbes)
            : null;
    }

    private bool RecordOutlier(EndpointState state, AttemptOutcome outcome)
    {
        var outlier = _settings.Outlier;
        Interlocked.Increment(ref state.IntervalRequests);
        if (outcome == AttemptOutcome.Success)
        {
            ResetStreaks(state);
            return false;
        }

        // Failures are counted rather than successes: the interval's successes are its requests less its failures, so
        // an answered attempt, nearly every one, pays for one shared count instead of two.
        Interlocked.Increment(ref state.IntervalFailures);

        // Envoy checks gateway failures first; a non-gateway 5xx breaks a gateway streak. Exact equality means one
        // thread crosses each threshold, and it resets the streak.
        var gateway = 0;
        if (outcome is AttemptOutcome.GatewayFailure or AttemptOutcome.ConnectFailure)
        {
            gateway = Interlocked.Increment(ref state.ConsecutiveGatewayFailures);
        }
        else
        {
            Volatile.Write(ref state.ConsecutiveGatewayFailures, 0);
        }

        var connect = 0;
        if (outcome == AttemptOutcome.ConnectFailure)
        {
            connect = Interlocked.Increment(ref state.ConsecutiveConnectFailures);
        }
        else if (Volatile.Read(ref state.ConsecutiveConnectFailures) != 0)
        {
            Volatile.Write(ref state.ConsecutiveConnectFailures, 0);
        }

        var serverErrors = Interlocked.Increment(ref state.ConsecutiveServerErrors);
        if (outlier.ConsecutiveGatewayFailures > 0 && gateway == outlier.ConsecutiveGatewayFailures)
        {
            Volatile.Write(ref state.ConsecutiveGatewayFailures, 0);
            var reason = connect >= gateway ? EjectionReasons.ConnectFailure : EjectionReasons.ConsecutiveGatewayFailure;
            if (TryEject(state, reason, outlier.EnforcingConsecutiveGatewayFailures))
            {
                Volatile.Write(ref state.ConsecutiveServerErrors, 0);
                Volatile.Write(ref state.ConsecutiveConnectFailures, 0);
                return true;
            }
        }

        if (outlier.ConsecutiveServerErrors > 0 && serverErrors == outlier.ConsecutiveServerErrors)
        {
            Volatile.Write(ref state.ConsecutiveServerErrors, 0);
            var reason = connect >= serverErrors ? EjectionReasons.ConnectFailure : EjectionReasons.Consecutive5xx;
            if (TryEject(state, reason, outlier.EnforcingConsecutiveServerErrors))
            {
                Volatile.Write(ref state.ConsecutiveConnectFailures, 0);
                return true;
            }
        }

        return false;
    }

    private static void ResetStreaks(EndpointState state)
    {
        // Read before writing: a healthy endpoint's counters stay zero, and a plain read keeps the cache line shared.
        if (Volatile.Read(ref state.ConsecutiveServerErrors) != 0)
        {
            Volatile.Write(ref state.ConsecutiveServerErrors, 0);
        }

        if (Volatile.Read(ref state.ConsecutiveGatewayFailures) != 0)
        {
            Volatile.Write(ref state.ConsecutiveGatewayFailures, 0);
        }

        if (Volatile.Read(ref state.ConsecutiveConnectFailures) != 0)
        {
            Volatile.Write(ref state.ConsecutiveConnectFailures, 0);
        }
    }

    private bool TryEject(EndpointState state, string reason, int enforcingPercent)
    {
        if (enforcingPercent <= 0 || (enforcingPercent < 100 && _random.Next(100) >= enforcingPercent))
        {
            return false;
        }

        var outlier = _settings.Outlier;
        EndpointEjection ejection;
        lock (_outlierGate)
        {
            if (_disposed || state.IsEjected || state.Departed)
            {
                return false;
            }

            var all = _snapshot.Endpoints;
            var ejected = 0;
            foreach (var endpoint in all)
            {
                if (endpoint.IsEjected)
                {
                    ejected++;
                }
            }

            // Envoy: eject while the share after ejecting stays within the cap, and always allow the first one.
            if (ejected > 0 && 100.0 * (ejected + 1) / Math.Max(1, all.Length) > outlier.MaxEjectionPercent)
            {
                return false;
            }

            state.EjectionMultiplier++;
            state.EjectedThisInterval = true;
            ejection = new EndpointEjection(reason, _timeProvider.GetUtcNow(), EjectionTime(state.EjectionMultiplier), state.EjectionMultiplier,
                _timeProvider.GetTimestamp());
            state.SetEjection(ejection);
        }

        _metrics?.RecordEjection(ServiceName, state.Endpoint.Address, reason);
        _metrics?.Events?.Append(LodestarEventKind.EndpointEjected, ServiceName, SourceName, state.Endpoint.Address,
            string.Create(CultureInfo.InvariantCulture, $"{reason} for {ejection.Duration.TotalSeconds:0.###} s"));
        Log.Ejected(_logger, ServiceName, state.Endpoint.Address, reason, ejection.Duration.TotalSeconds);
        return true;
    }

    private TimeSpan EjectionTime(int multiplier)
    {
        var outlier = _settings.Outlier;
        var ticks = Math.Min(outlier.BaseEjectionTime.Ticks * (double)multiplier, outlier.MaxEjectionTime.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }

    private void OnInterval()
    {
        try
        {
            if (!_disposed && RunInterval())
            {
                PublishHealth();
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
        var samples = new List<(EndpointState State, long Requests, long Successes)>();
        List<string>? returned = null;
        lock (_outlierGate)
        {
            foreach (var state in _snapshot.Endpoints)
            {
                var requests = Interlocked.Exchange(ref state.IntervalRequests, 0);
                // An attempt counted between the two exchanges may land its failure in the other interval: never below zero.
                var successes = Math.Max(0, requests - Interlocked.Exchange(ref state.IntervalFailures, 0));
                if (state.Ejection is { } ejection)
                {
                    if (_timeProvider.GetElapsedTime(ejection.SinceTimestamp, now) >= ejection.Duration)
                    {
                        state.SetEjection(null);
                        ResetStreaks(state);
                        (returned ??= []).Add(state.Endpoint.Address);
                        changed = true;
                    }
                }
                else
                {
                    if (!state.EjectedThisInterval && state.EjectionMultiplier > 0)
                    {
                        // Envoy: the multiplier decays by one for every interval the endpoint stays in.
                        state.EjectionMultiplier--;
                    }

                    samples.Add((state, requests, successes));
                }

                state.EjectedThisInterval = false;
            }
        }

        if (returned is not null)
        {
            foreach (var address in returned)
            {
                Log.Returned(_logger, ServiceName, address);
                _metrics?.Events?.Append(LodestarEventKind.EndpointReturned, ServiceName, SourceName, address);
            }
        }

        changed |= SuccessRateEjections(samples);
        changed |= FailurePercentageEjections(samples);
        return changed;
    }

    private bool SuccessRateEjections(List<(EndpointState State, long Requests, long Successes)> samples)
    {
        var outlier = _settings.Outlier;
        if (outlier.EnforcingSuccessRate <= 0)
        {
            return false;
        }

        var qualifying = samples.FindAll(s => s.Requests >= outlier.SuccessRateRequestVolume && s.Requests > 0);
        if (qualifying.Count < outlier.SuccessRateMinimumHosts || qualifying.Count == 0)
        {
            return false;
        }

        var rates = qualifying.ConvertAll(s => 100.0 * s.Successes / s.Requests);
        var mean = rates.Average();
        var variance = rates.Sum(r => (r - mean) * (r - mean)) / rates.Count;
        var threshold = mean - (outlier.SuccessRateStdevFactor * Math.Sqrt(variance));
        var ejected = false;
        for (var i = 0; i < qualifying.Count; i++)
        {
            if (rates[i] < threshold)
            {
                ejected |= TryEject(qualifying[i].State, EjectionReasons.SuccessRate, outlier.EnforcingSuccessRate);
            }
        }

        return ejected;
    }

    private bool FailurePercentageEjections(List<(EndpointState State, long Requests, long Successes)> samples)
    {
        var outlier = _settings.Outlier;
        if (outlier.EnforcingFailurePercentage <= 0)
        {
            return false;
        }

        var qualifying = samples.FindAll(s => s.Requests >= outlier.FailurePercentageRequestVolume && s.Requests > 0);
        if (qualifying.Count < outlier.FailurePercentageMinimumHosts)
        {
            return false;
        }

        var ejected = false;
        foreach (var (state, requests, successes) in qualifying)
        {
            if (100.0 * (requests - successes) / requests >= outlier.FailurePercentageThreshold)
            {
                ejected |= TryEject(state, EjectionReasons.FailurePercentage, outlier.EnforcingFailurePercentage);
            }
        }

        return ejected;
    }

    private bool OnBreakerTransition(EndpointState state, CircuitState transition)
    {
        var address = state.Endpoint.Address;
        _metrics?.RecordBreakerTransition(ServiceName, address, transition);
        _metrics?.Events?.Append(BreakerEvent(transition), ServiceName, SourceName, address);
        Log.BreakerTransition(_logger, ServiceName, address, transition);
        if (transition != CircuitState.Open)
        {
            return false;
        }

        ITimer timer;
        using (ExecutionContext.SuppressFlow())
        {
            timer = _timeProvider.CreateTimer(static s =>
            {
                var (self, endpoint) = ((HealthStage, EndpointState))s!;
                self.OnBreakDurationElapsed(endpoint);
            }, (this, state), _settings.Breaker.BreakDuration, Timeout.InfiniteTimeSpan);
        }

        Interlocked.Exchange(ref state.BreakerTimer, timer)?.Dispose();
        if (_disposed || state.Departed)
        {
            Interlocked.Exchange(ref state.BreakerTimer, null)?.Dispose();
        }

        return true;
    }

    private static LodestarEventKind BreakerEvent(CircuitState state) => state switch
    {
        CircuitState.Open => LodestarEventKind.BreakerOpened,
        CircuitState.HalfOpen => LodestarEventKind.BreakerHalfOpened,
        _ => LodestarEventKind.BreakerClosed,
    };

    private void OnBreakDurationElapsed(EndpointState state)
    {
        try
        {
            if (_disposed || state.Breaker is null || !state.Breaker.TryHalfOpen())
            {
                return;
            }

            _metrics?.RecordBreakerTransition(ServiceName, state.Endpoint.Address, CircuitState.HalfOpen);
            _metrics?.Events?.Append(LodestarEventKind.BreakerHalfOpened, ServiceName, SourceName, state.Endpoint.Address);
            Log.BreakerTransition(_logger, ServiceName, state.Endpoint.Address, CircuitState.HalfOpen);
            PublishHealth();
        }
        catch (Exception ex)
        {
            Log.IntervalFailed(_logger, ServiceName, ex);
        }
    }

    /// <summary>Applies one active check result; returns whether the endpoint's active health changed.</summary>
    internal bool ApplyCheck(EndpointState state, bool passed)
    {
        var options = _settings.Checks;
        var first = !state.Checked;
        state.Checked = true;
        if (passed)
        {
            state.CheckFailures = 0;
            state.CheckSuccesses++;
            if (!state.IsActiveHealthy && (first || state.CheckSuccesses >= options.HealthyThreshold))
            {
                state.SetActiveHealthy(true);
                _metrics?.RecordHealthTransition(ServiceName, state.Endpoint.Address, healthy: true);
                _metrics?.Events?.Append(LodestarEventKind.HealthCheckPassed, ServiceName, SourceName, state.Endpoint.Address);
                Log.ActiveHealthChanged(_logger, ServiceName, state.Endpoint.Address, true);
                return true;
            }

            return false;
        }

        state.CheckSuccesses = 0;
        state.CheckFailures++;
        if (state.IsActiveHealthy && state.CheckFailures >= options.UnhealthyThreshold)
        {
            state.SetActiveHealthy(false);
            _metrics?.RecordHealthTransition(ServiceName, state.Endpoint.Address, healthy: false);
            _metrics?.Events?.Append(LodestarEventKind.HealthCheckFailed, ServiceName, SourceName, state.Endpoint.Address);
            Log.ActiveHealthChanged(_logger, ServiceName, state.Endpoint.Address, false);
            return true;
        }

        return false;
    }

    private void Unsubscribe(Action onChanged)
    {
        lock (_publishGate)
        {
            _subscribers = Array.FindAll(_subscribers, s => s != onChanged);
        }
    }

    private sealed class Subscription(HealthStage stage, Action onChanged) : IDisposable
    {
        public void Dispose() => stage.Unsubscribe(onChanged);
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
