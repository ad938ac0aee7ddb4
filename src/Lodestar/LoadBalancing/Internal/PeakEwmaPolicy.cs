using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// Linkerd's (and Finagle's) peak-EWMA balancer: of <c>choice_count</c> random endpoints, the one with the lowest
/// <c>latency estimate × (in flight + 1)</c>.
/// </summary>
/// <remarks>
/// The estimate is kept per endpoint in <see cref="EndpointState"/> from every completed attempt: peak-sensitive (a
/// slower observation replaces it at once), otherwise an exponentially weighted average with time constant
/// <see cref="LoadBalancingOptions.PeakEwmaDecay"/>, decaying toward zero while idle. Endpoints without an observation
/// cost <see cref="LoadBalancingOptions.PeakEwmaDefaultRtt"/>. Weights are not used, as in Linkerd.
/// </remarks>
internal sealed class PeakEwmaPolicy(RandomSource random) : ILoadBalancingPolicy
{
    public string Name => LoadBalancingPolicies.PeakEwma;

    public EndpointStatistics Statistics => EndpointStatistics.Latency;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
        => new PeakEwmaPicker(context.Endpoints.ToArray(), random, context.TimeProvider, context.Options.PeakEwmaDefaultRtt.TotalSeconds,
            Math.Clamp(context.Options.ChoiceCount, 2, 100));

    internal sealed class PeakEwmaPicker(EndpointState[] endpoints, RandomSource random, TimeProvider clock, double defaultRtt, int choices) : EndpointPicker
    {
        public override EndpointState Pick(in PickContext context)
        {
            var now = clock.GetTimestamp();
            var count = endpoints.Length;
            var first = random.Next(count);
            var best = endpoints[first];
            var bestCost = Cost(best, now);
            for (var i = 1; i < choices; i++)
            {
                int index;
                if (i == 1)
                {
                    // The second candidate is always distinct from the first.
                    index = random.Next(count - 1);
                    if (index >= first)
                    {
                        index++;
                    }
                }
                else
                {
                    index = random.Next(count);
                }

                var candidate = endpoints[index];
                var cost = Cost(candidate, now);
                if (cost < bestCost)
                {
                    best = candidate;
                    bestCost = cost;
                }
            }

            return best;
        }

        internal double Cost(EndpointState endpoint, long now)
        {
            var estimate = endpoint.GetLatencyEstimate(now);
            if (estimate < 0)
            {
                estimate = defaultRtt;
            }

            return estimate * (endpoint.InFlight + 1);
        }
    }
}
