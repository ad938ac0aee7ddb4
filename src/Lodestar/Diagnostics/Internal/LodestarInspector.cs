using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Health;
using Lodestar.Health.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;

namespace Lodestar.Diagnostics.Internal;

/// <summary>
/// Builds <see cref="LodestarInspection"/>s from the balancers, health stages and watchers that exist, and samples
/// every endpoint's counters on a timer for the last-minute figures (share, success rate) and latency history.
/// </summary>
/// <remarks>
/// Concurrency rule: nothing here takes a lock the request path takes. The balancers' built pickers, the stages'
/// snapshots and the watchers' sets are immutable and read once; the endpoints' counters are read with volatile
/// reads. <see cref="_gate"/> guards only the sample history, between the sampling timer and readers.
/// </remarks>
internal sealed class LodestarInspector : ILodestarInspector, IDisposable
{
    /// <summary>The time between two samples of every endpoint's counters.</summary>
    internal static readonly TimeSpan SampleInterval = TimeSpan.FromSeconds(5);

    /// <summary>The window of <see cref="EndpointInspection.Share"/> and <see cref="EndpointInspection.SuccessRate"/>.</summary>
    internal static readonly TimeSpan RateWindow = TimeSpan.FromMinutes(1);

    /// <summary>The samples kept per endpoint: three minutes of latency history, and a baseline a minute back.</summary>
    internal const int HistoryLength = 36;

    private const string Draining = "draining";
    private const string Serving = "serving";

    private readonly BalancerRegistry _balancers;
    private readonly LodestarEventLog? _events;
    private readonly TimeProvider _timeProvider;
    private readonly Lock _gate = new();
    private readonly Dictionary<EndpointState, History> _histories = new(ReferenceEqualityComparer.Instance);
    private readonly ITimer _timer;

    public LodestarInspector(BalancerRegistry balancers, LodestarMetrics? metrics, TimeProvider timeProvider)
    {
        _balancers = balancers;
        _events = metrics?.Events;
        _timeProvider = timeProvider;
        using (ExecutionContext.SuppressFlow())
        {
            _timer = timeProvider.CreateTimer(static s => ((LodestarInspector)s!).Sample(), this, SampleInterval, SampleInterval);
        }
    }

    public LodestarInspection Inspect(string? serviceName = null)
    {
        var now = _timeProvider.GetTimestamp();
        var services = new List<ServiceInspection>();
        foreach (var balancer in _balancers.Balancers)
        {
            if (serviceName is null || string.Equals(balancer.ServiceName, serviceName, StringComparison.OrdinalIgnoreCase))
            {
                services.Add(InspectService(balancer, now));
            }
        }

        services.Sort(static (a, b) => string.CompareOrdinal(a.Service, b.Service) is var c && c != 0 ? c : string.CompareOrdinal(a.Policy, b.Policy));
        var events = _events?.Read() ?? [];
        if (serviceName is not null)
        {
            events = Array.FindAll(events, e => string.Equals(e.Service, serviceName, StringComparison.OrdinalIgnoreCase));
        }

        return new LodestarInspection
        {
            Timestamp = _timeProvider.GetUtcNow(),
            SampleInterval = SampleInterval,
            Services = services,
            Events = events,
        };
    }

    public void Dispose() => _timer.Dispose();

    /// <summary>Takes one sample of every endpoint's counters; runs on the timer.</summary>
    internal void Sample()
    {
        var now = _timeProvider.GetTimestamp();
        lock (_gate)
        {
            var seen = new HashSet<EndpointState>(ReferenceEqualityComparer.Instance);
            foreach (var balancer in _balancers.Balancers)
            {
                foreach (var state in balancer.Stage.Snapshot.Endpoints)
                {
                    if (!seen.Add(state))
                    {
                        continue;
                    }

                    if (!_histories.TryGetValue(state, out var history))
                    {
                        _histories[state] = history = new History();
                    }

                    history.Add(now, state.Requests, state.Failures, LatencyOf(state)?.TotalMilliseconds);
                }
            }

            // Endpoints that left every stage are forgotten, so the history cannot grow with churn.
            List<EndpointState>? gone = null;
            foreach (var state in _histories.Keys)
            {
                if (!seen.Contains(state))
                {
                    (gone ??= []).Add(state);
                }
            }

            if (gone is not null)
            {
                foreach (var state in gone)
                {
                    _histories.Remove(state);
                }
            }
        }
    }

    private ServiceInspection InspectService(ServiceBalancer balancer, long now)
    {
        var stage = balancer.Stage;
        var snapshot = stage.Snapshot;
        var options = _balancers.GetOptions(stage.ServiceName);
        var watcher = stage.Watcher;
        var current = watcher?.Current;

        // Requests over the window per endpoint first: the share of each needs the service's total.
        var states = snapshot.Endpoints;
        var windows = new (long Requests, long Failures)[states.Length];
        var latencies = new double?[states.Length][];
        long total = 0;
        lock (_gate)
        {
            for (var i = 0; i < states.Length; i++)
            {
                var state = states[i];
                var requests = state.Requests;
                var failures = state.Failures;
                if (_histories.TryGetValue(state, out var history))
                {
                    var (baseRequests, baseFailures) = history.Baseline(_timeProvider, now);
                    windows[i] = (requests - baseRequests, failures - baseFailures);
                    latencies[i] = history.Latencies();
                }
                else
                {
                    windows[i] = (requests, failures);
                    latencies[i] = [];
                }

                total += Math.Max(0, windows[i].Requests);
            }
        }

        var endpoints = new List<EndpointInspection>(states.Length);
        var healthy = 0;
        for (var i = 0; i < states.Length; i++)
        {
            var inspection = InspectEndpoint(stage, states[i], options, now, windows[i], total, latencies[i]);
            healthy += inspection.Healthy ? 1 : 0;
            endpoints.Add(inspection);
        }

        if (current is not null)
        {
            // Weight-0 endpoints are in the registry's set but never routable: the registry drains them.
            foreach (var endpoint in current.Endpoints)
            {
                if (endpoint.Weight == 0)
                {
                    endpoints.Add(DrainedEndpoint(endpoint));
                }
            }
        }

        return new ServiceInspection
        {
            Service = stage.ServiceName,
            Policy = balancer.PolicyName,
            InPanic = balancer.InPanic,
            PanicThreshold = balancer.PanicThreshold,
            HealthyEndpoints = healthy,
            Source = new SourceInspection
            {
                Name = watcher?.SourceName ?? stage.SourceName ?? "(default)",
                SetVersion = current?.Version ?? snapshot.SetVersion,
                LastUpdate = current?.UpdatedAt,
                LastError = SecretRedactor.Default.Redact(watcher?.LastError?.Message),
                LastErrorAt = watcher?.LastErrorAt,
                Reconnects = watcher?.Reconnects ?? 0,
            },
            Endpoints = endpoints,
        };
    }

    private EndpointInspection InspectEndpoint(HealthStage stage, EndpointState state, LoadBalancingOptions options, long now, (long Requests, long Failures) window,
        long total, double?[] latencies)
    {
        var endpoint = state.Endpoint;
        var draining = IsTerminating(endpoint);
        var ejection = state.Ejection is { } e
            ? new EjectionInspection
            {
                Reason = e.Reason,
                Since = e.Since,
                TimeLeft = e.Duration - _timeProvider.GetElapsedTime(e.SinceTimestamp, now) is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero,
                Multiplier = e.Count,
            }
            : null;
        return new EndpointInspection
        {
            Address = endpoint.Address,
            Scheme = endpoint.Scheme,
            Zone = endpoint.Zone,
            Priority = endpoint.Priority,
            Weight = endpoint.Weight,
            Metadata = endpoint.Metadata,
            RegistryStatus = draining ? Draining : Serving,
            Draining = draining,
            Healthy = state.IsHealthy && !draining,
            ActiveCheck = !stage.Settings.Checks.Enabled ? "off" : !state.Checked ? "pending" : state.IsActiveHealthy ? "passing" : "failing",
            Ejection = ejection,
            Breaker = state.CircuitState switch
            {
                CircuitState.Open => "open",
                CircuitState.HalfOpen => "half_open",
                _ => "closed",
            },
            SlowStartFactor = SlowStartFactor(state, options, now),
            InFlight = state.InFlight,
            Requests = state.Requests,
            Failures = state.Failures,
            Latency = LatencyOf(state),
            SuccessRate = window.Requests > 0 ? Math.Clamp(1.0 - ((double)window.Failures / window.Requests), 0, 1) : null,
            Share = total > 0 ? Math.Max(0, window.Requests) / (double)total : 0,
            RecentLatencies = latencies,
        };
    }

    private static EndpointInspection DrainedEndpoint(DiscoveredEndpoint endpoint) => new()
    {
        Address = endpoint.Address,
        Scheme = endpoint.Scheme,
        Zone = endpoint.Zone,
        Priority = endpoint.Priority,
        Weight = endpoint.Weight,
        Metadata = endpoint.Metadata,
        RegistryStatus = Draining,
        Draining = true,
        Healthy = false,
        ActiveCheck = "off",
        Breaker = "closed",
        InFlight = 0,
        Requests = 0,
        Failures = 0,
        Share = 0,
        RecentLatencies = [],
    };

    /// <summary>Gets whether the registry marks the endpoint as terminating (Kubernetes) or draining (xDS).</summary>
    private static bool IsTerminating(DiscoveredEndpoint endpoint)
    {
        foreach (var (key, value) in endpoint.Metadata)
        {
            if ((key.EndsWith(".terminating", StringComparison.OrdinalIgnoreCase) && string.Equals(value, "true", StringComparison.OrdinalIgnoreCase))
                || (key.EndsWith(".health", StringComparison.OrdinalIgnoreCase) && string.Equals(value, "DRAINING", StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    private double? SlowStartFactor(EndpointState state, LoadBalancingOptions options, long now)
    {
        // The ramp pickers apply (Envoy's): weight × max(minimum, (elapsed / window) ^ (1 / aggression)).
        if (options.SlowStartWindow <= TimeSpan.Zero)
        {
            return null;
        }

        var elapsed = _timeProvider.GetElapsedTime(state.AddedTimestamp, now);
        if (elapsed >= options.SlowStartWindow)
        {
            return null;
        }

        var fraction = Math.Max(elapsed.Ticks, 1) / (double)options.SlowStartWindow.Ticks;
        fraction = Math.Pow(fraction, 1.0 / Math.Clamp(options.SlowStartAggression, 0.1, 10));
        return Math.Max(Math.Clamp(options.SlowStartMinimumWeightPercent, 1, 100) / 100, fraction);
    }

    private static TimeSpan? LatencyOf(EndpointState state)
        => state.LatencyEstimate ?? (state.Requests > 0 && state.LastLatency > TimeSpan.Zero ? state.LastLatency : null);

    /// <summary>A fixed ring of samples of one endpoint's counters.</summary>
    private sealed class History
    {
        private readonly long[] _timestamps = new long[HistoryLength];
        private readonly long[] _requests = new long[HistoryLength];
        private readonly long[] _failures = new long[HistoryLength];
        private readonly double?[] _latencies = new double?[HistoryLength];
        private int _next;
        private int _count;

        public void Add(long timestamp, long requests, long failures, double? latencyMs)
        {
            _timestamps[_next] = timestamp;
            _requests[_next] = requests;
            _failures[_next] = failures;
            _latencies[_next] = latencyMs;
            _next = (_next + 1) % HistoryLength;
            _count = Math.Min(_count + 1, HistoryLength);
        }

        /// <summary>Gets the counters at the newest sample at least <see cref="RateWindow"/> old, else at the oldest sample.</summary>
        public (long Requests, long Failures) Baseline(TimeProvider clock, long now)
        {
            for (var i = 0; i < _count; i++)
            {
                var index = (_next - 1 - i + (2 * HistoryLength)) % HistoryLength;
                if (clock.GetElapsedTime(_timestamps[index], now) >= RateWindow || i == _count - 1)
                {
                    return (_requests[index], _failures[index]);
                }
            }

            return (0, 0);
        }

        public double?[] Latencies()
        {
            var result = new double?[_count];
            for (var i = 0; i < _count; i++)
            {
                result[i] = _latencies[(_next - _count + i + HistoryLength) % HistoryLength];
            }

            return result;
        }
    }
}
