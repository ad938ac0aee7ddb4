using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.LoadBalancing;

/// <summary>
/// Shares under peak-EWMA from a discrete-event simulation on a fake clock: closed-loop callers, backends that serve
/// concurrently (latency does not grow with in-flight requests), scheduling noise and 1 % of answers stalled by 5 to
/// 30 ms, all from seeded random sources. Deterministic: the same numbers on every run.
/// </summary>
public sealed class PeakEwmaSimulationTests
{
    [Theory]
    [InlineData(8)]
    [InlineData(32)]
    public void Pick_EqualBackendsWithStalledAnswers_MaxOverMinShareAtMostOnePointOne(int callers)
    {
        var counts = Simulate(5, callers, slowFactor: 1, requests: 60_000, seed: 1);

        Assert.InRange(counts.Max() / (double)counts.Min(), 1.0, 1.1);
    }

    [Theory]
    [InlineData(5, 8)]
    [InlineData(5, 20)]
    [InlineData(10, 8)]
    [InlineData(10, 20)]
    public void Pick_OneBackendSeveralTimesSlower_ItGetsUnderHalfAPercent(double slowFactor, int callers)
    {
        var counts = Simulate(5, callers, slowFactor, requests: 60_000, seed: 2);

        Assert.InRange(counts[^1] / (double)counts.Sum(), 0, 0.005);
        Assert.InRange(counts[..^1].Max() / (double)counts[..^1].Min(), 1.0, 1.1);
    }

    [Fact]
    public void Pick_LinkerdEstimatorAndCost_SendsAFiveTimesSlowerBackendOverTenTimesMore()
    {
        // Full peak sensitivity, a purely time-based average and cost × (in flight + 1): what the defaults replaced.
        var linkerd = Simulate(5, 20, 5, requests: 60_000, seed: 2, peakWeight: 1, peakGrowth: double.PositiveInfinity, sampleWeight: 0, bias: 1);
        var lodestar = Simulate(5, 20, 5, requests: 60_000, seed: 2);

        var linkerdShare = linkerd[^1] / (double)linkerd.Sum();
        var lodestarShare = lodestar[^1] / (double)lodestar.Sum();
        Assert.True(linkerdShare > 10 * lodestarShare, $"linkerd {linkerdShare:P2}, lodestar {lodestarShare:P2}");
        Assert.True(linkerdShare > 0.02, $"linkerd {linkerdShare:P2}");
    }

    [Fact]
    public void Pick_OneAnswerOfAnEqualBackendStalledForASecond_BackendKeepsItsShare()
    {
        // The 100th answer of backend 0 takes a second (a paused process); with Linkerd's rules its estimate jumps to a
        // second and decays over tens of seconds with no answers to correct it, so it is starved.
        var lodestar = Simulate(5, 20, 1, requests: 60_000, seed: 3, stallOnce: true);
        var linkerd = Simulate(5, 20, 1, requests: 60_000, seed: 3, peakWeight: 1, peakGrowth: double.PositiveInfinity, sampleWeight: 0, bias: 1, stallOnce: true);

        Assert.InRange(lodestar[0] / (double)lodestar.Sum(), 0.18, 0.22);
        Assert.True(linkerd[0] / (double)linkerd.Sum() < 0.05, $"linkerd {linkerd[0] / (double)linkerd.Sum():P2}");
    }

    internal static long[] Simulate(int backends, int callers, double slowFactor, int requests, int seed, double? peakWeight = null, double? peakGrowth = null, double? sampleWeight = null,
        double bias = PeakEwmaPolicy.ActiveRequestBias, bool stallOnce = false)
    {
        var clock = new FakeTimeProvider();
        var defaults = new EndpointTracking(clock, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1));
        var tracking = new EndpointTracking(clock, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(1), EndpointStatistics.Latency)
        {
            PeakWeight = peakWeight ?? defaults.PeakWeight,
            PeakGrowth = peakGrowth ?? defaults.PeakGrowth,
            SampleWeight = sampleWeight ?? defaults.SampleWeight,
        };
        var states = Enumerable.Range(0, backends).Select(i => new EndpointState(Endpoint(i), 0, tracking)).ToArray();
        var picker = new PeakEwmaPolicy.PeakEwmaPicker(states, new SeededRandom(seed), clock, 0.030, 2, bias);
        var noise = new Random(seed + 1000);
        var counts = new long[backends];
        var baseMs = Enumerable.Repeat(5.0, backends).ToArray();
        baseMs[^1] *= slowFactor;
        var queue = new PriorityQueue<(EndpointState State, int Index, long Latency), long>();
        var start = clock.GetUtcNow();
        var index = new Dictionary<EndpointState, int>();
        for (var i = 0; i < backends; i++)
        {
            index[states[i]] = i;
        }

        var toFirst = 0;
        void Issue(long now)
        {
            var state = picker.Pick(default);
            var i = index[state];
            state.OnRequestStarted();
            if (stallOnce && i == 0 && ++toFirst == 100)
            {
                queue.Enqueue((state, i, TimeSpan.TicksPerSecond), now + TimeSpan.TicksPerSecond);
                return;
            }

            // Service time plus scheduling noise: mostly under a millisecond, 1 % of answers stalled by 5 to 30 ms.
            var ms = baseMs[i] + (-Math.Log(1 - noise.NextDouble()) * 0.3) + (noise.NextDouble() < 0.01 ? 5 + (25 * noise.NextDouble()) : 0);
            var latency = (long)(ms * TimeSpan.TicksPerMillisecond);
            queue.Enqueue((state, i, latency), now + latency);
        }

        for (var c = 0; c < callers; c++)
        {
            Issue(c * 1_000);
        }

        var warmup = requests / 10;
        for (var n = 0; n < requests + warmup; n++)
        {
            queue.TryDequeue(out var done, out var at);
            clock.SetUtcNow(start + TimeSpan.FromTicks(at));
            done.State.OnRequestCompleted(true, TimeSpan.FromTicks(done.Latency));
            if (n >= warmup)
            {
                counts[done.Index]++;
            }

            Issue(at);
        }

        return counts;
    }
}
