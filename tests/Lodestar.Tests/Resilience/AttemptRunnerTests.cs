using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Resilience;

public sealed class AttemptRunnerTests
{
    [Fact]
    public async Task PerTryTimeout_OnTheClock_AttemptEndsAsTimeoutCountedAgainstTheEndpoint()
    {
        // Arrange: one attempt allowed; the endpoint never answers.
        var time = new FakeTimeProvider();
        var handler = new ScriptedHandler(ScriptedHandler.Hang);
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.MaxAttempts = 1;
            o.Retry.PerTryTimeout = TimeSpan.FromMilliseconds(250);
        }, time, handler);
        host.SetEndpoints("127.0.0.1:9001");
        var pending = host.CreateClient().GetAsync("http://orders/x");
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the attempt is sent");
        var state = (await host.FindStateAsync("127.0.0.1:9001"))!;
        var inFlight = state.InFlight;

        // Act
        time.Advance(TimeSpan.FromMilliseconds(249));
        var doneEarly = pending.IsCompleted;
        time.Advance(TimeSpan.FromMilliseconds(1));
        var error = await Assert.ThrowsAsync<TaskCanceledException>(() => pending.WaitAsync(TimeSpan.FromSeconds(5)));

        // Assert: a timeout (not the caller's cancellation), one failure on the endpoint's record, nothing in flight.
        Assert.Equal(1, inFlight);
        Assert.False(doneEarly);
        Assert.IsType<TimeoutException>(error.InnerException);
        Assert.Contains("per-try timeout", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, state.InFlight);
        Assert.Equal(1, state.Failures);
        Assert.Equal(TimeSpan.FromMilliseconds(250), state.LastLatency);
    }

    [Fact]
    public async Task Attempt_Response_SentToTheEndpointAndRecordedOnItsState()
    {
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(500));
        await using var host = ResilienceTestHost.Create(o => o.MaxAttempts = 1, primaryHandler: handler);
        host.SetEndpoints("127.0.0.1:9001");

        using var response = await host.CreateClient().GetAsync("http://orders/items?id=7");
        var state = (await host.FindStateAsync("127.0.0.1:9001"))!;

        Assert.Equal(500, (int)response.StatusCode);
        Assert.Equal("127.0.0.1:9001", handler.Calls.Single().Authority);
        Assert.Equal(1, state.Requests);
        Assert.Equal(1, state.Failures);
        Assert.Equal(1, state.ConsecutiveFailures);
        Assert.Equal(0, state.InFlight);
    }

    [Fact]
    public async Task Attempt_HandlerBelowReturnsNoResponse_AttemptFailsNamingTheEndpoint()
    {
        // The factory's logging handlers, which would read the missing response first, are removed: Lodestar's handler is
        // right above the transport.
        var handler = new ScriptedHandler(_ => Task.FromResult<HttpResponseMessage>(null!));
        await using var host = ResilienceTestHost.Create(o => o.MaxAttempts = 1, primaryHandler: handler,
            services: s => s.ConfigureHttpClientDefaults(b => b.RemoveAllLoggers()));
        host.SetEndpoints("127.0.0.1:9001");

        var error = await Record.ExceptionAsync(() => host.CreateClient().GetAsync("http://orders/items?id=7"));
        var state = (await host.FindStateAsync("127.0.0.1:9001"))!;

        Assert.NotNull(error);
        Assert.Contains("returned no response for the attempt to 127.0.0.1:9001", error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("NullReferenceException", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(1, state.Failures);
        Assert.Equal(0, state.InFlight);
    }
}
