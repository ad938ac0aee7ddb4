using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Lodestar.Grpc.Tests.EndToEnd;

/// <summary>
/// Every instance of three is replaced by a new one on a new port, one at a time, while about 200 unary calls a second
/// run through the channel: the registry lists the new instance instead of the old one, and the old one stops
/// gracefully once the new one takes calls. No call may fail.
/// </summary>
public sealed class RollingRestartTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);

    /// <summary>When the old instance stops, relative to the registry change.</summary>
    public enum StopOrder
    {
        /// <summary>Once the new instance answers calls (a drain period).</summary>
        AfterDrain,

        /// <summary>Right after the registry lists the new set (calls to the old one may still be on their way).</summary>
        RightAway,

        /// <summary>Before the registry changes (the registry learns late; the old instance refuses connections meanwhile).</summary>
        BeforeRegistry,
    }

    [Theory]
    [InlineData(LodestarGrpcPolicies.LeastRequest, StopOrder.AfterDrain)]
    [InlineData(LodestarGrpcPolicies.RoundRobin, StopOrder.AfterDrain)]
    [InlineData(LodestarGrpcPolicies.PeakEwma, StopOrder.AfterDrain)]
    [InlineData(LodestarGrpcPolicies.LeastRequest, StopOrder.RightAway)]
    [InlineData(LodestarGrpcPolicies.RoundRobin, StopOrder.RightAway)]
    [InlineData(LodestarGrpcPolicies.LeastRequest, StopOrder.BeforeRegistry)]
    [InlineData(LodestarGrpcPolicies.RoundRobin, StopOrder.BeforeRegistry)]
    public async Task RollingRestart_ConfigurationSource_NoCallFails(string balancer, StopOrder order)
    {
        // Arrange: a short peak-EWMA decay, as in the balancer tests: a new instance's first answers on a busy machine can
        // be slow, and a peak-sensitive estimate would keep it out of the load for the default decay's many seconds.
        await using var host = await GrpcTestHost.StartAsync(3, settings: [new("Lodestar:LoadBalancing:Services:echo:PeakEwmaDecay", "00:00:01")]);
        var client = host.CreateClient(balancer);

        // Act
        var (load, replacements) = await RollAsync(host.Backends, client, next =>
        {
            host.Configuration.Provider.SetEndpoints(GrpcTestHost.Service, [.. next.Select(b => b.Address)]);
            return Task.CompletedTask;
        }, order);

        // Assert
        await using var _ = replacements;
        AssertNoFailures(load, replacements);
    }

    [Theory]
    [InlineData(StopOrder.AfterDrain)]
    [InlineData(StopOrder.BeforeRegistry)]
    public async Task RollingRestart_Etcd_NoCallFails(StopOrder order)
    {
        // Arrange: the registry is a real etcd; the client watches it.
        await using var etcd = await EtcdServer.StartAsync();
        var initial = new List<GrpcBackend>();
        await using var backends = new BackendSet(initial);
        for (var i = 0; i < 3; i++)
        {
            initial.Add(await GrpcBackend.StartAsync($"b{i}"));
            await etcd.PutAsync($"{GrpcTestHost.Service}/{initial[i].Name}", Registration(initial[i]));
        }

        await using var services = CreateEtcdServices(etcd);
        using var channel = GrpcChannel.ForAddress($"lodestar:///{GrpcTestHost.Service}?source=etcd",
            new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(services, LodestarGrpcPolicies.LeastRequest));
        var client = new Echo.EchoClient(channel);

        // Act: each replacement registers the new instance, then deletes the old one's key.
        var registered = initial.ToList();
        var (load, replacements) = await RollAsync(initial, client, async next =>
        {
            foreach (var added in next.Except(registered).ToList())
            {
                await etcd.PutAsync($"{GrpcTestHost.Service}/{added.Name}", Registration(added));
                registered.Add(added);
            }

            foreach (var gone in registered.Except(next).ToList())
            {
                await etcd.DeleteAsync($"{GrpcTestHost.Service}/{gone.Name}");
                registered.Remove(gone);
            }
        }, order);

        // Assert
        await using var __ = replacements;
        AssertNoFailures(load, replacements);
    }

    [Theory]
    [InlineData(StopOrder.AfterDrain)]
    [InlineData(StopOrder.RightAway)]
    [InlineData(StopOrder.BeforeRegistry)]
    public async Task RollingRestart_HandlerIntegration_NoCallFails(StopOrder order)
    {
        // Arrange: the gRPC client factory's client with core's handler (address http://echo).
        await using var host = await GrpcTestHost.StartAsync(3, services => services
            .AddGrpcClient<Echo.EchoClient>("echo", o => o.Address = new Uri($"http://{GrpcTestHost.Service}"))
            .ConfigureChannel(o => o.Credentials = ChannelCredentials.Insecure)
            .AddLodestar());
        var client = host.Services.GetRequiredService<global::Grpc.Net.ClientFactory.GrpcClientFactory>().CreateClient<Echo.EchoClient>("echo");

        // Act
        var (load, replacements) = await RollAsync(host.Backends, client, next =>
        {
            host.Configuration.Provider.SetEndpoints(GrpcTestHost.Service, [.. next.Select(b => b.Address)]);
            return Task.CompletedTask;
        }, order);

        // Assert
        await using var _ = replacements;
        AssertNoFailures(load, replacements);
    }

    private static string Registration(GrpcBackend backend) => $"{{\"Op\":0,\"Addr\":\"{backend.Address}\",\"Metadata\":null}}";

    private static ServiceProvider CreateEtcdServices(EtcdServer etcd)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
        services.AddLogging();
        services.AddLodestarGrpc();
        services.AddLodestar().AddEtcd(o =>
        {
            o.Address = etcd.ClientUrl;
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(100);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(500);
        });
        return services.BuildServiceProvider();
    }

    /// <summary>
    /// Runs the load, replaces each of <paramref name="initial"/> in turn (start the new instance, <paramref name="publish"/>
    /// the new set, wait until the new instance answers calls, stop the old one gracefully), then stops the load.
    /// </summary>
    private async Task<(UnaryLoad Load, BackendSet Replacements)> RollAsync(IReadOnlyList<GrpcBackend> initial, Echo.EchoClient client,
        Func<IReadOnlyList<GrpcBackend>, Task> publish, StopOrder order = StopOrder.AfterDrain)
    {
        // Every instance answers before the load starts, so the first calls find ready connections.
        await Eventually.TrueAsync(async () => (await GrpcTestHost.CountUnaryAsync(client, 30)).Count == initial.Count, s_wait, "every first instance answers");
        var current = initial.ToList();
        var replacements = new BackendSet([]);
        var load = UnaryLoad.Start(client);
        try
        {
            await Eventually.TrueAsync(() => load.Calls >= 200, s_wait, "the load runs");
            for (var i = 0; i < initial.Count; i++)
            {
                var fresh = await GrpcBackend.StartAsync($"n{i}");
                replacements.Add(fresh);
                await WarmUpAsync(fresh);
                current[i] = fresh;
                if (order == StopOrder.BeforeRegistry)
                {
                    await initial[i].DisposeAsync();
                }

                await publish(current);
                if (order == StopOrder.RightAway)
                {
                    await initial[i].DisposeAsync();
                }

                await Eventually.TrueAsync(() => load.AnsweredBy(fresh.Name) >= 20, s_wait, $"{fresh.Name} takes calls");
                await initial[i].DisposeAsync();
                output.WriteLine($"{initial[i].Name} replaced by {fresh.Name} after {load.Calls} calls, {load.Failures.Count} failed");
            }

            var settled = load.Calls;
            await Eventually.TrueAsync(() => load.Calls >= settled + 200, s_wait, "the load runs on the new instances");
        }
        finally
        {
            await load.DisposeAsync();
        }

        return (load, replacements);
    }

    /// <summary>One direct call, as a readiness probe would make: a server's first call is slow (JIT).</summary>
    private static async Task WarmUpAsync(GrpcBackend backend)
    {
        using var direct = GrpcChannel.ForAddress($"http://{backend.Address}");
        await new Echo.EchoClient(direct).UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
    }

    private void AssertNoFailures(UnaryLoad load, BackendSet replacements)
    {
        output.WriteLine($"{load.Calls} calls, {load.Failures.Count} failed; answers: {string.Join(", ", load.Answers.OrderBy(a => a.Key).Select(a => $"{a.Key}={a.Value}"))}");
        foreach (var failure in load.Failures.Take(10))
        {
            output.WriteLine(failure);
        }

        Assert.Empty(load.Failures);
        Assert.All(replacements.Backends, b => Assert.True(load.AnsweredBy(b.Name) > 0, $"{b.Name} answered no call"));
    }

    /// <summary>Backends a test started and stops at its end.</summary>
    private sealed class BackendSet(List<GrpcBackend> backends) : IAsyncDisposable
    {
        public IReadOnlyList<GrpcBackend> Backends => backends;

        public void Add(GrpcBackend backend) => backends.Add(backend);

        public async ValueTask DisposeAsync()
        {
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }
}
