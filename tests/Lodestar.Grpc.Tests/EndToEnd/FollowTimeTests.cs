using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Lodestar.Grpc.Tests.EndToEnd;

/// <summary>
/// How fast one etcd change reaches traffic: the same watcher feeds a gRPC channel (<c>lodestar:///</c> resolver and
/// balancer) and a gRPC client on the handler integration; each round writes a new instance's key and times, from the
/// write, the watcher's notification and each path's first call answered by the new instance. The figures are printed,
/// not asserted.
/// </summary>
public sealed class FollowTimeTests(ITestOutputHelper output)
{
    private const int Rounds = 20;
    private const string Service = "echo";
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task FollowTime_EtcdPut_BothPathsReachTheNewInstanceEveryRoundAndAreReported()
    {
        // Arrange: two instances registered, a third (the spare) whose key each round writes and then deletes.
        await using var etcd = await EtcdServer.StartAsync();
        await using var a = await GrpcBackend.StartAsync("a");
        await using var b = await GrpcBackend.StartAsync("b");
        await using var spare = await GrpcBackend.StartAsync("spare");
        await etcd.PutAsync($"{Service}/a", Registration(a));
        await etcd.PutAsync($"{Service}/b", Registration(b));
        await using var services = CreateServices(etcd);
        using var channel = GrpcChannel.ForAddress($"lodestar:///{Service}?source=etcd",
            new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(services, LodestarGrpcPolicies.RoundRobin));
        var balanced = new Echo.EchoClient(channel);
        var handled = services.GetRequiredService<global::Grpc.Net.ClientFactory.GrpcClientFactory>().CreateClient<Echo.EchoClient>("handled");
        var latest = (EndpointSet?)null;
        using var watch = services.GetRequiredService<IEndpointResolver>().Watch(Service, "etcd", set => Volatile.Write(ref latest, set));
        foreach (var client in new[] { balanced, handled })
        {
            await Eventually.TrueAsync(async () => (await GrpcTestHost.CountUnaryAsync(client, 10)).Count == 2, s_wait, "both instances answer");
        }

        var watcher = new List<double>();
        var resolverPath = new List<double>();
        var handlerPath = new List<double>();

        // Act
        for (var round = 0; round < Rounds; round++)
        {
            var written = Stopwatch.GetTimestamp();
            var seen = WhenAsync(() => Volatile.Read(ref latest)?.Endpoints.Any(e => e.Port == spare.Port) == true, written);
            var viaResolver = FirstAnswerFromAsync(balanced, spare.Name, written);
            var viaHandler = FirstAnswerFromAsync(handled, spare.Name, written);
            await etcd.PutAsync($"{Service}/spare", Registration(spare));
            watcher.Add(await seen);
            resolverPath.Add(await viaResolver);
            handlerPath.Add(await viaHandler);

            await etcd.DeleteAsync($"{Service}/spare");
            await Eventually.TrueAsync(() => Volatile.Read(ref latest)?.Endpoints.All(e => e.Port != spare.Port) == true, s_wait, "the spare leaves the set");
            foreach (var client in new[] { balanced, handled })
            {
                await Eventually.TrueAsync(async () => !(await GrpcTestHost.CountUnaryAsync(client, 10)).ContainsKey(spare.Name), s_wait, "the spare takes no more calls");
            }
        }

        // Assert: every round reached the new instance on both paths (the awaits above fail otherwise).
        output.WriteLine($"etcd put -> ..., {Rounds} rounds (median / p90 / max, ms):");
        output.WriteLine($"  watcher notified:                          {Summary(watcher)}");
        output.WriteLine($"  first call answered, resolver + balancer:  {Summary(resolverPath)}");
        output.WriteLine($"  first call answered, handler integration:  {Summary(handlerPath)}");
        Assert.Equal(Rounds, resolverPath.Count);
        Assert.Equal(Rounds, handlerPath.Count);
    }

    private static string Registration(GrpcBackend backend) => $"{{\"Op\":0,\"Addr\":\"{backend.Address}\",\"Metadata\":null}}";

    private static ServiceProvider CreateServices(EtcdServer etcd)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().Build());
        services.AddLogging();
        services.AddLodestarGrpc();
        services.AddLodestar().AddEtcd(o => o.Address = etcd.ClientUrl);
        services.AddGrpcClient<Echo.EchoClient>("handled", o => o.Address = new Uri($"http://{Service}"))
            .ConfigureChannel(o => o.Credentials = ChannelCredentials.Insecure)
            .AddLodestar(o =>
            {
                o.Source = "etcd";
                o.Policy = LoadBalancingPolicies.RoundRobin;
            });
        return services.BuildServiceProvider();
    }

    /// <summary>Makes calls one after another until one is answered by <paramref name="instance"/>; returns the milliseconds since <paramref name="since"/>.</summary>
    private static async Task<double> FirstAnswerFromAsync(Echo.EchoClient client, string instance, long since)
    {
        for (var call = 0; call < 100_000 && Stopwatch.GetElapsedTime(since) < s_wait; call++)
        {
            var reply = await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
            if (reply.Instance == instance)
            {
                return Stopwatch.GetElapsedTime(since).TotalMilliseconds;
            }
        }

        throw new TimeoutException($"No call reached {instance} within {s_wait.TotalSeconds} s.");
    }

    /// <summary>Checks <paramref name="condition"/> every millisecond or so; returns the milliseconds since <paramref name="since"/> when it holds.</summary>
    private static async Task<double> WhenAsync(Func<bool> condition, long since)
    {
        while (!condition())
        {
            if (Stopwatch.GetElapsedTime(since) > s_wait)
            {
                throw new TimeoutException("The watcher never saw the new instance.");
            }

            await Task.Yield();
        }

        return Stopwatch.GetElapsedTime(since).TotalMilliseconds;
    }

    private static string Summary(List<double> samples)
    {
        var sorted = samples.Order().ToList();
        return $"{sorted[sorted.Count / 2],6:0.0} / {sorted[(int)Math.Ceiling(sorted.Count * 0.9) - 1],6:0.0} / {sorted[^1],6:0.0}";
    }
}
