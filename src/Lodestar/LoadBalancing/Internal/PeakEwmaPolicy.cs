using Lodestar.Internal;

namespace Lodestar.LoadBalancing.Internal;

/// <summary>
/// A peak-EWMA balancer after Linkerd's and Finagle's: of <c>choice_count</c> random endpoints, the one with the lowest
/// <c>(latency estimate + 1 ms) × √(in flight + 1)</c>.
/// </summary>
/// <remarks>
/// <para>
/// The estimate is kept per endpoint in <see cref="EndpointState"/> from every completed attempt: a slower observation
/// moves it a quarter of the way at once, at most by a quarter (damped peak sensitivity), a faster one is averaged in with the larger of the
/// time-based weight (time constant <see cref="LoadBalancingOptions.PeakEwmaDecay"/>) and a tenth per answer; it decays
/// toward zero while idle. An endpoint without an observation competes at the best estimate among the candidates of the same
/// pick (<see cref="LoadBalancingOptions.PeakEwmaDefaultRtt"/> when none has one), so a new instance is never starved.
/// So does an endpoint whose estimate got no new answer for a tenth of the decay time constant (at most a second) while
/// nothing was in flight to it: it is probed, and a faster answer to the probe replaces the estimate. A backend that looked slow once
/// (its first answer paid for the connection and a cold server) is back within a second instead of after
/// <c>decay × ln(its estimate / the others')</c>, while a backend that is slow gets about one request per second.
/// Weights are not used, as in Linkerd.
/// </para>
/// <para>
/// Three measured departures from Linkerd. Its full peak sensitivity with a 10 s window lets the occasional stalled answer
/// of a fast endpoint (a client pause, one slow request) hold its estimate near the stall for seconds: equal backends
/// drift apart and a 5x slower one looks no worse than the rest. And its <c>× (in flight + 1)</c> equates a 5x slower
/// idle endpoint with a fast one holding four requests, although a backend that serves requests concurrently is not
/// slowed by them; the square root (Envoy's <c>active_request_bias</c> of 0.5) still spreads load by what is in flight
/// but lets latency decide between a slow endpoint and a busy fast one. In a scripted simulation (5 backends, 1 % of
/// answers stalled 5 to 30 ms; <c>PeakEwmaSimulationTests</c>) the share of a 5x slower backend falls from 4.7-5.4 %
/// to under 0.5 %, equal backends stay within 1.1 of each other, and one answer stalled for a second no longer starves
/// a backend for the rest of the window. And its 10 s window lets a slow endpoint's estimate decay, between its few
/// answers, to where it competes with busy fast endpoints every few hundred milliseconds; the default window is 30 s
/// (see <see cref="LoadBalancingOptions.PeakEwmaDecay"/>).
/// </para>
/// </remarks>
internal sealed class PeakEwmaPolicy(RandomSource random) : ILoadBalancingPolicy
{
    /// <summary>The most candidates one pick compares (the policy clamps <c>ChoiceCount</c> to it).</summary>
    internal const int MaxChoices = 100;

    /// <summary>The exponent of <c>(in flight + 1)</c> in the cost; 1 is Linkerd's.</summary>
    internal const double ActiveRequestBias = 0.5;

    /// <summary>
    /// Added to every estimate in the cost: differences between sub-millisecond estimates are mostly the client's own
    /// scheduling, not the backends', and weighed at face value they tip equal backends apart (max/min share 1.17 in
    /// <c>PeakEwmaSimulationTests</c> with 0.2 ms backends, 1.04 with the floor). Against a 5 ms estimate it changes
    /// nothing that matters: 6 against 26 for a 5x slower backend.
    /// </summary>
    internal const double LatencyFloorSeconds = 0.001;

    public string Name => LoadBalancingPolicies.PeakEwma;

    public EndpointStatistics Statistics => EndpointStatistics.Latency;

    public EndpointPicker CreatePicker(LoadBalancingContext context)
        => new PeakEwmaPicker(context.Endpoints.ToArray(), random, context.TimeProvider, context.Options.PeakEwmaDefaultRtt.TotalSeconds,
            Math.Clamp(context.Options.ChoiceCount, 2, MaxChoices));

    internal sealed class PeakEwmaPicker(EndpointState[] endpoints, RandomSource random, TimeProvider clock, double defaultRtt, int choices, double bias = ActiveRequestBias)
        : EndpointPicker
    {
        public override EndpointState Pick(in PickContext context)
        {
            var now = clock.GetTimestamp();
            var count = endpoints.Length;
            Span<int> candidates = stackalloc int[Math.Min(choices, MaxChoices)];
            candidates[0] = random.Next(count);
            for (var i = 1; i < candidates.Length; i++)
            {
                if (i == 1)
                {
                    // The second candidate is always distinct from the first.
                    var index = random.Next(count - 1);
                    candidates[1] = index >= candidates[0] ? index + 1 : index;
                }
                else
                {
                    candidates[i] = random.Next(count);
                }
            }

            // An endpoint without an observation yet competes at the best estimate among the candidates that have one:
            // at a fixed default it would never win against endpoints answering faster than that default, would get no
            // request, and so would never get an estimate (a scaled-out instance starved for good). Its in-flight count
            // still weighs, so it takes its share, not every request, until its first answers arrive.
            Span<double> estimates = stackalloc double[candidates.Length];
            var reference = double.MaxValue;
            for (var i = 0; i < candidates.Length; i++)
            {
                estimates[i] = endpoints[candidates[i]].GetPickEstimate(now);
                if (estimates[i] >= 0 && estimates[i] < reference)
                {
                    reference = estimates[i];
                }
            }

            if (reference == double.MaxValue)
            {
                reference = defaultRtt;
            }

            var best = endpoints[candidates[0]];
            var bestCost = Cost(estimates[0] < 0 ? reference : estimates[0], best.InFlight);
            for (var i = 1; i < candidates.Length; i++)
            {
                var candidate = endpoints[candidates[i]];
                var cost = Cost(estimates[i] < 0 ? reference : estimates[i], candidate.InFlight);
                if (cost < bestCost)
                {
                    best = candidate;
                    bestCost = cost;
                }
            }

            return best;
        }

        /// <summary>The cost of one endpoint alone, an unobserved one at the default round-trip time.</summary>
        internal double Cost(EndpointState endpoint, long now)
        {
            var estimate = endpoint.GetLatencyEstimate(now);
            return Cost(estimate < 0 ? defaultRtt : estimate, endpoint.InFlight);
        }

        private double Cost(double estimate, int inFlight)
        {
            var load = inFlight + 1;
            estimate += LatencyFloorSeconds;
            return bias == 1.0 ? estimate * load : bias == 0.5 ? estimate * Math.Sqrt(load) : estimate * Math.Pow(load, bias);
        }
    }
}
