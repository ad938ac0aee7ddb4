using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

internal sealed class RoundRobinPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.RoundRobin;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
    {
        var endpoints = context.Endpoints.ToArray();
        var start = (uint)random.Next(int.MaxValue);

        // Weights are ignored (gRPC's round_robin); slow start still ramps new endpoints, through the stride scheduler.
        return SlowStart.TryCreate(context) is { } slowStart
            ? new WeightedRoundRobinPicker(endpoints, new uint[endpoints.Length], start, slowStart)
            : new RoundRobinPicker(endpoints, start);
    }

    internal sealed class RoundRobinPicker(EndpointState[] endpoints, uint start) : EndpointPicker
    {
        // uint keeps the modulo non-negative when the counter wraps.
        private uint _next = start;

        public override EndpointState Pick(in PickContext context)
            => endpoints[(int)(Interlocked.Increment(ref _next) % (uint)endpoints.Length)];
    }
}

internal sealed class WeightedRoundRobinPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.WeightedRoundRobin;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
    {
        var endpoints = context.Endpoints.ToArray();
        return new WeightedRoundRobinPicker(endpoints, WeightedRoundRobinPicker.ScaleWeights(endpoints), (uint)random.Next(int.MaxValue), SlowStart.TryCreate(context));
    }
}

/// <summary>
/// Smooth weighted round robin without a lock: the static stride scheduler of gRFC A58 (grpc-go's
/// <c>weightedroundrobin</c>), optionally with Envoy's slow-start ramp applied to the weights at pick time.
/// </summary>
/// <remarks>
/// Weights are scaled so the largest is <see cref="MaxWeight"/>. Sequence number <c>s</c> visits endpoint
/// <c>s mod n</c> in generation <c>s / n</c>, which accepts when <c>(w × generation + offset) mod M ≥ M − w</c>: an
/// endpoint of weight <c>w</c> is accepted <c>w</c> times per <c>M</c> generations, spread evenly, so picks interleave
/// instead of coming in bursts. The heaviest endpoint is accepted on every visit, which bounds a pick to at most
/// <c>n</c> steps (one with equal weights).
/// </remarks>
internal sealed class WeightedRoundRobinPicker : EndpointPicker
{
    internal const uint MaxWeight = 0xFFFF;

    private readonly EndpointState[] _endpoints;
    private readonly uint[] _weights;
    private readonly SlowStart? _slowStart;
    private uint _sequence;

    /// <param name="endpoints">The endpoints.</param>
    /// <param name="weights">Scaled weights, or zeros to treat every endpoint as <see cref="MaxWeight"/>.</param>
    /// <param name="start">The first sequence number (random, so that clients do not move in lockstep).</param>
    /// <param name="slowStart">The slow-start ramp, or <see langword="null"/>.</param>
    public WeightedRoundRobinPicker(EndpointState[] endpoints, uint[] weights, uint start, SlowStart? slowStart)
    {
        _endpoints = endpoints;
        _weights = weights;
        for (var i = 0; i < weights.Length; i++)
        {
            if (weights[i] == 0)
            {
                weights[i] = MaxWeight;
            }
        }

        _sequence = start;
        _slowStart = slowStart;
    }

    /// <summary>Scales endpoint weights so the largest is <see cref="MaxWeight"/> and none is below 1.</summary>
    public static uint[] ScaleWeights(EndpointState[] endpoints)
    {
        var max = 1;
        foreach (var endpoint in endpoints)
        {
            max = Math.Max(max, endpoint.Endpoint.Weight);
        }

        var weights = new uint[endpoints.Length];
        for (var i = 0; i < endpoints.Length; i++)
        {
            weights[i] = (uint)Math.Clamp(Math.Round((double)endpoints[i].Endpoint.Weight * MaxWeight / max), 1, MaxWeight);
        }

        return weights;
    }

    public override EndpointState Pick(in PickContext context) => _endpoints[NextIndex()];

    /// <summary>Returns the index of the next endpoint; lock-free.</summary>
    public int NextIndex()
    {
        var ramping = _slowStart is not null && _slowStart.IsActive(out var now) ? now : long.MinValue;
        var count = (uint)_endpoints.Length;
        while (true)
        {
            var sequence = Interlocked.Increment(ref _sequence);
            var index = sequence % count;
            ulong weight = _weights[index];
            if (ramping != long.MinValue)
            {
                weight = (ulong)Math.Max(1, weight * _slowStart!.Factor(_endpoints[index], ramping));
            }

            var generation = (ulong)(sequence / count);
            var offset = (ulong)(MaxWeight / 2) * index;
            if (((weight * generation) + offset) % MaxWeight >= MaxWeight - weight)
            {
                return (int)index;
            }
        }
    }
}

internal sealed class RandomPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.Random;

    public EndpointPicker CreatePicker(LoadBalancingContext context) => new RandomPicker(context.Endpoints.ToArray(), random);

    private sealed class RandomPicker(EndpointState[] endpoints, RandomSource random) : EndpointPicker
    {
        public override EndpointState Pick(in PickContext context) => endpoints[random.Next(endpoints.Length)];
    }
}

/// <summary>
/// Envoy's least request: with equal weights, the fewest in flight of <c>choice_count</c> random endpoints; with
/// unequal weights (or endpoints in slow start), picks in proportion to <c>weight / (in flight + 1) ^ bias</c>.
/// </summary>
internal sealed class LeastRequestPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.LeastRequest;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
    {
        var endpoints = context.Endpoints.ToArray();
        var options = context.Options;
        var slowStart = SlowStart.TryCreate(context);
        var equalWeights = true;
        for (var i = 1; i < endpoints.Length; i++)
        {
            equalWeights &= endpoints[i].Endpoint.Weight == endpoints[0].Endpoint.Weight;
        }

        var choices = Math.Clamp(options.ChoiceCount, 2, 100);
        if (equalWeights && slowStart is null)
        {
            return new ChoicesPicker(endpoints, random, choices);
        }

        var scheduler = new WeightedRoundRobinPicker(endpoints, WeightedRoundRobinPicker.ScaleWeights(endpoints), (uint)random.Next(int.MaxValue), slowStart);
        return new WeightedPicker(endpoints, scheduler, random, Math.Clamp(options.ActiveRequestBias, 0, 10), equalWeights ? new ChoicesPicker(endpoints, random, choices) : null, slowStart);
    }

    /// <summary>Fewest in flight among <c>choices</c> random endpoints (two distinct ones for the default of 2).</summary>
    internal sealed class ChoicesPicker(EndpointState[] endpoints, RandomSource random, int choices) : EndpointPicker
    {
        public override EndpointState Pick(in PickContext context)
        {
            var count = endpoints.Length;
            var first = random.Next(count);
            var best = endpoints[first];
            if (choices == 2)
            {
                // Two distinct candidates (Mitzenmacher's power of two choices); a tie keeps the first.
                var second = random.Next(count - 1);
                if (second >= first)
                {
                    second++;
                }

                var b = endpoints[second];
                return b.InFlight < best.InFlight ? b : best;
            }

            var bestLoad = best.InFlight;
            for (var i = 1; i < choices; i++)
            {
                // Envoy samples with replacement beyond two choices.
                var candidate = endpoints[random.Next(count)];
                var load = candidate.InFlight;
                if (load < bestLoad)
                {
                    best = candidate;
                    bestLoad = load;
                }
            }

            return best;
        }
    }

    /// <summary>
    /// Envoy's weighted least request without its EDF lock: the stride scheduler proposes endpoints in proportion to
    /// their (slow-start ramped) weight, and a proposal is accepted with probability <c>1 / (in flight + 1) ^ bias</c>,
    /// so picks follow <c>weight / (in flight + 1) ^ bias</c>. After <see cref="MaxProposals"/> rejections the best
    /// proposal seen wins, which bounds the cost when every endpoint is busy.
    /// </summary>
    internal sealed class WeightedPicker(EndpointState[] endpoints, WeightedRoundRobinPicker scheduler, RandomSource random, double bias,
        ChoicesPicker? afterSlowStart, SlowStart? slowStart) : EndpointPicker
    {
        private const int MaxProposals = 16;

        public override EndpointState Pick(in PickContext context)
        {
            if (afterSlowStart is not null && slowStart is not null && !slowStart.IsActive(out _))
            {
                // Equal weights and the ramp is over: plain choice of the least loaded.
                return afterSlowStart.Pick(in context);
            }

            EndpointState? best = null;
            var bestScore = double.MinValue;
            for (var i = 0; i < MaxProposals; i++)
            {
                var candidate = endpoints[scheduler.NextIndex()];
                var inFlight = candidate.InFlight;
                if (inFlight <= 0 || bias == 0)
                {
                    return candidate;
                }

                var acceptance = bias == 1 ? 1.0 / (inFlight + 1) : Math.Pow(inFlight + 1, -bias);
                if (random.NextDouble() < acceptance)
                {
                    return candidate;
                }

                var score = candidate.Endpoint.Weight * acceptance;
                if (score > bestScore)
                {
                    best = candidate;
                    bestScore = score;
                }
            }

            return best!;
        }
    }
}
