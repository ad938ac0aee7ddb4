using Grpc.Core;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Grpc.Tests;

public sealed class LodestarBalancerFactoryTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task RoundRobin_UnaryOverThreeInstances_SpreadWithinFivePercent()
    {
        // Arrange
        await using var host = await GrpcTestHost.StartAsync(3);
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        await WarmUpAsync(host, client);

        // Act
        var counts = await GrpcTestHost.CountUnaryAsync(client, 300);

        // Assert: each of the three gets 100 ± 5.
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 95, 105));
    }

    [Fact]
    public async Task RoundRobin_ServerStreamingOverThreeInstances_SpreadWithinFivePercent()
    {
        // Arrange
        await using var host = await GrpcTestHost.StartAsync(3);
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        await WarmUpAsync(host, client);
        var counts = new Dictionary<string, int>();

        // Act
        for (var i = 0; i < 150; i++)
        {
            using var call = client.Stream(new StreamRequest { Count = 3 }, deadline: DateTime.UtcNow.AddSeconds(10));
            var messages = 0;
            string? instance = null;
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
                instance = call.ResponseStream.Current.Instance;
                messages++;
            }

            Assert.Equal(3, messages);
            counts[instance!] = counts.GetValueOrDefault(instance!) + 1;
        }

        // Assert: each of the three gets 50 ± 2.5.
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 48, 52));
    }

    [Theory]
    [InlineData(LodestarGrpcPolicies.LeastRequest)]
    [InlineData(LodestarGrpcPolicies.PeakEwma)]
    public async Task LoadAwarePolicy_SlowInstance_GetsFewerCalls(string balancer)
    {
        // Arrange: one instance answers in 150 ms, the others at once. A short peak-EWMA decay: a call slowed by a busy
        // machine during warm-up must not keep an instance out of the warm-up's reach for a minute.
        await using var host = await GrpcTestHost.StartAsync(3, settings: [new("Lodestar:LoadBalancing:Services:echo:PeakEwmaDecay", "00:00:01")]);
        var client = host.CreateClient(balancer);
        await WarmUpAsync(host, client);
        var slow = host.Backends[0];
        slow.Delay = TimeSpan.FromMilliseconds(150);
        var before = host.Backends.Select(b => b.Calls).ToArray();

        // Act: four concurrent callers, 60 calls each.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => GrpcTestHost.CountUnaryAsync(client, 60)));

        // Assert: a third of the calls would be 80 each; the slow instance gets less than half of what each fast one
        // gets. How many it gets grows with the run's length (about one call per 150 ms per caller it wins), which a
        // busy machine stretches: a fixed bound (under 30) failed once at 30 of 240 (30, 110, 100) under load.
        var calls = host.Backends.Select((b, i) => b.Calls - before[i]).ToArray();
        Assert.Equal(240, calls.Sum());
        Assert.True(calls[0] * 2 < Math.Min(calls[1], calls[2]), $"the slow instance got {calls[0]} of 240 calls ({string.Join(", ", calls)})");
    }

    [Fact]
    public async Task RingHash_SameHeaderValue_SameInstance()
    {
        // Arrange
        await using var host = await GrpcTestHost.StartAsync(3);
        var client = host.CreateClient(LodestarGrpcPolicies.RingHash, hashHeader: "x-user");
        await WarmUpAsync(host, client);

        // Act
        var perKey = new Dictionary<string, HashSet<string>>();
        for (var k = 0; k < 20; k++)
        {
            var key = $"user-{k}";
            var counts = await GrpcTestHost.CountUnaryAsync(client, 5, new Metadata { { "x-user", key } });
            perKey[key] = [.. counts.Keys];
        }

        // Assert: one instance per key, and the keys spread over more than one instance.
        Assert.All(perKey.Values, instances => Assert.Single(instances));
        Assert.True(perKey.Values.Select(v => v.Single()).Distinct().Count() > 1, "twenty keys all hashed to one instance");
    }

    [Fact]
    public async Task Maglev_OneOfFourInstancesRemoved_OnlyItsKeysMove()
    {
        // Arrange: four instances, a hundred keys.
        await using var host = await GrpcTestHost.StartAsync(4);
        var client = host.CreateClient(LodestarGrpcPolicies.Maglev, hashHeader: "x-user");
        await WarmUpAsync(host, client);
        var keys = Enumerable.Range(0, 100).Select(k => $"user-{k}").ToArray();
        var before = await InstancesOfAsync(client, keys);

        // Act: remove b3 from the registry; wait until the balancer no longer sends its keys there.
        var removed = host.Backends[3];
        host.Configuration.Provider.Replace(host.Backends.Take(3).Select((b, i) =>
            new KeyValuePair<string, string?>($"Lodestar:Services:{GrpcTestHost.Service}:Endpoints:{i}", b.Address)));
        var onRemoved = keys.Where(k => before[k] == removed.Name).ToArray();
        // Until the balancer applies the new set it still chooses the removed instance for its keys, and a call whose
        // chosen instance has no connection goes to another at random: wait until the key sticks to one other instance.
        await Eventually.TrueAsync(async () => await GrpcTestHost.CountUnaryAsync(client, onRemoved.Length, new Metadata { { "x-user", onRemoved[0] } }) is { Count: 1 } counts
                && !counts.ContainsKey(removed.Name),
            s_wait, "a key of the removed instance sticks to another");
        var after = await InstancesOfAsync(client, keys);

        // Assert: each key on one instance; the keys spread over all four (25 each expected); only the removed
        // instance's keys moved (Maglev's table may move a few others: at most 5 of the 75).
        Assert.All(host.Backends, b => Assert.InRange(before.Values.Count(i => i == b.Name), 10, 40));
        Assert.DoesNotContain(removed.Name, after.Values);
        var movedOthers = keys.Count(k => before[k] != removed.Name && after[k] != before[k]);
        Assert.True(movedOthers <= 5, $"{movedOthers} keys moved that were not on the removed instance ({onRemoved.Length} were)");
    }

    [Fact]
    public async Task PeakEwma_InstanceAdded_TakesCallsWithoutLatencyDataAndAfterASlowFirstAnswer()
    {
        // Arrange: b0 and b1 established with latency estimates; b2 not in the registry yet. A short peak-EWMA decay, as
        // in the other balancer tests: a first answer slowed by a busy machine is forgotten within seconds.
        await using var host = await GrpcTestHost.StartAsync(3);
        var b = host.Backends;
        KeyValuePair<string, string?>[] decay = [new("Lodestar:LoadBalancing:Services:echo:PeakEwmaDecay", "00:00:01")];
        host.Configuration.Provider.Replace([.. b.Take(2).Select((backend, i) =>
            new KeyValuePair<string, string?>($"Lodestar:Services:{GrpcTestHost.Service}:Endpoints:{i}", backend.Address)), .. decay]);
        var client = host.CreateClient(LodestarGrpcPolicies.PeakEwma);
        await GrpcTestHost.CountUnaryAsync(client, 50);

        // Act: add b2; four callers make calls until b2 has answered 20 of them: at most 250,000 calls each and 15 s, time
        // for a slow first answer's estimate to decay (about 3 s for one twenty times slower).
        host.Configuration.Provider.Replace([.. b.Select((backend, i) =>
            new KeyValuePair<string, string?>($"Lodestar:Services:{GrpcTestHost.Service}:Endpoints:{i}", backend.Address)), .. decay]);
        var answered = 0;
        var calls = 0;
        var deadline = DateTime.UtcNow.AddSeconds(15);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async _ =>
        {
            for (var i = 0; i < 250_000 && Volatile.Read(ref answered) < 20 && DateTime.UtcNow < deadline; i++)
            {
                var reply = await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                Interlocked.Increment(ref calls);
                if (reply.Instance == "b2")
                {
                    Interlocked.Increment(ref answered);
                }
            }
        }));

        // Assert: an instance without an observation competes at the best estimate among the candidates, so it takes
        // calls as soon as its connection is ready; one whose first answers were slow (a busy machine) gets calls again
        // once its estimate has decayed. A policy that gave a new instance a fixed default would starve it here.
        Assert.True(answered >= 20, $"the new instance answered {answered} of {calls} calls");
    }

    [Fact]
    public async Task Balancer_InstanceAnsweringUnavailable_EjectedWithinConsecutiveFailureCount()
    {
        // Arrange: outlier detection ejects after 5 failures in a row (the default).
        await using var host = await GrpcTestHost.StartAsync(3);
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        await WarmUpAsync(host, client);
        var bad = host.Backends[1];
        bad.FailWith = StatusCode.Unavailable;
        var before = bad.Calls;
        var failures = 0;

        // Act
        for (var i = 0; i < 60; i++)
        {
            try
            {
                await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
                failures++;
            }
        }

        // Assert: exactly five calls reached it, then none.
        Assert.Equal(5, bad.Calls - before);
        Assert.Equal(5, failures);
        var state = await EndpointOf(host, bad);
        Assert.True(state.IsEjected);
    }

    [Fact]
    public async Task Balancer_StreamFailingInTrailers_CountsAsFailure()
    {
        // Arrange
        await using var host = await GrpcTestHost.StartAsync(3);
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        await WarmUpAsync(host, client);
        var bad = host.Backends[2];
        bad.FailWith = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act: streams that get one message, then UNAVAILABLE in the trailers.
        for (var i = 0; i < 30; i++)
        {
            using var call = client.Stream(new StreamRequest { Count = 2 }, deadline: DateTime.UtcNow.AddSeconds(10));
            try
            {
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                }
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
            }
        }

        // Assert
        var state = await EndpointOf(host, bad);
        Assert.True(state.IsEjected, $"calls {bad.Calls - before}, failures {state.Failures}");
        Assert.Equal(5, bad.Calls - before);
    }

    [Fact]
    public async Task Balancer_CallsCountedInFlightUntilTheyEnd()
    {
        // Arrange
        await using var host = await GrpcTestHost.StartAsync(1);
        var client = host.CreateClient(LodestarGrpcPolicies.LeastRequest);
        await WarmUpAsync(host, client);
        var state = await EndpointOf(host, host.Backends[0]);
        var requests = state.Requests;

        // Act: a stream that holds after its first message.
        using var call = client.Stream(new StreamRequest { Count = 2, Hold = true }, deadline: DateTime.UtcNow.AddSeconds(10));
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var during = state.InFlight;
        host.Backends[0].Release.TrySetResult();
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
        }

        // Assert
        Assert.Equal(1, during);
        await Eventually.TrueAsync(() => state.InFlight == 0, s_wait, "the stream's end ends its in-flight count");
        Assert.Equal(requests + 1, state.Requests);
    }

    [Fact]
    public async Task Balancer_InstanceGoesAwayMidStream_FailsOnlyItsStreamsAndNewCallsSucceed()
    {
        // Arrange: one held stream on each of three instances.
        await using var host = await GrpcTestHost.StartAsync(3);
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        await WarmUpAsync(host, client);
        var calls = new List<AsyncServerStreamingCall<EchoReply>>();
        var owners = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var call = client.Stream(new StreamRequest { Count = 3, Hold = true }, deadline: DateTime.UtcNow.AddSeconds(20));
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
            calls.Add(call);
            owners.Add(call.ResponseStream.Current.Instance);
        }

        Assert.Equal(3, owners.Distinct().Count());
        var gone = host.Backends[1];

        // Act: the instance goes away, the others release their streams.
        await gone.KillAsync();
        foreach (var backend in host.Backends.Where(b => b != gone))
        {
            backend.Release.TrySetResult();
        }

        var outcomes = new List<(string Instance, bool Completed)>();
        for (var i = 0; i < calls.Count; i++)
        {
            var completed = true;
            try
            {
                while (await calls[i].ResponseStream.MoveNext(CancellationToken.None))
                {
                }
            }
            catch (RpcException)
            {
                completed = false;
            }

            outcomes.Add((owners[i], completed));
            calls[i].Dispose();
        }

        var after = await GrpcTestHost.CountUnaryAsync(client, 30);

        // Assert
        Assert.All(outcomes, o => Assert.Equal(o.Instance != gone.Name, o.Completed));
        Assert.Equal(30, after.Values.Sum());
        Assert.DoesNotContain(gone.Name, after.Keys);
    }

    [Fact]
    public async Task Balancer_Tls_CallsSucceedOverEveryInstance()
    {
        // Arrange
        using var authority = TestCertificates.CreateAuthority();
        using var certificate = TestCertificates.CreateServer(authority, dnsNames: ["localhost"]);
        await using var host = await GrpcTestHost.StartAsync(2, certificate: certificate);
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            SslOptions =
            {
                // Trust exactly the test authority; nothing else.
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && ChainsTo(cert, authority),
            },
        };
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin, credentials: ChannelCredentials.SecureSsl, handler: handler);

        // Act
        var counts = await GrpcTestHost.CountUnaryAsync(client, 20);

        // Assert
        Assert.Equal(2, counts.Count);
        Assert.All(counts.Values, c => Assert.Equal(10, c));
    }

    [Fact]
    public async Task Balancer_UnknownService_FailsCallsNamingService()
    {
        // Arrange
        await using var host = await GrpcTestHost.StartAsync(1);
        var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress("lodestar:///nowhere",
            new global::Grpc.Net.Client.GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(host.Services));
        var client = new Echo.EchoClient(channel);

        // Act
        var error = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10)));

        // Assert
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("'nowhere'", error.Status.Detail, StringComparison.Ordinal);
        channel.Dispose();
    }

    [Fact]
    public async Task Balancer_MisspeltConfigKey_FailsCallsNamingTheKey()
    {
        // Arrange: "hashheader" instead of "hashHeader" would otherwise make a ring hash pick at random.
        await using var host = await GrpcTestHost.StartAsync(1);
        var options = new global::Grpc.Net.Client.GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(host.Services, LodestarGrpcPolicies.RingHash);
        var config = options.ServiceConfig!.LoadBalancingConfigs[0];
        ((IDictionary<string, object>)config.Inner[LodestarGrpcPolicies.RingHash])["hashheader"] = "x-user";
        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress("lodestar:///echo", options);

        // Act
        var error = await Assert.ThrowsAsync<RpcException>(async () => await new Echo.EchoClient(channel).UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10)));

        // Assert
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("'hashheader'", error.Status.Detail, StringComparison.Ordinal);
        Assert.Contains(LodestarGrpcPolicies.RingHash, error.Status.Detail, StringComparison.Ordinal);
    }

    /// <summary>The instance each key's calls go to; three calls per key, which must agree.</summary>
    private static async Task<Dictionary<string, string>> InstancesOfAsync(Echo.EchoClient client, IEnumerable<string> keys)
    {
        var instances = new Dictionary<string, string>();
        foreach (var key in keys)
        {
            var counts = await GrpcTestHost.CountUnaryAsync(client, 3, new Metadata { { "x-user", key } });
            instances[key] = Assert.Single(counts).Key;
        }

        return instances;
    }

    internal static async Task WarmUpAsync(GrpcTestHost host, Echo.EchoClient client)
    {
        // Until every instance has a ready connection, picks skip the ones still connecting.
        var seen = new HashSet<string>();
        try
        {
            await Eventually.TrueAsync(async () =>
            {
                var reply = await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                seen.Add(reply.Instance);
                return seen.Count == host.Backends.Count;
            }, s_wait, "every instance answers");
        }
        catch (TimeoutException ex)
        {
            var states = new List<string>();
            foreach (var backend in host.Backends)
            {
                var s = await EndpointOf(host, backend);
                states.Add($"{backend.Name}: calls {backend.Calls}, requests {s.Requests}, in flight {s.InFlight}, failures {s.Failures}, estimate {s.LatencyEstimate}, healthy {s.IsHealthy}");
            }

            throw new TimeoutException(ex.Message + " " + string.Join("; ", states), ex);
        }
    }

    internal static async Task<EndpointState> EndpointOf(GrpcTestHost host, GrpcBackend backend, string policy = LoadBalancingPolicies.WeightedRoundRobin)
    {
        var balanced = await host.Services.GetRequiredService<IServiceBalancing>().GetServiceAsync(GrpcTestHost.Service, policyName: policy);
        return balanced.Endpoints.Single(e => e.Endpoint.Port == backend.Port);
    }

    private static bool ChainsTo(System.Security.Cryptography.X509Certificates.X509Certificate certificate, System.Security.Cryptography.X509Certificates.X509Certificate2 authority)
    {
        using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
        chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
        return chain.Build(new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate));
    }
}
