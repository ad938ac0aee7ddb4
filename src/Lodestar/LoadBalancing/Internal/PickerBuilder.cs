using Lodestar.Health.Internal;
using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Builds a service's picker from its endpoints in layers, off the request path: traffic split (subsets), then
/// priority failover with panic, then zone awareness, then the policy's picker over what is left.
/// </summary>
/// <remarks>
/// Each layer is a <see cref="SplitPicker"/> that chooses a child by one random draw (or the hash key, for sticky
/// splits), so a pick stays lock-free and allocation-free however many layers apply. Semantics follow Envoy:
/// <list type="bullet">
/// <item>Priority: a level's health is <c>min(1, overprovisioning × healthy / total)</c>; levels take load in priority order
/// up to their health, and when the levels' health adds up to less than 1 the loads are scaled up to 1.</item>
/// <item>Panic: when the total health is below 1, a level whose healthy fraction is below the panic threshold routes to
/// all of its endpoints; when every level is in panic, load follows endpoint counts.</item>
/// <item>Zones: the caller's zone keeps all of a level's traffic while <c>overprovisioning × its healthy fraction ≥ 1</c>,
/// otherwise that fraction, the rest spilling to the other zones in proportion to their endpoints. Kubernetes topology
/// hints, when every endpoint carries them and some name the caller's zone, select the endpoints instead.</item>
/// </list>
/// </remarks>
internal static class PickerBuilder
{
    /// <summary>The metadata key under which sources put Kubernetes topology hints (comma-separated zones).</summary>
    public const string ZoneHintsKey = "k8s.hints.zones";

    public readonly record struct Result(EndpointPicker? Picker, EndpointState[] Routable, bool Panic);

    public static Result Build(ILoadBalancingPolicy policy, string serviceName, HealthSnapshot snapshot, double panicThreshold,
        LoadBalancingOptions options, TimeProvider timeProvider, RandomSource random)
    {
        var all = snapshot.Endpoints;
        var state = new BuildState(policy, serviceName, options, timeProvider, random, panicThreshold, snapshot);
        if (all.Length == 0)
        {
            return new Result(null, [], false);
        }

        var splits = options.TrafficSplits;
        EndpointPicker? picker;
        if (splits.Count == 0)
        {
            picker = state.BuildPriorities(all);
        }
        else
        {
            picker = BuildSplits(state, all, splits);
        }

        return new Result(picker, state.Routable.ToArray(), state.Panic);
    }

    private static EndpointPicker? BuildSplits(BuildState state, EndpointState[] all, IList<TrafficSplit> splits)
    {
        var groups = new List<EndpointState>[splits.Count + 1];
        for (var i = 0; i < groups.Length; i++)
        {
            groups[i] = [];
        }

        foreach (var endpoint in all)
        {
            var group = splits.Count;
            for (var s = 0; s < splits.Count; s++)
            {
                if (Matches(endpoint, splits[s].Match))
                {
                    group = s;
                    break;
                }
            }

            groups[group].Add(endpoint);
        }

        var children = new List<EndpointPicker>();
        var weights = new List<double>();
        var rest = 100.0;
        var orphaned = 0.0;
        for (var s = 0; s < splits.Count; s++)
        {
            var percent = Math.Clamp(splits[s].Percent, 0, 100);
            rest -= percent;
            var child = groups[s].Count > 0 ? state.BuildPriorities(groups[s].ToArray()) : null;
            if (child is null)
            {
                // A subset with no endpoints gives its share to the endpoints outside every subset.
                orphaned += percent;
            }
            else if (percent > 0)
            {
                children.Add(child);
                weights.Add(percent);
            }
        }

        var defaultChild = groups[splits.Count].Count > 0 ? state.BuildPriorities(groups[splits.Count].ToArray()) : null;
        var defaultShare = Math.Max(0, rest) + orphaned;
        if (defaultChild is not null && defaultShare > 0)
        {
            children.Add(defaultChild);
            weights.Add(defaultShare);
        }

        // With no default group, orphaned and remaining shares are spread over the subsets in proportion (normalised).
        return children.Count switch
        {
            0 => defaultChild,
            1 => children[0],
            _ => new SplitPicker([.. children], [.. weights], state.Random, new HashKeyExtractor(state.Options)),
        };
    }

    private static bool Matches(EndpointState endpoint, IDictionary<string, string> match)
    {
        if (match.Count == 0)
        {
            return false;
        }

        var metadata = endpoint.Endpoint.Metadata;
        foreach (var pair in match)
        {
            if (!metadata.TryGetValue(pair.Key, out var value) || !string.Equals(value, pair.Value, StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    private sealed class BuildState(ILoadBalancingPolicy policy, string serviceName, LoadBalancingOptions options, TimeProvider timeProvider,
        RandomSource random, double panicThreshold, HealthSnapshot snapshot)
    {
        private readonly string? _localZone = options.ResolveLocalZone();
        private readonly double _overprovisioning = Math.Clamp(options.OverprovisioningFactor, 1, 10);

        public LoadBalancingOptions Options => options;

        public RandomSource Random => random;

        public List<EndpointState> Routable { get; } = [];

        public bool Panic { get; private set; }

        public EndpointPicker? BuildPriorities(EndpointState[] endpoints)
        {
            var levels = GroupByPriority(endpoints);
            var count = levels.Count;
            var health = new double[count];
            var healthy = new EndpointState[count][];
            double totalHealth = 0;
            for (var i = 0; i < count; i++)
            {
                healthy[i] = Array.FindAll(levels[i], snapshot.IsHealthy);
                health[i] = Math.Min(1, _overprovisioning * healthy[i].Length / levels[i].Length);
                totalHealth += health[i];
            }

            var normalizedHealth = Math.Min(1, totalHealth);
            var loads = new double[count];
            var panics = new bool[count];
            var allInPanic = true;
            for (var i = 0; i < count; i++)
            {
                // Envoy: no level is in panic while the levels together are fully available.
                panics[i] = normalizedHealth < 1 && healthy[i].Length < levels[i].Length * panicThreshold;
                allInPanic &= panics[i];
            }

            if (allInPanic && normalizedHealth < 1)
            {
                // Total panic: every endpoint of every level, load in proportion to endpoint counts.
                for (var i = 0; i < count; i++)
                {
                    loads[i] = levels[i].Length;
                }
            }
            else
            {
                var remaining = 1.0;
                for (var i = 0; i < count; i++)
                {
                    loads[i] = Math.Min(health[i], remaining);
                    remaining -= loads[i];
                }
            }

            var children = new List<EndpointPicker>(count);
            var weights = new List<double>(count);
            for (var i = 0; i < count; i++)
            {
                if (loads[i] <= 0)
                {
                    continue;
                }

                var routable = panics[i] ? levels[i] : healthy[i];
                Panic |= panics[i];
                var child = BuildZones(levels[i], routable, panics[i]);
                if (child is not null)
                {
                    children.Add(child);
                    weights.Add(loads[i]);
                }
            }

            return children.Count switch
            {
                0 => null,
                1 => children[0],
                _ => new SplitPicker([.. children], [.. weights], random, null),
            };
        }

        private EndpointPicker? BuildZones(EndpointState[] level, EndpointState[] routable, bool panic)
        {
            if (_localZone is null || panic || level.Length < options.ZoneAwareMinimumEndpoints || routable.Length == 0)
            {
                return Leaf(routable);
            }

            if (TryTopologyHints(level, routable, out var hinted))
            {
                return Leaf(hinted);
            }

            var localTotal = 0;
            var local = new List<EndpointState>();
            var remote = new List<EndpointState>();
            foreach (var endpoint in level)
            {
                if (string.Equals(endpoint.Endpoint.Zone, _localZone, StringComparison.Ordinal))
                {
                    localTotal++;
                }
            }

            foreach (var endpoint in routable)
            {
                (string.Equals(endpoint.Endpoint.Zone, _localZone, StringComparison.Ordinal) ? local : remote).Add(endpoint);
            }

            if (localTotal == 0 || local.Count == 0 || remote.Count == 0)
            {
                return Leaf(routable);
            }

            var localShare = Math.Min(1, _overprovisioning * local.Count / localTotal);
            if (localShare >= 1)
            {
                return Leaf([.. local]);
            }

            return new SplitPicker([Leaf([.. local])!, Leaf([.. remote])!], [localShare, 1 - localShare], random, null);
        }

        private bool TryTopologyHints(EndpointState[] level, EndpointState[] routable, out EndpointState[] hinted)
        {
            hinted = [];
            foreach (var endpoint in level)
            {
                if (!endpoint.Endpoint.Metadata.ContainsKey(ZoneHintsKey))
                {
                    // kube-proxy ignores hints unless every endpoint has them.
                    return false;
                }
            }

            var list = new List<EndpointState>();
            foreach (var endpoint in routable)
            {
                var hints = endpoint.Endpoint.Metadata[ZoneHintsKey].AsSpan();
                foreach (var range in hints.Split(','))
                {
                    if (hints[range].Trim().SequenceEqual(_localZone))
                    {
                        list.Add(endpoint);
                        break;
                    }
                }
            }

            hinted = [.. list];
            return hinted.Length > 0;
        }

        private EndpointPicker? Leaf(EndpointState[] endpoints)
        {
            Routable.AddRange(endpoints);
            return endpoints.Length switch
            {
                0 => null,
                1 => new SinglePicker(endpoints[0]),
                _ => policy.CreatePicker(new LoadBalancingContext(serviceName, endpoints, timeProvider, options)),
            };
        }

        private static List<EndpointState[]> GroupByPriority(EndpointState[] endpoints)
        {
            var byPriority = new SortedDictionary<int, List<EndpointState>>();
            foreach (var endpoint in endpoints)
            {
                var priority = endpoint.Endpoint.Priority;
                if (!byPriority.TryGetValue(priority, out var list))
                {
                    byPriority[priority] = list = [];
                }

                list.Add(endpoint);
            }

            var levels = new List<EndpointState[]>(byPriority.Count);
            foreach (var list in byPriority.Values)
            {
                levels.Add([.. list]);
            }

            return levels;
        }
    }

    /// <summary>Chooses one of several child pickers by share: one random draw, or the hash key when sticky.</summary>
    internal sealed class SplitPicker : EndpointPicker
    {
        private readonly EndpointPicker[] _children;
        private readonly double[] _cumulative;
        private readonly RandomSource _random;
        private readonly HashKeyExtractor? _stickyKeys;

        public SplitPicker(EndpointPicker[] children, double[] shares, RandomSource random, HashKeyExtractor? stickyKeys)
        {
            _children = children;
            _random = random;
            _stickyKeys = stickyKeys;
            _cumulative = new double[shares.Length];
            var total = 0.0;
            foreach (var share in shares)
            {
                total += share;
            }

            var sum = 0.0;
            for (var i = 0; i < shares.Length; i++)
            {
                sum += shares[i] / total;
                _cumulative[i] = sum;
            }

            _cumulative[^1] = double.MaxValue;
        }

        public override EndpointState Pick(in PickContext context)
        {
            double draw;
            if (_stickyKeys is not null && _stickyKeys.TryGetHash(in context, out var hash))
            {
                // Remix the key's hash (splitmix64 finaliser) so the split does not correlate with ring positions.
                hash ^= hash >> 30;
                hash *= 0xBF58476D1CE4E5B9UL;
                hash ^= hash >> 27;
                hash *= 0x94D049BB133111EBUL;
                hash ^= hash >> 31;
                draw = (hash >> 11) * (1.0 / (1UL << 53));
            }
            else
            {
                draw = _random.NextDouble();
            }

            var cumulative = _cumulative;
            for (var i = 0; i < cumulative.Length; i++)
            {
                if (draw < cumulative[i])
                {
                    return _children[i].Pick(in context);
                }
            }

            return _children[^1].Pick(in context);
        }
    }

    private sealed class SinglePicker(EndpointState only) : EndpointPicker
    {
        public override EndpointState Pick(in PickContext context) => only;
    }
}
