using Lodestar.Resilience.Admission;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Resilience;

public sealed class AdmissionTests
{
    [Fact]
    public async Task ConcurrencyLimit_SlotsTakenAndNoQueue_NextRequestFailsAtOnceNamingTheService()
    {
        // Arrange: two slots, no waiting; two requests hang.
        var handler = new ScriptedHandler(ScriptedHandler.Hang);
        await using var host = ResilienceTestHost.Create(o => o.ConcurrencyLimit.MaxConcurrentRequests = 2, new FakeTimeProvider(), handler);
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002");
        var client = host.CreateClient();
        using var cts = new CancellationTokenSource();
        var held = new[] { client.GetAsync("http://orders/a", cts.Token), client.GetAsync("http://orders/b", cts.Token) };
        await Eventually.TrueAsync(() => handler.Count == 2, TimeSpan.FromSeconds(5), "both slots are taken");

        // Act
        var rejected = await Assert.ThrowsAsync<ServiceOverloadedException>(() => client.GetAsync("http://orders/c"));
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.WhenAll(held).WaitAsync(TimeSpan.FromSeconds(5)));

        // Assert
        Assert.Equal("orders", rejected.ServiceName);
        Assert.Contains("'orders' already has 2 requests in flight", rejected.Message, StringComparison.Ordinal);
        Assert.Equal(2, handler.Count);
    }

    [Fact]
    public async Task ConcurrencyLimit_ServiceNamedOptionsAndNoClientLimit_ServiceLimitApplies()
    {
        // Arrange: the client sets no limit; the service's named options (as a control plane's cluster sets them) allow one.
        var handler = new ScriptedHandler(ScriptedHandler.Hang);
        await using var host = ResilienceTestHost.Create(timeProvider: new FakeTimeProvider(), primaryHandler: handler,
            services: s => s.Configure<ConcurrencyLimitOptions>("orders", o => o.MaxConcurrentRequests = 1));
        host.SetEndpoints("127.0.0.1:9001", "127.0.0.1:9002");
        var client = host.CreateClient();
        using var cts = new CancellationTokenSource();
        var held = client.GetAsync("http://orders/a", cts.Token);
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the slot is taken");

        // Act
        var rejected = await Assert.ThrowsAsync<ServiceOverloadedException>(() => client.GetAsync("http://orders/b", cts.Token).WaitAsync(TimeSpan.FromSeconds(10)));
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => held.WaitAsync(TimeSpan.FromSeconds(5)));

        // Assert
        Assert.Contains("'orders' already has 1 requests in flight and 0 waiting", rejected.Message, StringComparison.Ordinal);
        Assert.Equal(1, handler.Count);
    }

    [Fact]
    public async Task ConcurrencyLimit_QueueOfOne_WaitingRequestRunsWhenASlotFrees()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handler = new ScriptedHandler(async call =>
        {
            if (call.Number == 1)
            {
                await release.Task;
            }

            return new HttpResponseMessage(System.Net.HttpStatusCode.OK);
        });
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.ConcurrencyLimit.MaxConcurrentRequests = 1;
            o.ConcurrencyLimit.MaxPendingRequests = 1;
        }, new FakeTimeProvider(), handler);
        host.SetEndpoints("127.0.0.1:9001");
        var client = host.CreateClient();
        var first = client.GetAsync("http://orders/a");
        await Eventually.TrueAsync(() => handler.Count == 1, TimeSpan.FromSeconds(5), "the first request holds the slot");

        var waiting = client.GetAsync("http://orders/b");
        var overflow = await Assert.ThrowsAsync<ServiceOverloadedException>(() => client.GetAsync("http://orders/c"));
        var countWhileWaiting = handler.Count;
        release.SetResult();
        using var firstResponse = await first.WaitAsync(TimeSpan.FromSeconds(5));
        using var waitingResponse = await waiting.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.NotNull(overflow);
        Assert.Equal(1, countWhileWaiting);
        Assert.Equal(2, handler.Count);
    }
}
