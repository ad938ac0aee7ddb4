using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Grpc.Tests.DependencyInjection;

public sealed class LodestarGrpcServiceCollectionExtensionsTests
{
    [Fact]
    public async Task AddLodestarBalancer_ClientFactoryClient_SpreadsOverInstances()
    {
        // Arrange
        await using var host = await GrpcTestHost.StartAsync(3, services => services
            .AddGrpcClient<Echo.EchoClient>("echo", o => o.Address = new Uri("lodestar:///echo"))
            .ConfigureChannel(o => o.Credentials = ChannelCredentials.Insecure)
            .AddLodestarBalancer(LodestarGrpcPolicies.RoundRobin));
        var client = host.Services.GetRequiredService<global::Grpc.Net.ClientFactory.GrpcClientFactory>().CreateClient<Echo.EchoClient>("echo");
        await LodestarBalancerFactoryTests.WarmUpAsync(host, client);

        // Act
        var counts = await GrpcTestHost.CountUnaryAsync(client, 60);

        // Assert
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 19, 21));
    }

    [Fact]
    public async Task AddLodestarBalancer_ClientOptions_ApplyToHealth()
    {
        // Arrange: this client ejects after two failures in a row.
        await using var host = await GrpcTestHost.StartAsync(3, services => services
            .AddGrpcClient<Echo.EchoClient>("strict", o => o.Address = new Uri("lodestar:///echo"))
            .ConfigureChannel(o => o.Credentials = ChannelCredentials.Insecure)
            .AddLodestarBalancer(LodestarGrpcPolicies.RoundRobin, o => o.OutlierDetection.ConsecutiveServerErrors = 2));
        var client = host.Services.GetRequiredService<global::Grpc.Net.ClientFactory.GrpcClientFactory>().CreateClient<Echo.EchoClient>("strict");
        await LodestarBalancerFactoryTests.WarmUpAsync(host, client);
        var bad = host.Backends[0];
        bad.FailWith = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act
        await CallIgnoringFailuresAsync(client, 30);

        // Assert
        Assert.Equal(2, bad.Calls - before);
    }

    [Fact]
    public async Task AddLodestarBalancer_DefaultFailureStatuses_InternalIsNotAFailureUnlessConfigured()
    {
        // Arrange: two clients of the same service, one counting INTERNAL as a failure.
        await using var host = await GrpcTestHost.StartAsync(3, services =>
        {
            services.AddGrpcClient<Echo.EchoClient>("lenient", o => o.Address = new Uri("lodestar:///echo"))
                .ConfigureChannel(o => o.Credentials = ChannelCredentials.Insecure)
                .AddLodestarBalancer(LodestarGrpcPolicies.RoundRobin);
            services.AddGrpcClient<Echo.EchoClient>("internal", o => o.Address = new Uri("lodestar:///echo"))
                .ConfigureChannel(o => o.Credentials = ChannelCredentials.Insecure)
                .AddLodestarBalancer(LodestarGrpcPolicies.RoundRobin, o => o.Grpc.FailureStatusCodes = [14, 13]);
        });
        var factory = host.Services.GetRequiredService<global::Grpc.Net.ClientFactory.GrpcClientFactory>();
        var lenient = factory.CreateClient<Echo.EchoClient>("lenient");
        await LodestarBalancerFactoryTests.WarmUpAsync(host, lenient);
        var bad = host.Backends[0];
        bad.FailWith = StatusCode.Internal;

        // Act
        var lenientBefore = bad.Calls;
        await CallIgnoringFailuresAsync(lenient, 30);
        var lenientCalls = bad.Calls - lenientBefore;
        var strict = factory.CreateClient<Echo.EchoClient>("internal");
        await CallIgnoringFailuresAsync(strict, 3);
        var strictBefore = bad.Calls;
        await CallIgnoringFailuresAsync(strict, 30);

        // Assert: INTERNAL alone never ejects; with 13 in the list it does (at most five reach it).
        Assert.Equal(10, lenientCalls);
        Assert.True(bad.Calls - strictBefore <= 5, $"{bad.Calls - strictBefore} calls reached the failing instance");
    }

    /// <summary>
    /// Starts <paramref name="backends"/> instances and the handler integration's client (core's <c>AddLodestar</c> on
    /// the logical address <c>http://echo</c>), with <paramref name="below"/> between Lodestar's handler and the transport.
    /// </summary>
    private static Task<GrpcTestHost> StartHandlerPathAsync(int backends, DelegatingHandler? below = null)
        => GrpcTestHost.StartAsync(backends, services =>
        {
            var client = services.AddGrpcClient<Echo.EchoClient>("handler", o => o.Address = new Uri("http://echo")).AddLodestar();
            if (below is not null)
            {
                client.AddHttpMessageHandler(() => below);
            }
        });

    private static Echo.EchoClient HandlerClient(GrpcTestHost host)
        => host.Services.GetRequiredService<global::Grpc.Net.ClientFactory.GrpcClientFactory>().CreateClient<Echo.EchoClient>("handler");

    [Fact]
    public async Task HandlerPath_GracefulCloseAfterRequestSent_UnaryCallGoesToAnotherEndpoint()
    {
        // Arrange: the handler integration; b0's requests are written out and then refused by a graceful close (GOAWAY
        // NO_ERROR above the stream's id), as when an instance stops while a call is being sent to it. SocketsHttpHandler
        // does not send such a request again once it has begun to write the body.
        var closing = new ClosingHandler();
        await using var host = await StartHandlerPathAsync(3, closing);
        var client = HandlerClient(host);
        await GrpcTestHost.CountUnaryAsync(client, 3);
        closing.ClosingPort = host.Backends[0].Port;

        // Act and assert: no call fails and none is answered by b0; some were refused there first and moved.
        await closing.AssertCallsMoveAsync(client, "b0");
    }

    [Fact]
    public async Task HandlerPath_ConnectionClosedWithError_CallFailsWithoutMoving()
    {
        // Arrange: the connection is closed with INTERNAL_ERROR: the server may have processed the call.
        var closing = new ClosingHandler { ErrorCode = 2 };
        await using var host = await StartHandlerPathAsync(1, closing);
        var client = HandlerClient(host);
        await GrpcTestHost.CountUnaryAsync(client, 1);
        closing.ClosingPort = host.Backends[0].Port;

        // Act
        var error = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);

        // Assert: sent once, not again.
        Assert.Equal(StatusCode.Internal, error.StatusCode);
        Assert.Equal(1, closing.Closed);
    }

    [Fact]
    public async Task HandlerPath_UnaryUnavailableTrailersOnly_EjectedWithinConsecutiveFailureCount()
    {
        // Arrange: the handler integration (core's AddLodestar on a logical http:// address).
        await using var host = await StartHandlerPathAsync(3);
        var client = HandlerClient(host);
        await GrpcTestHost.CountUnaryAsync(client, 3);
        var bad = host.Backends[1];
        bad.FailWith = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act
        var failures = await CallIgnoringFailuresAsync(client, 60);

        // Assert: five calls reached it (none retried elsewhere: the server answered), then none.
        Assert.Equal(5, bad.Calls - before);
        Assert.Equal(5, failures);
    }

    [Fact]
    public async Task HandlerPath_StreamUnavailableInTrailers_EjectedWithinConsecutiveFailureCount()
    {
        // Arrange
        await using var host = await StartHandlerPathAsync(3);
        var client = HandlerClient(host);
        await GrpcTestHost.CountUnaryAsync(client, 3);
        var bad = host.Backends[2];
        bad.FailWith = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act: each failing stream delivers a message, then UNAVAILABLE in its trailers.
        for (var i = 0; i < 60; i++)
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
        Assert.Equal(5, bad.Calls - before);
    }

    [Fact]
    public void AddLodestarGrpc_CalledTwice_RegistersEachFactoryOnce()
    {
        // Arrange
        var services = new ServiceCollection().AddLogging();

        // Act
        services.AddLodestarGrpc();
        services.AddLodestarGrpc();
        using var provider = services.BuildServiceProvider();

        // Assert
        Assert.Single(provider.GetServices<ResolverFactory>(), f => f.Name == "lodestar");
        var names = provider.GetServices<LoadBalancerFactory>().Select(f => f.Name).ToList();
        Assert.Equal([LodestarGrpcPolicies.LeastRequest, LodestarGrpcPolicies.PeakEwma, LodestarGrpcPolicies.RoundRobin, LodestarGrpcPolicies.RingHash, LodestarGrpcPolicies.Maglev], names);
        Assert.NotNull(provider.GetService<IServiceBalancing>());
    }

    [Fact]
    public void CreateConfig_UnknownBalancer_ThrowsNamingKnownOnes()
    {
        // Act
        var error = Assert.Throws<ArgumentException>(() => LodestarGrpcPolicies.CreateConfig("round_robin"));

        // Assert
        Assert.Contains("'round_robin'", error.Message, StringComparison.Ordinal);
        Assert.Contains(LodestarGrpcPolicies.LeastRequest, error.Message, StringComparison.Ordinal);
    }

    private static async Task<int> CallIgnoringFailuresAsync(Echo.EchoClient client, int calls)
    {
        var failures = 0;
        for (var i = 0; i < calls; i++)
        {
            try
            {
                await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
            }
            catch (RpcException)
            {
                failures++;
            }
        }

        return failures;
    }
}
