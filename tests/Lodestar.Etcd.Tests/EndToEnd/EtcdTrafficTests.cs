using System.Diagnostics;
using Lodestar.Etcd.Registration.Internal;
using Lodestar.Etcd.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Lodestar.Etcd.Tests.EndToEnd;

/// <summary>Real Kestrel backends, a real etcd, and an HttpClient balancing over what etcd says.</summary>
public sealed class EtcdTrafficTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    private static EtcdHarness CreateClient(EtcdServer etcd)
        => EtcdHarness.Create(etcd, more: services => services.AddHttpClient("orders").AddLodestar(o => o.Source = "etcd"));

    private static async Task<string> GetAsync(HttpClient client)
    {
        using var response = await client.GetAsync("http://orders/");
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task KilledRegistrar_LeaseExpires_TrafficFollows()
    {
        // Arrange: two registered backends, traffic reaching both.
        await using var etcd = await EtcdServer.StartAsync();
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var registrant = EtcdHarness.Create(etcd);
        var handleA = (EtcdRegistrationHandle)await registrant.Registrar.RegisterAsync(EtcdHarness.Instance("orders", a.Port, "a", ttlSeconds: 2), default);
        await using var handleB = await registrant.Registrar.RegisterAsync(EtcdHarness.Instance("orders", b.Port, "b", ttlSeconds: 2), default);
        await using var client = CreateClient(etcd);
        var http = client.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        using var tracker = new SetTracker(client.Resolver, "orders");
        await Eventually.TrueAsync(() => tracker.Addresses.Count == 2, s_wait, "both registered");
        for (var i = 0; i < 10; i++)
        {
            await GetAsync(http);
        }

        Assert.True(a.Requests > 0 && b.Requests > 0);

        // Act: a's process "dies" (no more keep-alives, no revoke); its backend keeps answering, so only the registry
        // can move traffic away from it.
        var killedAt = Stopwatch.GetTimestamp();
        await handleA.AbandonAsync();
        await Eventually.TrueAsync(() => tracker.Addresses.Count == 1, s_wait, "a's lease expires");
        var gone = Stopwatch.GetElapsedTime(killedAt);
        var before = a.Requests;
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal("b", await GetAsync(http));
        }

        // Assert
        output.WriteLine($"a's key left the set {gone.TotalMilliseconds:0} ms after keep-alives stopped (TTL 2 s)");
        Assert.Equal(before, a.Requests);
        Assert.Null(await etcd.GetAsync("orders/a"));
    }

    [Fact]
    public async Task RemovedEndpoint_RequestSentWhileEarlierObserversAreTold_NeverReachesIt()
    {
        // Arrange: the application's own observer subscribes before the first request, so the watcher tells it of a
        // new set before it tells the balancer (created on that first request). The observer holds the watcher there.
        await using var etcd = await EtcdServer.StartAsync();
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await etcd.PutAsync("orders/a", $"{{\"Op\":0,\"Addr\":\"{a.Address}\",\"Metadata\":null}}");
        await etcd.PutAsync("orders/b", $"{{\"Op\":0,\"Addr\":\"{b.Address}\",\"Metadata\":null}}");
        await using var client = CreateClient(etcd);
        var http = client.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        var told = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var observer = client.Resolver.Watch("orders", "etcd", set =>
        {
            if (set.Count == 1 && told.TrySetResult())
            {
                release.Task.Wait(s_wait);
            }
        });
        for (var i = 0; i < 10; i++)
        {
            await GetAsync(http);
        }

        Assert.True(a.Requests > 0 && b.Requests > 0);
        var before = a.Requests;

        // Act: a leaves; requests go out while the watcher is still telling the observer, before the balancer's turn.
        await etcd.DeleteAsync("orders/a");
        await told.Task.WaitAsync(s_wait);
        var answers = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            answers.Add(await GetAsync(http));
        }

        release.SetResult();

        // Assert: every one went to b.
        Assert.All(answers, answer => Assert.Equal("b", answer));
        Assert.Equal(before, a.Requests);
    }

    [Fact]
    public async Task ReactionTime_PutToFirstRequest_EveryRoundFollowsAndIsReported()
    {
        // Arrange: traffic flows to a; b's key is written and deleted repeatedly.
        const int Rounds = 20;
        await using var etcd = await EtcdServer.StartAsync();
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await etcd.PutAsync("orders/a", $"{{\"Op\":0,\"Addr\":\"{a.Address}\",\"Metadata\":null}}");
        await using var client = CreateClient(etcd);
        var http = client.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        using var tracker = new SetTracker(client.Resolver, "orders");
        Assert.Equal("a", await GetAsync(http));
        var samples = new List<double>();

        // Act
        for (var round = 0; round < Rounds; round++)
        {
            var put = Stopwatch.GetTimestamp();
            await etcd.PutAsync("orders/b", $"{{\"Op\":0,\"Addr\":\"{b.Address}\",\"Metadata\":null}}");
            var followed = false;
            for (var request = 0; request < 100_000 && Stopwatch.GetElapsedTime(put) < s_wait; request++)
            {
                if (await GetAsync(http) == "b")
                {
                    followed = true;
                    break;
                }
            }

            Assert.True(followed, "no request reached b");
            samples.Add(Stopwatch.GetElapsedTime(put).TotalMilliseconds);
            await etcd.DeleteAsync("orders/b");
            await Eventually.TrueAsync(() => tracker.Addresses.Count == 1, s_wait, "b removed");
        }

        // Assert
        samples.Sort();
        var median = samples[samples.Count / 2];
        var p90 = samples[(int)Math.Ceiling(samples.Count * 0.9) - 1];
        output.WriteLine($"put -> first request served by the new instance, {Rounds} rounds: median {median:0.0} ms, p90 {p90:0.0} ms, max {samples[^1]:0.0} ms, min {samples[0]:0.0} ms");
        Assert.Equal(Rounds, samples.Count);
    }
}
