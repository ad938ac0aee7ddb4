using Envoy.Config.Cluster.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Lodestar.Http;
using Lodestar.Testing;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Tests.Infrastructure;
using Lodestar.Xds.Tests.Protos;
using Microsoft.Extensions.DependencyInjection;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Channels;

/// <summary>
/// What an <c>xds:///</c> channel set up with <c>UseXds</c> does per call: the call's <c>grpc-status</c> as the endpoint's
/// outcome, the route's <c>max_stream_duration</c> (gRFC A31) and retry policy (gRFC A44), the cluster's
/// <c>max_retries</c>; against the fake control plane and real Grpc.AspNetCore backends.
/// </summary>
public sealed class XdsChannelCallPolicyTests
{
    private const string HelloPath = "/lodestar.xds.tests.Greeter/Hello";

    [Fact]
    public async Task Call_EndpointAnswersUnavailableToEveryCall_OutlierDetectionEjectsIt()
    {
        // Arrange: cluster a holds backends good and bad; three failures in a row eject an endpoint.
        await using var h = await XdsChannelHarness.StartAsync(["good", "bad"]);
        await PublishTwoEndpointClusterAsync(h, outlierDetection: true);
        var bad = h.Backends["bad"];
        bad.Failure = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act
        var (served, failed) = await CallManyAsync(h, 40);

        // Assert: once ejected, the bad endpoint takes no more calls; without the status as the outcome it would take half.
        Assert.Equal(3, bad.Calls - before);
        Assert.Equal(3, failed);
        Assert.Equal(37, served);
    }

    [Fact]
    public async Task Call_UnavailableInTheTrailers_OutlierDetectionEjectsTheEndpoint()
    {
        // Arrange: the bad backend sends its response headers before it fails, so the status comes in the trailers.
        await using var h = await XdsChannelHarness.StartAsync(["good", "bad"]);
        await PublishTwoEndpointClusterAsync(h, outlierDetection: true);
        var bad = h.Backends["bad"];
        bad.FailAfterHeaders = true;
        bad.Failure = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act
        var (served, failed) = await CallManyAsync(h, 40);

        // Assert
        Assert.Equal(3, bad.Calls - before);
        Assert.Equal(3, failed);
        Assert.Equal(37, served);
    }

    [Fact]
    public async Task Call_ClientCountsInternalAsFailure_EndpointAnsweringInternalIsEjected()
    {
        // Arrange: the channel reads the failure statuses of client "orders", which names INTERNAL.
        await using var h = await XdsChannelHarness.StartAsync(["good", "bad"], clientName: "orders",
            configure: s => s.Configure<LodestarClientOptions>("orders", o => o.Grpc.FailureStatusCodes = [GrpcStatusOptions.Internal]));
        await PublishTwoEndpointClusterAsync(h, outlierDetection: true);
        var bad = h.Backends["bad"];
        bad.Failure = StatusCode.Internal;
        var before = bad.Calls;

        // Act
        var (_, failed) = await CallManyAsync(h, 40);

        // Assert
        Assert.Equal(3, bad.Calls - before);
        Assert.Equal(3, failed);
    }

    [Fact]
    public async Task Call_UnavailableIsNotAFailureOfThisClient_EndpointIsNotEjected()
    {
        // Arrange: client "orders" counts only INTERNAL, so UNAVAILABLE answers are not failures of the endpoint.
        await using var h = await XdsChannelHarness.StartAsync(["good", "bad"], clientName: "orders",
            configure: s => s.Configure<LodestarClientOptions>("orders", o => o.Grpc.FailureStatusCodes = [GrpcStatusOptions.Internal]));
        await PublishTwoEndpointClusterAsync(h, outlierDetection: true);
        var bad = h.Backends["bad"];
        bad.Failure = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act
        var (_, failed) = await CallManyAsync(h, 40);

        // Assert: round robin keeps sending it half of the calls.
        Assert.Equal(20, bad.Calls - before);
        Assert.Equal(20, failed);
    }

    [Fact]
    public async Task Call_ChannelWithoutUseXds_UnavailableAnswersDoNotEjectTheEndpoint()
    {
        // Arrange: only ServiceProvider is set, so the outcome is whether response headers arrived.
        await using var h = await XdsChannelHarness.StartAsync(["good", "bad"], useXds: false);
        await PublishTwoEndpointClusterAsync(h, outlierDetection: true);
        var bad = h.Backends["bad"];
        bad.Failure = StatusCode.Unavailable;
        var before = bad.Calls;

        // Act
        var (_, failed) = await CallManyAsync(h, 40);

        // Assert
        Assert.Equal(20, bad.Calls - before);
        Assert.Equal(20, failed);
    }

    [Fact]
    public async Task Call_RouteRetriesUnavailable_FailingOnceBackendGivesNoFailedCall()
    {
        // Arrange: the route retries UNAVAILABLE up to twice; the backend fails its next call.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(RetryRoute("unavailable", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        var (served, failed) = await CallManyAsync(h, 5);

        // Assert: the failed attempt was retried on the cluster; every call succeeded.
        Assert.Equal(0, failed);
        Assert.Equal(5, served);
        Assert.Equal(1 + 5 + 1, backend.Calls);
    }

    [Fact]
    public async Task Call_Retried_CarriesThePreviousAttemptsHeader()
    {
        // Arrange
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(RetryRoute("unavailable", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        Assert.Null(backend.LastPreviousAttempts);
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        Assert.Equal("a", await h.CallAsync());

        // Assert
        Assert.Equal("1", backend.LastPreviousAttempts);
    }

    [Fact]
    public async Task Call_ServerPushbackNegative_IsNotRetried()
    {
        // Arrange: the failing answer asks the client not to retry (gRFC A6 pushback).
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(RetryRoute("unavailable", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.Pushback = "-1";
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        var failure = await Assert.ThrowsAsync<RpcException>(h.CallAsync);

        // Assert
        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Equal(2, backend.Calls);
    }

    [Fact]
    public async Task Call_ServerPushbackZero_IsRetried()
    {
        // Arrange
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(RetryRoute("unavailable", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.Pushback = "0";
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        Assert.Equal("a", await h.CallAsync());

        // Assert
        Assert.Equal(3, backend.Calls);
    }

    [Fact]
    public async Task Call_RouteWithoutRetryPolicy_FailingOnceBackendFailsTheCall()
    {
        // Arrange
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        var failure = await Assert.ThrowsAsync<RpcException>(h.CallAsync);

        // Assert
        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Equal(2, backend.Calls);
    }

    [Fact]
    public async Task Call_FailureAfterResponseHeaders_IsNotRetried()
    {
        // Arrange: the backend sends headers, then fails: the call is committed (gRPC retries only before a response).
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(RetryRoute("unavailable", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.FailAfterHeaders = true;
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        var failure = await Assert.ThrowsAsync<RpcException>(h.CallAsync);

        // Assert
        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Equal(2, backend.Calls);
    }

    [Fact]
    public async Task Call_RouteRetriesOnlyInternal_UnavailableIsNotRetried()
    {
        // Arrange
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(RetryRoute("internal,5xx", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        var failure = await Assert.ThrowsAsync<RpcException>(h.CallAsync);

        // Assert
        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Equal(2, backend.Calls);
    }

    [Fact]
    public async Task Call_RetriesExhausted_FailsWithTheLastStatusAfterNumRetriesPlusOneAttempts()
    {
        // Arrange: every call fails; the route allows two retries.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(RetryRoute("unavailable", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.Failure = StatusCode.Unavailable;

        // Act
        var failure = await Assert.ThrowsAsync<RpcException>(h.CallAsync);

        // Assert
        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Equal(1 + 3, backend.Calls);
    }

    [Fact]
    public async Task Call_ClusterMaxRetriesZero_RetryIsNotMadeAndTheCallFails()
    {
        // Arrange: the route would retry, but the cluster's circuit breaker allows no retry in flight.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        var cluster = EdsCluster("a");
        cluster.CircuitBreakers = new CircuitBreakers();
        cluster.CircuitBreakers.Thresholds.Add(new CircuitBreakers.Types.Thresholds
        {
            Priority = Envoy.Config.Core.V3.RoutingPriority.Default,
            MaxRetries = 0,
        });
        h.Server.SetResource(XdsTypeUrls.Cluster, "a", cluster);
        h.SetRoutes(RetryRoute("unavailable", 2));
        Assert.Equal("a", await h.CallAsync());
        var backend = h.Backends["a"];
        backend.FailuresLeft = 1;
        backend.Failure = StatusCode.Unavailable;

        // Act
        var failure = await Assert.ThrowsAsync<RpcException>(h.CallAsync);

        // Assert: one attempt only.
        Assert.Equal(StatusCode.Unavailable, failure.StatusCode);
        Assert.Equal(2, backend.Calls);
    }

    [Fact]
    public async Task Call_RouteMaxStreamDuration_SlowCallFailsDeadlineExceeded()
    {
        // Arrange: the backend holds every call; the route caps calls at 300 ms; the call sets no deadline of its own.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(TimedRoute(maxStreamDuration: TimeSpan.FromMilliseconds(300), headerMax: null));
        Assert.Equal("a", await h.CallAsync());
        h.Backends["a"].Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Act: without the cap the call would wait until the test's own 30 s safety cancels it (CANCELLED).
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var failure = await Assert.ThrowsAsync<RpcException>(async () => await h.Client.HelloAsync(new HelloRequest(), cancellationToken: safety.Token));

        // Assert
        Assert.Equal(StatusCode.DeadlineExceeded, failure.StatusCode);
        Assert.False(safety.IsCancellationRequested);
    }

    [Fact]
    public async Task Call_RouteGrpcTimeoutHeaderMax_CapsACallWithoutDeadline()
    {
        // Arrange: grpc_timeout_header_max replaces max_stream_duration (here 0 = none) as the cap.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(TimedRoute(maxStreamDuration: TimeSpan.Zero, headerMax: TimeSpan.FromMilliseconds(300)));
        Assert.Equal("a", await h.CallAsync());
        h.Backends["a"].Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Act
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var failure = await Assert.ThrowsAsync<RpcException>(async () => await h.Client.HelloAsync(new HelloRequest(), cancellationToken: safety.Token));

        // Assert
        Assert.Equal(StatusCode.DeadlineExceeded, failure.StatusCode);
        Assert.False(safety.IsCancellationRequested);
    }

    [Fact]
    public async Task Call_ListenerMaxStreamDuration_AppliesToRoutesWithoutTheirOwn()
    {
        // Arrange: the connection manager's common_http_protocol_options.max_stream_duration is the default cap.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        var listener = ApiListener(XdsChannelHarness.Listener, XdsChannelHarness.RouteConfigName);
        var hcm = listener.ApiListener.ApiListener_.Unpack<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager>();
        hcm.CommonHttpProtocolOptions = new Envoy.Config.Core.V3.HttpProtocolOptions { MaxStreamDuration = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)) };
        listener.ApiListener.ApiListener_ = Any.Pack(hcm);
        h.Server.SetResource(XdsTypeUrls.Listener, XdsChannelHarness.Listener, listener);
        h.SetRoutes(PrefixRoute("/", "a"));
        Assert.Equal("a", await h.CallAsync());
        h.Backends["a"].Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Act
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var failure = await Assert.ThrowsAsync<RpcException>(async () => await h.Client.HelloAsync(new HelloRequest(), cancellationToken: safety.Token));

        // Assert
        Assert.Equal(StatusCode.DeadlineExceeded, failure.StatusCode);
        Assert.False(safety.IsCancellationRequested);
    }

    [Fact]
    public async Task Call_RouteCapAndNoCallDeadline_ServerReceivesTheCapAsGrpcTimeout()
    {
        // Arrange: a 5 s cap; the call sets no deadline, so grpc-dotnet sends no grpc-timeout of its own.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(TimedRoute(maxStreamDuration: TimeSpan.FromSeconds(5), headerMax: null));

        // Act
        await h.Client.HelloAsync(new HelloRequest());
        var after = DateTime.UtcNow;

        // Assert: the server was told a deadline, at most the cap after the call.
        var deadline = h.Backends["a"].LastDeadline;
        Assert.NotEqual(DateTime.MaxValue, deadline);
        Assert.True(deadline <= after.AddSeconds(5), $"{deadline:O} is more than 5 s after {after:O}");
    }

    [Fact]
    public async Task Call_OwnDeadlineShorterThanTheCap_GrpcTimeoutLeftAsTheCallSetIt()
    {
        // Arrange: a 60 s cap; the call's own deadline is about 10 s.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(TimedRoute(maxStreamDuration: TimeSpan.FromSeconds(60), headerMax: null));

        // Act
        await h.CallAsync();
        var after = DateTime.UtcNow;

        // Assert: the call's own (shorter) deadline reached the server, not the cap's 60 s.
        var deadline = h.Backends["a"].LastDeadline;
        Assert.True(deadline <= after.AddSeconds(10), $"{deadline:O} is more than 10 s after {after:O}");
    }

    [Fact]
    public async Task Call_NoRouteCap_NoGrpcTimeoutIsAdded()
    {
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(PrefixRoute("/", "a"));

        await h.Client.HelloAsync(new HelloRequest());

        Assert.Equal(DateTime.MaxValue, h.Backends["a"].LastDeadline);
    }

    [Fact]
    public async Task Call_RouteMaxStreamDurationLongerThanTheCall_CallSucceeds()
    {
        // Arrange: a 10 s cap does not touch a call that answers at once.
        await using var h = await XdsChannelHarness.StartAsync(["a"]);
        h.SetRoutes(TimedRoute(maxStreamDuration: TimeSpan.FromSeconds(10), headerMax: null));

        // Act
        var counts = await h.CountAsync(5);

        // Assert
        Assert.Equal(5, counts.GetValueOrDefault("a"));
    }

    private static async Task PublishTwoEndpointClusterAsync(XdsChannelHarness h, bool outlierDetection)
    {
        var cluster = EdsCluster("a");
        if (outlierDetection)
        {
            cluster.OutlierDetection = new OutlierDetection
            {
                Consecutive5Xx = 3,
                EnforcingConsecutive5Xx = 100,
                Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)),
                BaseEjectionTime = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
                MaxEjectionPercent = 50,
            };
        }

        h.Server.SetResource(XdsTypeUrls.Cluster, "a", cluster);
        h.Server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "a",
            Assignment("a", ("127.0.0.1", h.Backends["good"].Port), ("127.0.0.1", h.Backends["bad"].Port)));
        h.SetRoutes(PrefixRoute("/", "a"));
        await Eventually.TrueAsync(async () => (await h.CountAsync(4)).Count == 2, TimeSpan.FromSeconds(10), "both endpoints have a ready connection");
    }

    private static async Task<(int Served, int Failed)> CallManyAsync(XdsChannelHarness h, int calls)
    {
        var served = 0;
        var failed = 0;
        for (var i = 0; i < calls; i++)
        {
            try
            {
                await h.CallAsync();
                served++;
            }
            catch (RpcException)
            {
                failed++;
            }
        }

        return (served, failed);
    }

    private static Route RetryRoute(string retryOn, uint numRetries)
    {
        var route = PrefixRoute("/", "a");
        route.Route_.RetryPolicy = new RetryPolicy
        {
            RetryOn = retryOn,
            NumRetries = numRetries,
            RetryBackOff = new RetryPolicy.Types.RetryBackOff { BaseInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(5)) },
        };
        return route;
    }

    private static Route TimedRoute(TimeSpan? maxStreamDuration, TimeSpan? headerMax)
    {
        var route = PrefixRoute(HelloPath, "a");
        route.Route_.MaxStreamDuration = new RouteAction.Types.MaxStreamDuration();
        if (maxStreamDuration is { } max)
        {
            route.Route_.MaxStreamDuration.MaxStreamDuration_ = Duration.FromTimeSpan(max);
        }

        if (headerMax is { } header)
        {
            route.Route_.MaxStreamDuration.GrpcTimeoutHeaderMax = Duration.FromTimeSpan(header);
        }

        return route;
    }
}
