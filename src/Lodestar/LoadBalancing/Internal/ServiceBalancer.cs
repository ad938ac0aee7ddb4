using Lodestar.Health.Internal;
using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// One policy over one health stage: rebuilds an immutable picker from each snapshot the stage publishes, and picks
/// from the current one without a lock.
/// </summary>
/// <remarks>
/// Concurrency rule (as in YARP's cluster state): rebuilds serialise on <see cref="_buildGate"/>, read the stage's
/// latest snapshot (never an older one: a late notification finds nothing newer and returns), build a new immutable
/// <see cref="Built"/> and publish it with one volatile write; <see cref="Pick"/> reads that reference once and never
/// locks. The <see cref="EndpointState"/> records belong to the stage and outlive every picker.
/// </remarks>
internal sealed class ServiceBalancer : IDisposable
{
    private static readonly Built s_empty = new(null, [], [], false, 0, 0);

    private readonly ILoadBalancingPolicy _policy;
    private readonly RandomSource _random;
    private readonly LoadBalancingOptions _options;
    private readonly Lock _buildGate = new();
    private readonly IDisposable _subscription;
    private volatile Built _built = s_empty;
    private Action[] _setChanged = [];

    public ServiceBalancer(HealthStage stage, ILoadBalancingPolicy policy, double panicThreshold, RandomSource random, LoadBalancingOptions? options = null)
    {
        Stage = stage;
        _options = options ?? new LoadBalancingOptions();
        _policy = policy;
        PanicThreshold = panicThreshold;
        _random = random;
        _subscription = stage.Subscribe(policy.Statistics, Refresh);
        Refresh();
    }

    /// <summary>Gets the health stage the balancer builds from.</summary>
    public HealthStage Stage { get; }

    public string ServiceName => Stage.ServiceName;

    public string PolicyName => _policy.Name;

    /// <summary>Gets the fraction of healthy endpoints below which all endpoints are used (Envoy's panic mode).</summary>
    public double PanicThreshold { get; }

    /// <summary>Gets the version of the endpoint set the current picker was built from; 0 before the first.</summary>
    public long SetVersion => _built.SetVersion;

    /// <summary>Gets every endpoint that may take traffic (weight above 0), healthy or not.</summary>
    public IReadOnlyList<EndpointState> Endpoints => _built.All;

    /// <summary>Gets the endpoints the current picker balances over.</summary>
    public IReadOnlyList<EndpointState> Routable => _built.Routable;

    /// <summary>Gets whether the current picker routes over unhealthy endpoints because too few are healthy.</summary>
    public bool InPanic => _built.Panic;

    /// <summary>
    /// Calls <paramref name="callback"/> after each rebuild that moved the picker to a newer endpoint set (not after
    /// health changes), once the new picker is in force; the callback runs outside the build lock.
    /// </summary>
    public IDisposable RegisterSetChanged(Action callback)
    {
        lock (_buildGate)
        {
            _setChanged = [.. _setChanged, callback];
        }

        return new SetChangedRegistration(this, callback);
    }

    /// <summary>Rebuilds the picker from the stage's latest snapshot, unless it was already built from it.</summary>
    public void Refresh()
    {
        Action[] setChanged;
        lock (_buildGate)
        {
            var snapshot = Stage.Snapshot;
            if (snapshot.Version <= _built.HealthVersion && _built.HealthVersion != 0)
            {
                return;
            }

            setChanged = snapshot.SetVersion != _built.SetVersion ? _setChanged : [];

            // Subsets, priority levels (with panic per level) and zones are layered over the policy's picker.
            var result = PickerBuilder.Build(_policy, ServiceName, snapshot, PanicThreshold, _options, Stage.TimeProvider, _random);

            // SetVersion is published with the picker: callers take SetVersion > 0 to mean "ready to pick".
            _built = new Built(result.Picker, snapshot.Endpoints, result.Routable, result.Panic, snapshot.Version, snapshot.SetVersion);
        }

        // Outside the lock: a callback may publish a picker to a channel, which takes the channel's own lock.
        foreach (var callback in setChanged)
        {
            callback();
        }
    }

    /// <summary>
    /// Picks an endpoint, or <see langword="null"/> when the service has none or every routable endpoint is in
    /// <see cref="PickContext.Attempted"/>. Lock-free; allocation-free.
    /// </summary>
    public EndpointState? Pick(in PickContext context)
    {
        var built = _built;
        var picker = built.Picker;
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

        var routable = built.Routable;
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

    /// <summary>
    /// Brings the stage and then this picker up to the watcher's current set, for a request about to pick. The stage may
    /// already hold a newer set than the picker (the watcher's thread published it and has not told this balancer yet,
    /// so the stage's catch-up finds nothing to apply): the picker is built from it here rather than picked from the old one.
    /// Two volatile reads when both are current.
    /// </summary>
    public void CatchUp()
    {
        Stage.CatchUp();
        if (_built.SetVersion < Stage.SetVersion)
        {
            Refresh();
        }
    }

    public void Dispose() => _subscription.Dispose();

    private void UnregisterSetChanged(Action callback)
    {
        lock (_buildGate)
        {
            _setChanged = Array.FindAll(_setChanged, c => c != callback);
        }
    }

    private sealed class SetChangedRegistration(ServiceBalancer owner, Action callback) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.UnregisterSetChanged(callback);
            }
        }
    }

    private sealed class Built(EndpointPicker? picker, EndpointState[] all, EndpointState[] routable, bool panic, long healthVersion, long setVersion)
    {
        public EndpointPicker? Picker { get; } = picker;

        public EndpointState[] All { get; } = all;

        public EndpointState[] Routable { get; } = routable;

        public bool Panic { get; } = panic;

        public long HealthVersion { get; } = healthVersion;

        public long SetVersion { get; } = setVersion;
    }
}
