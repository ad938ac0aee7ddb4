using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.Testing;
using Xunit.Abstractions;

namespace Lodestar.Grpc.Tests.EndToEnd;

/// <summary>
/// An instance dies without warning under load while the registry still lists it. On the balancer integration Lodestar
/// does not retry; gRPC's own <c>retryPolicy</c> for <c>UNAVAILABLE</c> repeats the calls the dead instance was
/// serving, and the balancer picks again among the instances with a ready connection.
/// </summary>
public sealed class InstanceCrashTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(15);

    [Theory]
    [InlineData(LodestarGrpcPolicies.LeastRequest)]
    [InlineData(LodestarGrpcPolicies.RoundRobin)]
    public async Task Kill_WithRetryPolicyForUnavailable_NoCallFails(string balancer)
    {
        // Arrange: every instance answers in 50 ms, so calls are always in flight.
        await using var host = await GrpcTestHost.StartAsync(3);
        foreach (var backend in host.Backends)
        {
            backend.Delay = TimeSpan.FromMilliseconds(50);
        }

        var options = new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(host.Services, balancer);
        options.ServiceConfig!.MethodConfigs.Add(new MethodConfig
        {
            Names = { MethodName.Default },
            RetryPolicy = new RetryPolicy
            {
                MaxAttempts = 3,
                InitialBackoff = TimeSpan.FromMilliseconds(20),
                MaxBackoff = TimeSpan.FromMilliseconds(200),
                BackoffMultiplier = 2,
                RetryableStatusCodes = { StatusCode.Unavailable },
            },
        });
        using var channel = GrpcChannel.ForAddress($"lodestar:///{GrpcTestHost.Service}", options);
        var client = new Echo.EchoClient(channel);
        await Eventually.TrueAsync(async () => (await GrpcTestHost.CountUnaryAsync(client, 30)).Count == 3, s_wait, "every instance answers");
        var victim = host.Backends[0];

        // Act: 16 callers keep calls in flight on every instance; the victim dies with some of them.
        await using (var load = UnaryLoad.Start(client, workers: 16, ratePerSecond: 200))
        {
            await Eventually.TrueAsync(() => load.AnsweredBy(victim.Name) >= 20, s_wait, "the victim takes calls");
            // The victim now holds every call it gets: a few are certainly in flight on it when it dies.
            victim.Delay = TimeSpan.FromSeconds(5);
            var held = victim.Calls;
            await Eventually.TrueAsync(() => victim.Calls >= held + 3, s_wait, "calls held on the victim");
            var answeredBefore = load.AnsweredBy(victim.Name);
            await victim.KillAsync();
            var after = load.Calls;
            await Eventually.TrueAsync(() => load.Calls >= after + 300, s_wait, "the load runs on without the victim");
            await load.StopAsync();

            // Assert
            output.WriteLine($"{load.Calls} calls, {load.Failures.Count} failed; the victim answered {load.AnsweredBy(victim.Name) - answeredBefore} after it was killed");
            foreach (var failure in load.Failures.Take(10))
            {
                output.WriteLine(failure);
            }

            Assert.Empty(load.Failures);
        }
    }
}
