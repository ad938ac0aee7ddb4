using System.Diagnostics;
using System.Diagnostics.Metrics;
using Lodestar.Resilience;
using Lodestar.Resilience.Hedging;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Resilience;

public sealed class HedgingTests
{
    private static ResilienceTestHost Host(FakeTimeProvider time, ScriptedHandler handler, Action<HedgingOptions>? configure = null)
    {
        var host = ResilienceTestHost.Create(o =>
        {
            o.Hedging.Enabled = true;
            o.Hedging.Delay = TimeSpan.FromMilliseconds(100);

            // Hedges fire whatever else the test run gives the thread pool to do (the skip is tested on the round).
            o.Hedging.SkipWhenThreadPoolBusy = false;
            configure?.Invoke(o.Hedging);
        }, time, handler);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003");
        return host;
    }

    /// <summary>Moves the clock a millisecond at a time until the hedge (the second call) is sent.</summary>
    private static Task AdvanceUntilTheHedgeIsSentAsync(FakeTimeProvider time, ScriptedHandler handler)
        => Eventually.TrueAdvancingAsync(time, TimeSpan.FromMilliseconds(1), () => handler.Count == 2, TimeSpan.FromSeconds(5), "the hedge is sent after the delay");

    [Fact]
    public async Task Hedging_FirstAttemptSlow_SecondEndpointWinsAndFirstIsCancelledOnceTheDelayPassesAgain()
    {
        // Arrange: the first attempt hangs until cancelled, the hedge answers at once.
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(call => call.Number == 1 ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = Host(time, handler);
        var client = host.CreateClient();

        // Act
        var pending = client.GetAsync("http://orders/x");
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the first attempt is sent");
        time.Advance(TimeSpan.FromMilliseconds(99));
        var hedgedEarly = handler.Count > 1;
        await AdvanceUntilTheHedgeIsSentAsync(time, handler);
        using var response = await pending.WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        var calls = handler.Calls.ToArray();
        Assert.False(hedgedEarly);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.NotEqual(calls[0].Authority, calls[1].Authority);
        time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.False(calls[0].Token.IsCancellationRequested, "the loser was cancelled before its grace (the delay) passed");
        time.Advance(TimeSpan.FromMilliseconds(1));
        await Eventually.TrueAsync(() => calls[0].Token.IsCancellationRequested, TimeSpan.FromSeconds(5), "the losing attempt is cancelled");
        var first = await host.FindStateAsync(calls[0].Authority);
        await Eventually.TrueAsync(() => first!.InFlight == 0, TimeSpan.FromSeconds(5), "the loser's in-flight count is released");
    }

    [Fact]
    public async Task Hedging_HedgeFires_BothAttemptSpansAreChildrenOfTheCallersSpan()
    {
        // Arrange: the caller's span around a request whose first attempt hangs and whose hedge answers at once.
        using var spans = new SpanRecorder("Lodestar.Tests.Caller");
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(call => call.Number == 1 ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = Host(time, handler);
        var client = host.CreateClient();
        using var caller = spans.Caller.StartActivity("caller")!;

        // Act: the hedge fires after the delay and wins; the loser is cancelled once the delay passes again.
        var pending = client.GetAsync("http://orders/x");
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the first attempt is sent");
        await AdvanceUntilTheHedgeIsSentAsync(time, handler);
        using var response = await pending.WaitAsync(TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromMilliseconds(100));
        await Eventually.TrueAsync(() => spans.InTraceOf(caller).Count == 2, TimeSpan.FromSeconds(5), "both attempt spans end");

        // Assert: the hedge is the caller's child, as the first attempt is, not the first attempt's.
        var attempts = spans.InTraceOf(caller).OrderBy(a => (int)a.GetTagItem("lodestar.attempt")!).ToList();
        Assert.All(attempts, a => Assert.Equal(caller.SpanId, a.ParentSpanId));
        Assert.Equal([1, 2], attempts.Select(a => (int)a.GetTagItem("lodestar.attempt")!));
        Assert.Equal("success", attempts[1].GetTagItem("lodestar.outcome"));
        Assert.Same(caller, Activity.Current);
    }

    [Fact]
    public async Task Hedging_LoserAnswersWithinTheGrace_NotCancelledAndItsResponseDisposed()
    {
        // Arrange: the first attempt answers only when the test says so; the hedge answers at once.
        var time = new FakeTimeProvider();
        var late = new TaskCompletionSource();
        var loserContent = new TrackedContent();
        var handler = new ScriptedHandler(async call =>
        {
            if (call.Number != 1)
            {
                return new HttpResponseMessage(System.Net.HttpStatusCode.OK);
            }

            await late.Task.WaitAsync(call.Token);
            return new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = loserContent };
        });
        await using var host = Host(time, handler);
        var pending = host.CreateClient().GetAsync("http://orders/x");
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the first attempt is sent");
        await AdvanceUntilTheHedgeIsSentAsync(time, handler);
        using var response = await pending.WaitAsync(TimeSpan.FromSeconds(5));
        var first = await host.FindStateAsync(handler.Calls.First().Authority);

        // Act: the loser answers 50 ms after the hedge won, within the 100 ms grace.
        time.Advance(TimeSpan.FromMilliseconds(50));
        late.SetResult();
        await Eventually.TrueAsync(() => loserContent.Disposed, TimeSpan.FromSeconds(5), "the loser's response is disposed");
        time.Advance(TimeSpan.FromMilliseconds(100));

        // Assert: never cancelled, and its attempt ended as an answer (in flight released).
        Assert.Equal(200, (int)response.StatusCode);
        Assert.False(handler.Calls.First().Token.IsCancellationRequested);
        await Eventually.TrueAsync(() => first!.InFlight == 0, TimeSpan.FromSeconds(5), "the loser's in-flight count is released");
    }

    [Fact]
    public async Task Hedging_FirstAnswersBeforeDelay_NoHedgeSent()
    {
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(200));
        await using var host = Host(time, handler);

        using var response = await host.CreateClient().GetAsync("http://orders/x").WaitAsync(TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(1, handler.Count);
    }

    [Fact]
    public async Task Hedging_FirstFailsWithRetryableStatus_HedgeSentAtOnceWithoutWaiting()
    {
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 503 : 200));
        await using var host = Host(time, handler);

        using var response = await host.CreateClient().GetAsync("http://orders/x").WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public async Task Hedging_PostRequest_NotHedged()
    {
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(call => call.Number == 1 ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = Host(time, handler);
        using var cts = new CancellationTokenSource();

        var pending = host.CreateClient().PostAsync("http://orders/x", new StringContent("order"), cts.Token);
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the attempt is sent");
        time.Advance(TimeSpan.FromSeconds(1));
        var count = handler.Count;
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(1, count);
    }

    [Fact]
    public async Task Hedging_AllAttemptsHang_CallerCancellationEndsEveryAttempt()
    {
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(ScriptedHandler.Hang);
        await using var host = Host(time, handler, h => h.MaxHedgedAttempts = 2);
        using var cts = new CancellationTokenSource();

        var pending = host.CreateClient().GetAsync("http://orders/x", cts.Token);
        await Eventually.TrueAdvancingAsync(time, TimeSpan.FromMilliseconds(10), () => handler.Count == 3, TimeSpan.FromSeconds(5), "two hedges are sent");
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.All(handler.Calls, c => Assert.True(c.Token.IsCancellationRequested));
        Assert.Equal(3, handler.Calls.Select(c => c.Authority).Distinct().Count());
    }

    [Fact]
    public async Task Hedging_SubMillisecondDelay_HedgeWaitsAtLeastTheDelayAndAtMostAMillisecond()
    {
        // Arrange: a 500 µs delay, which Task.Delay alone would not wait at all.
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(call => call.Number == 1 ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = Host(time, handler, h => h.Delay = TimeSpan.FromTicks(5_000));

        // Act
        var pending = host.CreateClient().GetAsync("http://orders/x");
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the first attempt is sent");
        await Task.Yield();
        var hedgedAtOnce = handler.Count > 1;
        time.Advance(TimeSpan.FromTicks(5_000));
        var hedgedBeforeTheTimer = handler.Count > 1;
        time.Advance(TimeSpan.FromTicks(5_000));
        await Eventually.TrueAsync(() => handler.Count == 2, TimeSpan.FromSeconds(5), "the hedge is sent within a millisecond");
        using var response = await pending.WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(hedgedAtOnce);
        Assert.False(hedgedBeforeTheTimer);
        Assert.Equal(200, (int)response.StatusCode);
    }

    [Fact]
    public async Task Hedging_ZeroDelay_HedgeSentWithoutWaitingForTheClock()
    {
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(call => call.Number == 1 ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = Host(time, handler, h => h.Delay = TimeSpan.Zero);

        using var response = await host.CreateClient().GetAsync("http://orders/x").WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public async Task Hedging_HeaderAddedWhileTheFirstAttemptRuns_HedgeCarriesIt_SoTheRequestIsClonedOnlyWhenTheHedgeFires()
    {
        // Arrange: the transport adds a header to the first attempt's request as it starts (as DiagnosticsHandler
        // adds traceparent); a clone made before that would lack it.
        var time = new FakeTimeProvider();
        var transport = new HeaderAddingHandler();
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.Hedging.Enabled = true;
            o.Hedging.Delay = TimeSpan.FromMilliseconds(100);
            o.Hedging.SkipWhenThreadPoolBusy = false;
        }, time, transport);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002");
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://orders/x");
        request.Headers.Add("X-Caller", "kept");

        // Act
        var pending = host.CreateClient().SendAsync(request);
        await Eventually.TrueAsync(() => transport.Requests.Count == 1, TimeSpan.FromSeconds(5), "the first attempt is sent");

        // A millisecond at a time: the first attempt is sent before the request arms its delay, so one step of the whole
        // delay taken between the two would never reach the deadline.
        await Eventually.TrueAdvancingAsync(time, TimeSpan.FromMilliseconds(1), () => transport.Requests.Count == 2, TimeSpan.FromSeconds(5), "the hedge is sent after the delay");
        using var response = await pending.WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        var hedge = transport.Requests.Last();
        Assert.NotSame(request, hedge);
        Assert.Equal("first", hedge.Headers.GetValues("X-Added-On-Send").Single());
        Assert.Equal("kept", hedge.Headers.GetValues("X-Caller").Single());
        Assert.Equal(200, (int)response.StatusCode);
    }

    [Fact]
    public async Task Hedging_HedgesWin_PercentileKeepsTheFirstAttemptsLatencyInsteadOfFallingToTheHedges()
    {
        // Arrange: 100 requests whose first attempt takes 10 ms set the median to 10 ms.
        var time = new FakeTimeProvider();
        var slowFirst = false;
        var handler = new ScriptedHandler(call =>
        {
            // From the hedged phase on, odd calls are first attempts (each request makes exactly two).
            if (slowFirst && call.Number % 2 == 1)
            {
                return ScriptedHandler.Hang(call);
            }

            time.Advance(slowFirst ? TimeSpan.FromMilliseconds(1) : TimeSpan.FromMilliseconds(10));
            return ScriptedHandler.Status(200);
        });
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.Hedging.Enabled = true;
            o.Hedging.DelayPercentile = 0.5;
            o.Hedging.SkipWhenThreadPoolBusy = false;
            o.Retry.BudgetRatio = 1; // every request may hedge once
        }, time, handler);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003");
        var client = host.CreateClient();
        for (var i = 0; i < 100; i++)
        {
            using var primed = await client.GetAsync("http://orders/x").WaitAsync(TimeSpan.FromSeconds(5));
        }

        var tracker = (await host.GetResilienceAsync()).Latency!;
        var before = tracker.GetPercentile(TimeSpan.FromSeconds(1));

        // Act: 130 requests (enough for two recomputations) whose first attempt hangs and whose hedge answers in 1 ms.
        slowFirst = true;
        var calls = handler.Count;
        for (var i = 0; i < 130; i++)
        {
            var delay = tracker.GetPercentile(TimeSpan.FromSeconds(1));
            var pending = client.GetAsync("http://orders/x");
            await Eventually.TrueAsync(() => handler.Count == calls + 1, TimeSpan.FromSeconds(5), "the first attempt is sent");
            time.Advance(delay);
            using var response = await pending.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(200, (int)response.StatusCode);
            Assert.Equal(calls + 2, handler.Count);
            calls = handler.Count;
        }

        // Assert: the hedges' 1 ms never entered the estimate (it would be 1 ms); the losers count with the time they
        // ran (the delay plus the hedge's millisecond), so the median stays at or a little above the true 10 ms.
        var after = tracker.GetPercentile(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.FromMilliseconds(10), before);
        Assert.InRange(after, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(12));
    }

    /// <summary>An empty body that records whether it was disposed.</summary>
    private sealed class TrackedContent : HttpContent
    {
        private volatile bool _disposed;

        public bool Disposed => _disposed;

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => Task.CompletedTask;

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return true;
        }

        protected override void Dispose(bool disposing)
        {
            _disposed = true;
            base.Dispose(disposing);
        }
    }

    /// <summary>Adds a header to the first request it gets and holds it; answers 200 to the others.</summary>
    private sealed class HeaderAddingHandler : HttpMessageHandler
    {
        public System.Collections.Concurrent.ConcurrentQueue<HttpRequestMessage> Requests { get; } = new();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var first = Requests.IsEmpty;
            if (first)
            {
                request.Headers.Add("X-Added-On-Send", "first");
            }

            Requests.Enqueue(request);
            if (first)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }

            return new HttpResponseMessage(System.Net.HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task Hedging_SystemClockManyCallers_EveryHedgeFiresAndWinsOnceItsDelayPasses()
    {
        // Arrange: the system clock (deadlines on the process's hedging clock, rounds kept per thread); a first attempt
        // to 127.0.0.1:9001 hangs until cancelled, any other attempt answers at once. Round robin over three endpoints
        // sends a third of first attempts there.
        var handler = new ScriptedHandler(call => call.Authority == "127.0.0.1:9001" ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = ResilienceTestHost.Create(
            o =>
            {
                o.Policy = "round-robin";
                o.Hedging.Enabled = true;
                o.Hedging.Delay = TimeSpan.FromMilliseconds(1);

                // Many callers keep the pool's queue busy: every hedge is to fire all the same.
                o.Hedging.SkipWhenThreadPoolBusy = false;

                // A third of requests hedge: more than the default budget allows, and none of it is the endpoint's fault.
                o.Retry.BudgetRatio = 1;
                o.OutlierDetection.Enabled = false;
            },
            TimeProvider.System,
            handler);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003");
        var client = host.CreateClient();

        // Act: 8 callers, 30 requests each.
        var callers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            var statuses = new List<int>();
            for (var i = 0; i < 30; i++)
            {
                using var response = await client.GetAsync("http://orders/x");
                statuses.Add((int)response.StatusCode);
            }

            return statuses;
        })).ToArray();
        var answered = (await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(30))).SelectMany(s => s).ToArray();

        // Assert: every request answered; each one that went to the hanging endpoint first was hedged once, elsewhere.
        var calls = handler.Calls.ToArray();
        var hung = calls.Count(c => c.Authority == "127.0.0.1:9001");
        Assert.Equal(240, answered.Length);
        Assert.All(answered, status => Assert.Equal(200, status));
        Assert.InRange(hung, 1, 240);
        Assert.Equal(240 + hung, calls.Length);
        await Eventually.TrueAsync(() => calls.Where(c => c.Authority == "127.0.0.1:9001").All(c => c.Token.IsCancellationRequested), TimeSpan.FromSeconds(10), "every losing attempt is cancelled after its grace");
    }

    [Fact]
    public async Task Hedging_MaxHedgeRatio_HedgeBeyondTheShareNotSent()
    {
        // Arrange: at most half the requests may hedge. The first request is answered at once; the second and the
        // third hang on their first attempt, and any hedge is answered at once.
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(call => call.Number is 2 or 4 ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = Host(time, handler, h => h.MaxHedgeRatio = 0.5);
        var client = host.CreateClient();
        (await client.GetAsync("http://orders/x")).Dispose();

        // Act: the second request hedges (1 of 2 requests); the third would make 2 of 3.
        var second = client.GetAsync("http://orders/x");
        await Eventually.TrueAsync(() => handler.Count == 2, TimeSpan.FromSeconds(5), "the second request's first attempt is sent");
        await Eventually.TrueAdvancingAsync(time, TimeSpan.FromMilliseconds(1), () => handler.Count == 3, TimeSpan.FromSeconds(5), "the second request hedges");
        using var secondResponse = await second.WaitAsync(TimeSpan.FromSeconds(5));
        using var refusals = new MeterListener();
        var refused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var meters = host.Services.GetRequiredService<IMeterFactory>();
        refusals.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Name == "lodestar.client.retry_budget.exhausted" && ReferenceEquals(instrument.Meter.Scope, meters))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        refusals.SetMeasurementEventCallback<long>((_, _, _, _) => refused.TrySetResult());
        refusals.Start();
        using var caller = new CancellationTokenSource();
        var third = client.GetAsync("http://orders/x", caller.Token);
        await Eventually.TrueAsync(() => handler.Count == 4, TimeSpan.FromSeconds(5), "the third request's first attempt is sent");
        await Eventually.TrueAdvancingAsync(
            time, TimeSpan.FromMilliseconds(1), () => refused.Task.IsCompleted || handler.Count > 4, TimeSpan.FromSeconds(5), "the third request's hedge is refused or sent");
        Assert.False(handler.Count > 4, "a hedge was sent beyond the share");
        await caller.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => third.WaitAsync(TimeSpan.FromSeconds(5)));

        // Assert
        Assert.Equal(200, (int)secondResponse.StatusCode);
        Assert.True(refused.Task.IsCompleted);
        Assert.Equal(4, handler.Count);
    }
}
