using Lodestar.Endpoints;
using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Holds one service's per-endpoint state and its current picker, rebuilt whenever the endpoint set or health changes.
/// </summary>
/// <remarks>
/// Concurrency rule (as in YARP's cluster state): writers serialise on <see cref="_updateGate"/>, build a new
/// immutable <see cref="Snapshot"/> and publish it with one volatile write; <see cref="Pick"/> reads that reference
/// once and never locks. <see cref="EndpointState"/> objects outlive snapshots, so counters are never reset.
/// </remarks>
internal sealed class ServiceBalancer
{
    private static readonly Snapshot s_empty = new(null, [], [], 0);

    private readonly ILoadBalancingPolicy _policy;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LoadBalancingOptions _options;
    private readonly EndpointTracking _tracking;
    private readonly Lock _updateGate = new();
    private Dictionary<DiscoveredEndpoint, EndpointState> _states = [];
    private volatile Snapshot _snapshot = s_empty;
    private long _setVersion;

    public ServiceBalancer(string serviceName, ILoadBalancingPolicy policy, TimeProvider timeProvider, double panicThreshold, RandomSource random,
        LoadBalancingOptions? options = null)
    {
        _options = options ?? new LoadBalancingOptions();
        _tracking = new EndpointTracking(timeProvider, _options.PeakEwmaDecay, _options.PeakEwmaFailurePenalty);
        ServiceName = serviceName;
        _policy = policy;
        _timeProvider = timeProvider;
        PanicThreshold = panicThreshold;
        _random = random;
    }

    public string ServiceName { get; }

    public string PolicyName => _policy.Name;

    /// <summary>Gets the fraction of healthy endpoints below which all endpoints are used (Envoy's panic mode).</summary>
    public double PanicThreshold { get; }

    /// <summary>Gets the version of the endpoint set last applied; 0 before the first.</summary>
    public long SetVersion => Interlocked.Read(ref _setVersion);

    /// <summary>Gets every endpoint that may take traffic (weight above 0), healthy or not.</summary>
    public IReadOnlyList<EndpointState> Endpoints => _snapshot.All;

    /// <summary>Gets the endpoints the current picker balances over.</summary>
    public IReadOnlyList<EndpointState> Routable => _snapshot.Routable;

    /// <summary>Gets whether the current picker routes over unhealthy endpoints because too few are healthy.</summary>
    public bool InPanic => _snapshot.Panic;

    /// <summary>
    /// Gets or sets whether an endpoint seen for the first time starts unhealthy by active checks, so it takes no
    /// traffic until its first check passes. Set by the active health checker.
    /// </summary>
    public bool NewEndpointsStartUnhealthy { get; set; }

    /// <summary>Applies a newer endpoint set; older or equal versions are ignored.</summary>
    public void Update(EndpointSet set)
    {
        lock (_updateGate)
        {
            if (set.Version <= _setVersion)
            {
                return;
            }

            var now = _timeProvider.GetTimestamp();
            var next = new Dictionary<DiscoveredEndpoint, EndpointState>(set.Count);
            var all = new List<EndpointState>(set.Count);
            foreach (var endpoint in set.Endpoints)
            {
                if (!_states.TryGetValue(endpoint, out var state))
                {
                    state = new EndpointState(endpoint, now, _tracking);
                    if (NewEndpointsStartUnhealthy)
                    {
                        state.SetActiveHealthy(false);
                    }
                }
                else
                {
                    state.SetEndpoint(endpoint);
                }

                next[endpoint] = state;
                if (endpoint.Weight > 0)
                {
                    all.Add(state);
                }
            }

            _states = next;
            Rebuild_NeedsLock(all.ToArray());

            // Publish the version only after the picker: callers take SetVersion > 0 to mean "ready to pick".
            Interlocked.Exchange(ref _setVersion, set.Version);
        }
    }

    /// <summary>Rebuilds the picker after a health change (ejection, active check) without a new endpoint set.</summary>
    public void RefreshHealth()
    {
        lock (_updateGate)
        {
            Rebuild_NeedsLock(_snapshot.All);
        }
    }

    /// <summary>
    /// Picks an endpoint, or <see langword="null"/> when the service has none or every routable endpoint is in
    /// <see cref="PickContext.Attempted"/>. Lock-free; allocation-free.
    /// </summary>
    public EndpointState? Pick(in PickContext context)
    {
        var snapshot = _snapshot;
        var picker = snapshot.Picker;
        if (picker is null)
        {
            return null;
        }

        if (context.Attempted is not { Count: > 0 })
        {
            return picker.Pick(in context);
        }

        // A retry: let the policy choose first, so retries still follow its preferences.
        for (var i = 0; i < 3; i++)
        {
            var candidate = picker.Pick(in context);
            if (!context.WasAttempted(candidate))
            {
                return candidate;
            }
        }

        var routable = snapshot.Routable;
        var start = _random.Next(routable.Length);
        for (var i = 0; i < routable.Length; i++)
        {
            var candidate = routable[(start + i) % routable.Length];
            if (!context.WasAttempted(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private void Rebuild_NeedsLock(EndpointState[] all)
    {
        // Subsets, priority levels (with panic per level) and zones are layered over the policy's picker.
        var result = PickerBuilder.Build(_policy, ServiceName, all, PanicThreshold, _options, _timeProvider, _random);
        _snapshot = new Snapshot(result.Picker, all, result.Routable, result.Panic ? 1 : 0);
    }

    private sealed class Snapshot(EndpointPicker? picker, EndpointState[] all, EndpointState[] routable, int panic)
    {
        public EndpointPicker? Picker { get; } = picker;

        public EndpointState[] All { get; } = all;

        public EndpointState[] Routable { get; } = routable;

        public bool Panic => panic != 0;
    }
}
