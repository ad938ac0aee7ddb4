using System.Net;
using System.Net.Sockets;
using Lodestar.Http;
using Lodestar.Internal;
using Lodestar.Resilience;
using Lodestar.Resilience.Admission;
using Lodestar.Resilience.Retry.Internal;
using Lodestar.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Resilience;

public sealed class RetryTests
{
    private static async Task<ResilienceTestHost> HostAsync(ScriptedHandler handler, Action<LodestarClientOptions>? configure = null)
    {
        var host = ResilienceTestHost.Create(o =>
        {
            o.Retry.BackoffBase = TimeSpan.FromMilliseconds(1);
            o.Retry.BackoffMax = TimeSpan.FromMilliseconds(5);
            configure?.Invoke(o);
        }, primaryHandler: handler);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003");
        await host.GetBalancerAsync();
        return host;
    }

    /// <summary>A host on the recording clock with a random draw of 0.5, warmed up, with no timer left unread.</summary>
    private static async Task<ResilienceTestHost> ScheduledHostAsync(RecordingTimeProvider time, ScriptedHandler handler, Action<LodestarClientOptions> configure, int endpoints = 3)
    {
        var host = ResilienceTestHost.Create(o =>
        {
            o.OutlierDetection.Enabled = false;
            configure(o);
        }, time, handler, services: s => s.AddSingleton<RandomSource>(new HalfRandom()));
        host.SetEndpoints(Enumerable.Range(1, endpoints).Select(i => $"127.0.0.1:{9000 + i}").ToArray());
        await host.GetBalancerAsync();
        while (time.HasUnreadTimer)
        {
            await time.NextTimerAsync();
        }

        return host;
    }

    private static HttpRequestException ConnectRefused()
        => new(HttpRequestError.ConnectionError, "Connection refused", new SocketException((int)SocketError.ConnectionRefused));

    [Fact]
    public async Task Retry_503OnGet_RetriedOnAnotherEndpoint()
    {
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 503 : 200));
        await using var host = await HostAsync(handler);

        using var response = await host.CreateClient().GetAsync("http://orders/x");

        var calls = handler.Calls.ToArray();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, calls.Length);
        Assert.NotEqual(calls[0].Authority, calls[1].Authority);
    }

    [Fact]
    public async Task Retry_EveryEndpointReturns503_LastResponseReturnedAfterMaxAttempts()
    {
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(503));
        await using var host = await HostAsync(handler, o => o.MaxAttempts = 3);

        using var response = await host.CreateClient().GetAsync("http://orders/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(3, handler.Calls.Select(c => c.Authority).Distinct().Count());
    }

    [Fact]
    public async Task Retry_ClientOptionsChangeAtRunTime_TheClientAlreadyMadeFollowsThem()
    {
        // Arrange: the client's options follow its configuration section through a change token, as a user's
        // IOptionsChangeTokenSource would make them; one attempt per request to begin with.
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(503));
        await using var host = ResilienceTestHost.Create(
            services: s => s.AddSingleton<IOptionsChangeTokenSource<LodestarClientOptions>>(sp =>
                new ConfigurationChangeTokenSource<LodestarClientOptions>("test", sp.GetRequiredService<IConfiguration>())),
            primaryHandler: handler,
            settings: [new("Lodestar:Clients:test:MaxAttempts", "1"), new("Lodestar:Clients:test:Retry:BackoffBase", "00:00:00.001")]);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003");
        await host.GetBalancerAsync();
        var client = host.CreateClient();
        using (await client.GetAsync("http://orders/x"))
        {
        }

        var before = handler.Count;

        // Act: the section now allows three attempts; the same client (and handler) sends the next request.
        host.Configuration.Replace([
            new("Lodestar:Clients:test:MaxAttempts", "3"), new("Lodestar:Clients:test:Retry:BackoffBase", "00:00:00.001"),
            new("Lodestar:Services:orders:Endpoints:0", "127.0.0.1:9001"), new("Lodestar:Services:orders:Endpoints:1", "127.0.0.1:9002"),
            new("Lodestar:Services:orders:Endpoints:2", "127.0.0.1:9003")]);
        using var response = await client.GetAsync("http://orders/x");

        // Assert
        Assert.Equal(1, before);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(4, handler.Count);
    }

    [Fact]
    public async Task Retry_503OnPost_NotRetried()
    {
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(503));
        await using var host = await HostAsync(handler);

        using var response = await host.CreateClient().PostAsync("http://orders/x", new StringContent("order"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, handler.Count);
    }

    [Fact]
    public async Task Retry_PostOptedInPerRequest_RetriedWithSameBody()
    {
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 503 : 200));
        await using var host = await HostAsync(handler);
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://orders/x") { Content = new StringContent("order-42") };
        request.Options.Set(LodestarRequestOptions.AllowRetries, true);

        using var response = await host.CreateClient().SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.All(handler.Calls, c => Assert.Equal("order-42", c.Body));
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public async Task Retry_StreamedBodyWithinLimit_BufferedAndSentAgain()
    {
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 502 : 200));
        await using var host = await HostAsync(handler, o => o.Retry.RetryNonIdempotent = true);
        var bytes = "streamed-body"u8.ToArray();
        using var content = new StreamContent(new MemoryStream(bytes));
        content.Headers.ContentLength = bytes.Length;

        using var response = await host.CreateClient().PostAsync("http://orders/x", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.All(handler.Calls, c => Assert.Equal("streamed-body", c.Body));
    }

    [Fact]
    public async Task Retry_StreamedBodyOverLimit_SentOnce()
    {
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(503));
        await using var host = await HostAsync(handler, o =>
        {
            o.Retry.RetryNonIdempotent = true;
            o.Retry.MaxBufferedBodyBytes = 4;
        });
        using var content = new StreamContent(new MemoryStream(new byte[16]));
        content.Headers.ContentLength = 16;

        using var response = await host.CreateClient().PutAsync("http://orders/x", content);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, handler.Count);
    }

    [Fact]
    public async Task Retry_ConnectRefusedOnPost_RetriedElsewhere()
    {
        var handler = new ScriptedHandler(call => call.Number == 1 ? Task.FromException<HttpResponseMessage>(ConnectRefused()) : ScriptedHandler.Status(200));
        await using var host = await HostAsync(handler);

        using var response = await host.CreateClient().PostAsync("http://orders/x", new StringContent("order"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public async Task Retry_ConnectionLostOnPost_NotRetried()
    {
        var handler = new ScriptedHandler(_ => Task.FromException<HttpResponseMessage>(new HttpRequestException(HttpRequestError.ResponseEnded, "reset", new IOException("reset"))));
        await using var host = await HostAsync(handler);

        await Assert.ThrowsAsync<HttpRequestException>(() => host.CreateClient().PostAsync("http://orders/x", new StringContent("order")));

        Assert.Equal(1, handler.Count);
    }

    [Fact]
    public async Task Retry_RetryAfterWithinLimit_WaitsExactlyThatLongOnTheClock()
    {
        // Arrange
        var time = new RecordingTimeProvider();
        var handler = new ScriptedHandler(call =>
        {
            var response = new HttpResponseMessage(call.Number == 1 ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.OK);
            response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromMilliseconds(300));
            return Task.FromResult(response);
        });
        await using var host = await ScheduledHostAsync(time, handler, o => o.MaxAttempts = 2);

        // Act
        var pending = host.CreateClient().GetAsync("http://orders/x");
        var due = await time.NextFiniteTimerAsync();
        var callsWhileWaiting = handler.Count;
        time.Advance(due);
        using var response = await pending.WaitAsync(TimeSpan.FromSeconds(10));

        // Assert
        Assert.Equal(TimeSpan.FromMilliseconds(300), due);
        Assert.Equal(1, callsWhileWaiting);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public async Task Retry_Backoff_ExactJitteredExponentialScheduleOnTheClock()
    {
        // Arrange: base 100 ms, cap 300 ms, and a random draw of 0.5 every time: 50, 100, then 150 ms (capped).
        var time = new RecordingTimeProvider();
        var handler = new ScriptedHandler(_ => ScriptedHandler.Status(503));
        await using var host = await ScheduledHostAsync(time, handler, o =>
        {
            o.MaxAttempts = 4;
            o.Retry.BackoffBase = TimeSpan.FromMilliseconds(100);
            o.Retry.BackoffMax = TimeSpan.FromMilliseconds(300);
        }, endpoints: 4);

        // Act
        var pending = host.CreateClient().GetAsync("http://orders/x");
        var schedule = new List<TimeSpan>();
        for (var i = 0; i < 3; i++)
        {
            var due = await time.NextFiniteTimerAsync();
            schedule.Add(due);
            time.Advance(due);
        }

        using var response = await pending.WaitAsync(TimeSpan.FromSeconds(10));

        // Assert
        Assert.Equal([TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(150)], schedule);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(4, handler.Calls.Select(c => c.Authority).Distinct().Count());
    }

    [Fact]
    public async Task Retry_EveryEndpointRefuses_ErrorNamesServiceAttemptsAndEachAddress()
    {
        var handler = new ScriptedHandler(_ => Task.FromException<HttpResponseMessage>(ConnectRefused()));
        await using var host = await HostAsync(handler);

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => host.CreateClient().GetAsync("http://orders/x"));

        Assert.Equal(HttpRequestError.ConnectionError, error.HttpRequestError);
        Assert.StartsWith("All 3 attempts to service 'orders' failed: ", error.Message, StringComparison.Ordinal);
        foreach (var address in new[] { "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003" })
        {
            Assert.Contains(address + " connect_failure (Connection refused)", error.Message, StringComparison.Ordinal);
        }

        Assert.IsType<HttpRequestException>(error.InnerException);
    }

    [Fact]
    public async Task Retry_ManyFailedAttempts_MessageListsFiveAndCountsTheRest()
    {
        var handler = new ScriptedHandler(_ => Task.FromException<HttpResponseMessage>(ConnectRefused()));
        await using var host = ResilienceTestHost.Create(o => o.MaxAttempts = 8, primaryHandler: handler);
        host.SetEndpoints(Enumerable.Range(1, 8).Select(i => $"127.0.0.1:{9000 + i}").ToArray());

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => host.CreateClient().GetAsync("http://orders/x"));

        Assert.Equal(8, handler.Count);
        Assert.Equal(5, error.Message.Split("connect_failure").Length - 1);
        Assert.EndsWith("; and 3 more.", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retry_EndpointsRunOut_NoEndpointsErrorListsEachFailure()
    {
        var handler = new ScriptedHandler(_ => Task.FromException<HttpResponseMessage>(ConnectRefused()));
        await using var host = ResilienceTestHost.Create(o => o.MaxAttempts = 5, primaryHandler: handler);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002");

        var error = await Assert.ThrowsAsync<NoEndpointsException>(() => host.CreateClient().GetAsync("http://orders/x"));

        Assert.Equal("orders", error.ServiceName);
        Assert.StartsWith("Service 'orders' has no endpoint left to try after 2 failed attempt(s): ", error.Message, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:9001 connect_failure", error.Message, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:9002 connect_failure", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retry_RetryAfterBeyondLimit_ResponseReturnedWithoutRetry()
    {
        var handler = new ScriptedHandler(_ =>
        {
            var response = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
            response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromMinutes(2));
            return Task.FromResult(response);
        });
        await using var host = await HostAsync(handler);

        using var response = await host.CreateClient().GetAsync("http://orders/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, handler.Count);
    }

    [Fact]
    public async Task Retry_PerTryTimeout_AbandonedAttemptRetriedElsewhere()
    {
        var handler = new ScriptedHandler(call => call.Number == 1 ? ScriptedHandler.Hang(call) : ScriptedHandler.Status(200));
        await using var host = await HostAsync(handler, o => o.Retry.PerTryTimeout = TimeSpan.FromMilliseconds(200));

        using var response = await host.CreateClient().GetAsync("http://orders/x").WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(handler.Calls.First().Token.IsCancellationRequested);
    }

    [Fact]
    public async Task Retry_OverallDeadlinePasses_FailsWithTimeoutDuringTheThirdAttempt()
    {
        // Arrange: attempts time out after 150 ms, the request after 400 ms; backoffs are 0.5 ms (waited as 1 ms, the
        // timers' granularity, rather than not at all) and 1 ms.
        var time = new RecordingTimeProvider();
        var handler = new ScriptedHandler(ScriptedHandler.Hang);
        await using var host = await ScheduledHostAsync(time, handler, o =>
        {
            o.MaxAttempts = 3;
            o.Retry.BackoffBase = TimeSpan.FromMilliseconds(1);
            o.Retry.BackoffMax = TimeSpan.FromMilliseconds(5);
            o.Retry.PerTryTimeout = TimeSpan.FromMilliseconds(150);
            o.Retry.Timeout = TimeSpan.FromMilliseconds(400);
        });

        // Act: move the clock from timer to timer; every timer that fires arms the next one, until the deadline.
        var pending = host.CreateClient().GetAsync("http://orders/x");
        var now = TimeSpan.Zero;
        var due = new List<TimeSpan>();
        var fired = new List<TimeSpan>();
        for (var step = 0; step < 20 && !pending.IsCompleted; step++)
        {
            await Eventually.TrueAsync(() => time.HasUnreadTimer || pending.IsCompleted, TimeSpan.FromSeconds(10), "the pipeline arms its next timer");
            while (time.HasUnreadTimer)
            {
                due.Add(now + await time.NextTimerAsync());
            }

            if (pending.IsCompleted)
            {
                break;
            }

            var next = due.Min();
            due.Remove(next);
            time.Advance(next - now);
            now = next;
            fired.Add(now);
        }

        var error = await Assert.ThrowsAsync<TaskCanceledException>(() => pending.WaitAsync(TimeSpan.FromSeconds(10)));

        // Assert
        Assert.Equal([150, 151, 301, 302, 400], fired.Select(t => t.TotalMilliseconds));
        Assert.Equal(3, handler.Count);
        Assert.IsType<TimeoutException>(error.InnerException);
        Assert.Contains("deadline of 400 ms", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Retry_CustomStatusCodes_500RetriedAnd503Not()
    {
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 500 : 503));
        await using var host = await HostAsync(handler, o => o.Retry.RetryOnStatusCodes = [500]);

        using var response = await host.CreateClient().GetAsync("http://orders/x");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public async Task Retry_MaxConcurrentRetriesOneWithARetryInFlight_NextFailureIsNotRetriedUntilItEnds()
    {
        // Arrange: calls 1 and 3 answer 503; call 2 (the first request's retry) waits for the test; later calls answer 200.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new ScriptedHandler(async call =>
        {
            switch (call.Number)
            {
                case 1 or 3 or 4:
                    return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
                case 2:
                    await release.Task.WaitAsync(call.Token);
                    return new HttpResponseMessage(HttpStatusCode.OK);
                default:
                    return new HttpResponseMessage(HttpStatusCode.OK);
            }
        });
        await using var host = await HostAsync(handler, o => o.ConcurrencyLimit.MaxConcurrentRetries = 1);
        var client = host.CreateClient();
        var first = client.GetAsync("http://orders/a");
        await Eventually.TrueAsync(() => handler.Count == 2, TimeSpan.FromSeconds(5), "the first request's retry is in flight");

        // Act: the second request fails while the only retry slot is taken.
        using var second = await client.GetAsync("http://orders/b");
        release.SetResult();
        using var firstResponse = await first;
        using var third = await client.GetAsync("http://orders/c");

        // Assert: the second request ended with its own 503 after one attempt; once the slot was free, the third was retried.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        Assert.Equal(HttpStatusCode.OK, firstResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Equal(5, handler.Count);
    }

    [Fact]
    public async Task Retry_ServiceMaxConcurrentRetriesZero_FailureIsNotRetried()
    {
        // Arrange: the client sets no cap; the service's named options (as an xDS cluster's max_retries) allow none.
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 503 : 200));
        await using var host = ResilienceTestHost.Create(o => o.Retry.BackoffBase = TimeSpan.FromMilliseconds(1), primaryHandler: handler,
            services: s => s.Configure<ConcurrencyLimitOptions>("orders", o => o.MaxConcurrentRetries = 0));
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002");

        // Act
        using var response = await host.CreateClient().GetAsync("http://orders/x");

        // Assert
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, handler.Count);
    }

    [Fact]
    public async Task Retry_ClientMaxConcurrentRetriesWinsOverTheServices_FailureIsRetried()
    {
        // Arrange: the service allows no retry, the client allows one.
        var handler = new ScriptedHandler(call => ScriptedHandler.Status(call.Number == 1 ? 503 : 200));
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.Retry.BackoffBase = TimeSpan.FromMilliseconds(1);
            o.ConcurrencyLimit.MaxConcurrentRetries = 1;
        }, primaryHandler: handler, services: s => s.Configure<ConcurrencyLimitOptions>("orders", o => o.MaxConcurrentRetries = 0));
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002");

        // Act
        using var response = await host.CreateClient().GetAsync("http://orders/x");

        // Assert
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public void RetryBudget_NoTraffic_OnlyTheMinimumIsAllowed()
    {
        var time = new FakeTimeProvider();
        var budget = new RetryBudget(time, TimeSpan.FromSeconds(10), 0.2, minRetriesPerSecond: 3);

        var allowed = Enumerable.Range(0, 100).Count(_ => budget.TryWithdraw());

        Assert.Equal(30, allowed);
    }

    [Fact]
    public void RetryBudget_Requests_EarnTheirRatio()
    {
        var time = new FakeTimeProvider();
        var budget = BudgetAfterRequests(time, 0.2, minRetriesPerSecond: 0, requests: 100);

        var allowed = Enumerable.Range(0, 100).Count(_ => budget.TryWithdraw());

        Assert.Equal(20, allowed);
    }

    [Fact]
    public void RetryBudget_WindowSlides_OldRequestsAndRetriesExpire()
    {
        var time = new FakeTimeProvider();
        var budget = BudgetAfterRequests(time, 0.5, minRetriesPerSecond: 0, requests: 10);

        Assert.Equal(5, Enumerable.Range(0, 10).Count(_ => budget.TryWithdraw()));
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.False(budget.TryWithdraw());
        budget.OnRequest();
        budget.OnRequest();
        Assert.True(budget.TryWithdraw());
        Assert.False(budget.TryWithdraw());
    }

    [Fact]
    public void RetryBudget_HedgeRatio_HedgesStayWithinTheirShareWhileRetriesKeepTheRest()
    {
        // Arrange: 100 requests earn 20 retries and a reserve of 30; hedges may take 5 % of the requests.
        var time = new FakeTimeProvider();
        var budget = BudgetAfterRequests(time, 0.2, minRetriesPerSecond: 3, requests: 100);

        // Act
        var hedges = Enumerable.Range(0, 20).Count(_ => budget.TryWithdraw(hedgeRatio: 0.05));
        var retries = Enumerable.Range(0, 100).Count(_ => budget.TryWithdraw());
        time.Advance(TimeSpan.FromSeconds(11));
        budget.OnRequest();
        var hedgeOnOneRequest = budget.TryWithdraw(hedgeRatio: 0.05);

        // Assert: the share holds without the reserve; the hedges also spent retries; a new window starts afresh.
        Assert.Equal(5, hedges);
        Assert.Equal(50 - 5, retries);
        Assert.False(hedgeOnOneRequest);
    }

    [Fact]
    public void RetryBudget_RequestStampedBeforeItsBucketMovedOn_CountsInTheNewerPeriodWithoutWipingIt()
    {
        // Arrange: a request stamped in the first second (as the handler stamps a request's start), the clock then
        // ten and a half seconds on and two requests counted there: the first second's bucket now holds the eleventh.
        var time = new FakeTimeProvider();
        var budget = new RetryBudget(time, TimeSpan.FromSeconds(10), 0.5, minRetriesPerSecond: 0);
        var stamped = time.GetTimestamp();
        budget.OnRequest(stamped);
        Assert.False(budget.TryWithdraw());
        budget.OnRequest(stamped);
        Assert.True(budget.TryWithdraw());
        time.Advance(TimeSpan.FromSeconds(10.5));
        budget.OnRequest();
        budget.OnRequest();

        // Act: a request stamped back in the first second is counted only now.
        budget.OnRequest(stamped);

        // Assert: three requests in the window (1.5 retries), none of the two lost to a reset of their bucket.
        Assert.True(budget.TryWithdraw());
        Assert.False(budget.TryWithdraw());
    }

    [Fact]
    public async Task RetryBudget_RequestsFromThreadsAtOnce_EveryOneEarnsItsShare()
    {
        // Arrange: a 10 % budget with no minimum, and 4,000 requests counted from eight threads at once, which spread
        // them over the count's cells (one per processor).
        var time = new FakeTimeProvider();
        var budget = new RetryBudget(time, TimeSpan.FromSeconds(10), 0.1, minRetriesPerSecond: 0);
        await AtOnce.RunAsync(8, () =>
        {
            for (var i = 0; i < 500; i++)
            {
                budget.OnRequest();
            }
        });

        // Act: take retries until the budget refuses.
        var retries = 0;
        while (retries <= 4_000 && budget.TryWithdraw())
        {
            retries++;
        }

        // Assert: exactly a tenth of the requests, none of them lost between the cells.
        Assert.Equal(400, retries);
    }

    /// <summary>A budget over a 10 s window that has seen <paramref name="requests"/> requests.</summary>
    private static RetryBudget BudgetAfterRequests(FakeTimeProvider time, double ratio, int minRetriesPerSecond, int requests)
    {
        var budget = new RetryBudget(time, TimeSpan.FromSeconds(10), ratio, minRetriesPerSecond);
        for (var i = 0; i < requests; i++)
        {
            budget.OnRequest();
        }

        return budget;
    }

    private sealed class HalfRandom : RandomSource
    {
        public override int Next(int maxExclusive) => maxExclusive / 2;

        public override double NextDouble() => 0.5;
    }
}
