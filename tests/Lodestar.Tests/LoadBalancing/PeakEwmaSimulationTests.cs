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
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void Pick_EqualSubMillisecondBackendsAtSixteenCallers_MaxOverMinShareAtMostOnePointOne(int seed)
    {
        // Answers in 0.2 ms plus scheduling noise, so every stall of 5 to 30 ms hits the cap on one answer's growth; a
        // cap of 2 without the cost's 1 ms floor let one backend fall behind for seconds (max/min 1.8 to 3.1 over these seeds).
        var counts = Simulate(5, 16, slowFactor: 1, requests: 100_000, seed: seed, baseLatencyMs: 0.2, warmupRequests: 100_000);

        Assert.True(counts.Max() / (double)counts.Min() <= 1.1, string.Join(", ", counts));
    }

    [Fact]
    public void Pick_EqualSubMillisecondBackendsWithTheOldGrowthCap_DriftApart()
    {
        // The same simulation with one answer allowed to double the estimate: the drift the cap of 1.25 removes.
        var counts = Simulate(5, 16, slowFactor: 1, requests: 100_000, seed: 6, baseLatencyMs: 0.2, warmupRequests: 100_000, peakGrowth: 2);

        Assert.True(counts.Max() / (double)counts.Min() > 1.2, string.Join(", ", counts));
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
        var linkerd = Simulate(5, 20, 1, requests: 60_000, seed: 3, peakWeight: 1, peakGrowth: double.PositiveInfinity, sampleWeight: 0, bias: 1, stallOnce: true,
            probe: false);

        Assert.InRange(lodestar[0] / (double)lodestar.Sum(), 0.18, 0.22);
        Assert.True(linkerd[0] / (double)linkerd.Sum() < 0.05, $"linkerd {linkerd[0] / (double)linkerd.Sum():P2}");
    }

    [Fact]
    public void Pick_FirstAnswerOfOneSubMillisecondBackendSlow_BackendGetsItsShareBackAfterAProbe()
    {
        // Backends answering in about half a millisecond; every request sent to backend 0 in the first 100 ms takes
        // 100 ms (connections being opened, a cold server). Its estimate starts 200 times the others': without probing it decays back into
        // contention only after decay × ln(200), about 53 s, with no answer to correct it. With probing it is tried again
        // once its estimate has had no answer for a second, and the fast answer replaces the estimate. Counted from the
        // third simulated second on (the first 100,000 answers, about three seconds at 16 callers, are the warm-up).
        var probed = Simulate(5, 16, 1, requests: 100_000, seed: 5, baseLatencyMs: 0.2, firstAnswerMs: 100, warmupRequests: 100_000);
        var unprobed = Simulate(5, 16, 1, requests: 100_000, seed: 5, baseLatencyMs: 0.2, firstAnswerMs: 100, warmupRequests: 100_000, probe: false);

        Assert.True(probed.Max() / (double)probed.Min() <= 1.1, $"probed: {string.Join(", ", probed)}");
        Assert.True(unprobed[0] / (double)unprobed.Sum() < 0.01, $"unprobed: {string.Join(", ", unprobed)}");
    }

    internal static long[] Simulate(int backends, int callers, double slowFactor, int requests, int seed, double? peakWeight = null, double? peakGrowth = null, double? sampleWeight = null,
        double bias = PeakEwmaPolicy.ActiveRequestBias, bool stallOnce = false, bool probe = true, double baseLatencyMs = 5.0, double? firstAnswerMs = null,
        int? warmupRequests = null)
    {
        var clock = new FakeTimeProvider();
        var defaults = new EndpointTracking(clock, LoadBalancingOptions.DefaultPeakEwmaDecay, TimeSpan.FromSeconds(1));
        var tracking = new EndpointTracking(clock, LoadBalancingOptions.DefaultPeakEwmaDecay, TimeSpan.FromSeconds(1), EndpointStatistics.Latency)
        {
            PeakWeight = peakWeight ?? defaults.PeakWeight,
            PeakGrowth = peakGrowth ?? defaults.PeakGrowth,
            SampleWeight = sampleWeight ?? defaults.SampleWeight,
            StaleAfterTicks = probe ? defaults.StaleAfterTicks : long.MaxValue,
        };
        var states = Enumerable.Range(0, backends).Select(i => new EndpointState(Endpoint(i), 0, tracking)).ToArray();
        var picker = new PeakEwmaPolicy.PeakEwmaPicker(states, new SeededRandom(seed), clock, 0.030, 2, bias);
        var noise = new Random(seed + 1000);
        var counts = new long[backends];
        var baseMs = Enumerable.Repeat(baseLatencyMs, backends).ToArray();
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

            if (firstAnswerMs is { } first && i == 0 && now < (long)(first * TimeSpan.TicksPerMillisecond))
            {
                // A cold backend: every request sent to it in its first moments waits that long.
                var slow = (long)(first * TimeSpan.TicksPerMillisecond);
                queue.Enqueue((state, i, slow), now + slow);
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

        var warmup = warmupRequests ?? requests / 10;
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
