using Grpc.Core;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Grpc.Tests;

/// <summary>
/// Zone-aware routing and slow start apply to calls on a <c>lodestar:///</c> channel as they do to HttpClient requests:
/// the channel's balancer asks the service's balancer, whose layers (zones) and policy weights (slow start) decide.
/// </summary>
public sealed class ZonesAndSlowStartOnChannelsTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ZoneAware_LocalZoneHealthyThenShortOfCapacity_StaysLocalThenSpillsItsShortfall()
    {
        // Arrange: b0 and b1 in the caller's zone a, b2 and b3 in zone b; zone awareness from four endpoints on.
        await using var host = await GrpcTestHost.StartAsync(4);
        var b = host.Backends;
        host.Configuration.Provider.Replace([
            .. Endpoint(0, b[0].Address, "a"), .. Endpoint(1, b[1].Address, "a"), .. Endpoint(2, b[2].Address, "b"), .. Endpoint(3, b[3].Address, "b"),
            new($"Lodestar:LoadBalancing:Services:{GrpcTestHost.Service}:LocalZone", "a"),
            new($"Lodestar:LoadBalancing:Services:{GrpcTestHost.Service}:ZoneAwareMinimumEndpoints", "4")]);
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        var seen = new HashSet<string>();
        await Eventually.TrueAsync(async () =>
        {
            seen.Add((await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Instance);
            return seen.Count == 2;
        }, s_wait, "both local instances answer");

        // Act 1: the local zone is healthy.
        var healthy = await GrpcTestHost.CountUnaryAsync(client, 100);

        // Act 2: b0 answers UNAVAILABLE until outlier detection ejects it (five in a row); then the local zone has half
        // its capacity: 0.5 healthy × 1.4 overprovisioning = 70 % of calls stay, 30 % spill to zone b.
        b[0].FailWith = StatusCode.Unavailable;
        var ejected = await EjectAsync(host, client, b[0]);
        b[0].FailWith = null;
        // Both of zone b's connections must be ready before counting: a pick whose endpoint is still connecting moves to
        // a ready one, which would be b1.
        var remote = new HashSet<string>();
        await Eventually.TrueAsync(async () =>
        {
            var instance = (await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Instance;
            if (instance is "b2" or "b3")
            {
                remote.Add(instance);
            }

            return remote.Count == 2;
        }, s_wait, "calls spill to both instances of zone b");
        var spilled = await GrpcTestHost.CountUnaryAsync(client, 400);

        // Assert: healthy, every call stays in zone a, even over its two instances; short of capacity, b1 keeps 70 %
        // (280 expected, binomial sd about 9; 4.5 sd either way) and zone b takes the rest, over both of its instances
        // (60 each, sd about 7); b0 gets none.
        Assert.True(ejected, "b0 was not ejected");
        Assert.Equal(["b0", "b1"], healthy.Keys.Order());
        Assert.All(healthy.Values, c => Assert.InRange(c, 45, 55));
        Assert.False(spilled.ContainsKey("b0"));
        Assert.InRange(spilled.GetValueOrDefault("b1"), 240, 320);
        Assert.InRange(spilled.GetValueOrDefault("b2"), 25, 95);
        Assert.InRange(spilled.GetValueOrDefault("b3"), 25, 95);
    }

    [Fact]
    public async Task SlowStart_InstanceAdded_ItsShareRampsOverTheWindow()
    {
        // Arrange: b0 and b1 long established; a 60 s linear window with a 10 % floor; Lodestar's clock is a fake.
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var host = await GrpcTestHost.StartAsync(3, services => services.AddSingleton<TimeProvider>(clock));
        var b = host.Backends;
        KeyValuePair<string, string?>[] window = [new($"Lodestar:LoadBalancing:Services:{GrpcTestHost.Service}:SlowStartWindow", "00:01:00")];
        host.Configuration.Provider.Replace([.. Endpoint(0, b[0].Address, null), .. Endpoint(1, b[1].Address, null), .. window]);
        var client = host.CreateClient(LodestarGrpcPolicies.RoundRobin);
        var seen = new HashSet<string>();
        await Eventually.TrueAsync(async () =>
        {
            seen.Add((await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Instance);
            return seen.Count == 2;
        }, s_wait, "both established instances answer");
        clock.Advance(TimeSpan.FromMinutes(5));

        // Act: add b2, wait until its connection is ready (it answers a call), then count 210 calls at 0, 30 and 60 s
        // into its window.
        host.Configuration.Provider.Replace([.. Endpoint(0, b[0].Address, null), .. Endpoint(1, b[1].Address, null), .. Endpoint(2, b[2].Address, null), .. window]);
        await Eventually.TrueAsync(async () => (await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10))).Instance == "b2",
            s_wait, "the new instance answers");
        var shares = new List<int>();
        for (var step = 0; step < 3; step++)
        {
            if (step > 0)
            {
                clock.Advance(TimeSpan.FromSeconds(30));
            }

            shares.Add((await GrpcTestHost.CountUnaryAsync(client, 210)).GetValueOrDefault("b2"));
        }

        // Assert: share = f / (2 + f) with f = max(0.1, elapsed / 60 s): 10, 42 and 70 of 210 expected (within about
        // three binomial standard deviations).
        Assert.InRange(shares[0], 2, 20);
        Assert.InRange(shares[1], 25, 60);
        Assert.InRange(shares[2], 50, 90);
        Assert.True(shares[0] < shares[1] && shares[1] < shares[2], $"b2's shares did not ramp: {string.Join(", ", shares)}");
    }

    /// <summary>Calls until <paramref name="backend"/> has been ejected (bounded: 60 calls); failures are expected.</summary>
    private static async Task<bool> EjectAsync(GrpcTestHost host, Echo.EchoClient client, GrpcBackend backend)
    {
        var endpoint = await LodestarBalancerFactoryTests.EndpointOf(host, backend);
        for (var i = 0; i < 60 && !endpoint.IsEjected; i++)
        {
            try
            {
                await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
            {
            }
        }

        return endpoint.IsEjected;
    }

    private static IEnumerable<KeyValuePair<string, string?>> Endpoint(int index, string address, string? zone)
    {
        var prefix = $"Lodestar:Services:{GrpcTestHost.Service}:Endpoints:{index}:";
        yield return new(prefix + "Address", address);
        if (zone is not null)
        {
            yield return new(prefix + "Zone", zone);
        }
    }
}
