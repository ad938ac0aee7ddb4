using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Lodestar.Grpc.Tests.Infrastructure;
using Lodestar.Grpc.Tests.Protos;
using Lodestar.Health;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Lodestar.Grpc.Tests.Health;

/// <summary>
/// Active health checks over <c>grpc.health.v1.Health/Check</c> against real Grpc.AspNetCore servers, on both
/// integrations; the check cadence runs on a fake clock, one round per advance.
/// </summary>
public sealed class GrpcHealthCheckTests
{
    private const string Service = "echo";
    private const string HealthName = "lodestar.tests.Echo";
    private const string HandlerClient = "echo-handler";
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(7);

    private static ServiceProvider Build(ArmingTimeProvider clock, IReadOnlyList<HealthBackend> backends, CapturingLoggerProvider? logs = null)
    {
        var values = new Dictionary<string, string?>
        {
            [$"Lodestar:Services:{Service}:HealthChecks:Enabled"] = "true",
            [$"Lodestar:Services:{Service}:HealthChecks:Protocol"] = "Grpc",
            [$"Lodestar:Services:{Service}:HealthChecks:GrpcServiceName"] = HealthName,
            [$"Lodestar:Services:{Service}:HealthChecks:Interval"] = Interval.ToString(),
            [$"Lodestar:Services:{Service}:HealthChecks:IntervalJitter"] = "00:00:00",
            [$"Lodestar:Services:{Service}:HealthChecks:Timeout"] = "00:00:02",
            [$"Lodestar:Services:{Service}:HealthChecks:UnhealthyThreshold"] = "3",
            [$"Lodestar:Services:{Service}:HealthChecks:HealthyThreshold"] = "2",
            [$"Lodestar:Services:{Service}:OutlierDetection:Enabled"] = "false",
        };
        for (var i = 0; i < backends.Count; i++)
        {
            values[$"Lodestar:Services:{Service}:Endpoints:{i}"] = backends[i].Address;
        }

        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
        services.AddLogging(b =>
        {
            if (logs is not null)
            {
                b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
            }
        });
        services.AddSingleton<TimeProvider>(clock);
        services.AddLodestarGrpc();
        services.AddHttpClient(HandlerClient).AddLodestar();
        var provider = services.BuildServiceProvider();
        provider.GetRequiredService<IStartupValidator>().Validate();
        return provider;
    }

    private static Echo.EchoClient BalancedClient(ServiceProvider provider, List<GrpcChannel> channels)
    {
        var options = new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure }.UseLodestar(provider);
        var channel = GrpcChannel.ForAddress($"lodestar:///{Service}", options);
        channels.Add(channel);
        return new Echo.EchoClient(channel);
    }

    private static Echo.EchoClient HandlerPathClient(ServiceProvider provider, List<GrpcChannel> channels)
    {
        var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient(HandlerClient);
        var channel = GrpcChannel.ForAddress($"http://{Service}", new GrpcChannelOptions { HttpClient = http, DisposeHttpClient = true });
        channels.Add(channel);
        return new Echo.EchoClient(channel);
    }

    private static async Task<int> CallsToAsync(Echo.EchoClient client, HealthBackend backend, int calls)
    {
        var before = backend.Calls;
        for (var i = 0; i < calls; i++)
        {
            await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        }

        return backend.Calls - before;
    }

    /// <summary>Waits for the rounds that follow the stage's creation: one over no endpoints yet, one over the set.</summary>
    private static async Task FirstRoundAsync(ArmingTimeProvider clock)
    {
        await clock.WaitArmedAsync();
        await clock.WaitArmedAsync();
    }

    /// <summary>Runs one round of checks: advances the clock by the interval and waits until the next round is armed.</summary>
    private static async Task RoundAsync(ArmingTimeProvider clock)
    {
        clock.Advance(Interval);
        await clock.WaitArmedAsync();
    }

    public static TheoryData<bool> Integrations => new() { true, false };

    [Theory]
    [MemberData(nameof(Integrations))]
    public async Task GrpcChecks_NotServingForTheServiceName_OutAfterUnhealthyThresholdNoCallsBackAfterHealthyThreshold(bool balancerPath)
    {
        // Arrange
        var clock = new ArmingTimeProvider(Interval);
        await using var good = await HealthBackend.StartAsync("good");
        await using var sick = await HealthBackend.StartAsync("sick");
        good.Health.SetStatus(HealthName, ServingStatus.Serving);
        sick.Health.SetStatus(HealthName, ServingStatus.Serving);
        sick.Health.SetStatus(string.Empty, ServingStatus.Serving);
        await using var provider = Build(clock, [good, sick]);
        var channels = new List<GrpcChannel>();
        var client = balancerPath ? BalancedClient(provider, channels) : HandlerPathClient(provider, channels);
        await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        await FirstRoundAsync(clock);
        var balanced = await provider.GetRequiredService<IServiceBalancing>().GetServiceAsync(Service);
        var state = balanced.Endpoints.Single(e => e.Endpoint.Address == sick.Address);

        // Act: the instance says NOT_SERVING for the configured name (the server as a whole still serves).
        sick.Health.SetStatus(HealthName, ServingStatus.NotServing);
        var checksBefore = sick.Checks(HealthName);
        var routableAfterFailures = new List<bool>();
        for (var i = 0; i < 3; i++)
        {
            await RoundAsync(clock);
            routableAfterFailures.Add(balanced.Routable.Contains(state));
        }

        var failedChecks = sick.Checks(HealthName) - checksBefore;
        var callsWhileOut = await CallsToAsync(client, sick, 20);

        sick.Health.SetStatus(HealthName, ServingStatus.Serving);
        var routableAfterPasses = new List<bool>();
        for (var i = 0; i < 2; i++)
        {
            await RoundAsync(clock);
            routableAfterPasses.Add(balanced.Routable.Contains(state));
        }

        var callsAfterReturn = await CallsToAsync(client, sick, 20);
        foreach (var channel in channels)
        {
            channel.Dispose();
        }

        // Assert
        Assert.Equal(3, failedChecks);
        Assert.Equal([true, true, false], routableAfterFailures);
        Assert.Equal(0, callsWhileOut);
        Assert.Equal([false, true], routableAfterPasses);
        Assert.True(callsAfterReturn > 0, "the instance takes calls again once it is back");
        Assert.Equal(0, sick.Checks(string.Empty));
    }

    [Fact]
    public async Task GrpcChecks_ServerWithoutHealthService_UnhealthyWithUnimplemented()
    {
        // Arrange
        var clock = new ArmingTimeProvider(Interval);
        var logs = new CapturingLoggerProvider();
        await using var good = await HealthBackend.StartAsync("good");
        await using var bare = await HealthBackend.StartAsync("bare", withHealthService: false);
        good.Health.SetStatus(HealthName, ServingStatus.Serving);
        await using var provider = Build(clock, [good, bare], logs);
        var channels = new List<GrpcChannel>();
        var client = BalancedClient(provider, channels);
        await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        await FirstRoundAsync(clock);
        var balanced = await provider.GetRequiredService<IServiceBalancing>().GetServiceAsync(Service);
        var state = balanced.Endpoints.Single(e => e.Endpoint.Address == bare.Address);

        // Act: two more rounds make three failed checks in a row.
        await RoundAsync(clock);
        await RoundAsync(clock);
        var callsWhileOut = await CallsToAsync(client, bare, 10);
        foreach (var channel in channels)
        {
            channel.Dispose();
        }

        // Assert
        Assert.False(state.IsActiveHealthy);
        Assert.DoesNotContain(state, balanced.Routable);
        Assert.Equal(0, callsWhileOut);
        Assert.Contains($"{bare.Address} of service {Service} failed: UNIMPLEMENTED", logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GrpcChecks_HealthServiceNeverAnswers_EachCheckFailsAtTheTimeout()
    {
        // Arrange
        var clock = new ArmingTimeProvider(Interval);
        var logs = new CapturingLoggerProvider();
        await using var good = await HealthBackend.StartAsync("good");
        await using var stuck = await HealthBackend.StartAsync("stuck");
        good.Health.SetStatus(HealthName, ServingStatus.Serving);
        stuck.Health.SetStatus(HealthName, ServingStatus.Serving);
        await using var provider = Build(clock, [good, stuck], logs);
        var channels = new List<GrpcChannel>();
        var client = BalancedClient(provider, channels);
        await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        await FirstRoundAsync(clock);
        var balanced = await provider.GetRequiredService<IServiceBalancing>().GetServiceAsync(Service);
        var state = balanced.Endpoints.Single(e => e.Endpoint.Address == stuck.Address);

        // Act: three rounds whose check of the stuck instance reaches it, then hangs until the 2 s timeout elapses.
        stuck.HangChecks = true;
        var routable = new List<bool>();
        for (var i = 1; i <= 3; i++)
        {
            var before = stuck.Checks(HealthName);
            clock.Advance(Interval);
            await Eventually.TrueAsync(() => stuck.Checks(HealthName) == before + 1, TimeSpan.FromSeconds(10), $"check {i} reached the server");
            clock.Advance(TimeSpan.FromSeconds(2));
            await clock.WaitArmedAsync();
            routable.Add(balanced.Routable.Contains(state));
        }

        foreach (var channel in channels)
        {
            channel.Dispose();
        }

        // Assert
        Assert.Equal([true, true, false], routable);
        Assert.Contains($"{stuck.Address} of service {Service} failed: timeout after 2000 ms", logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GrpcChecks_EndpointLeaves_ItsChannelIsDisposed()
    {
        // Arrange
        await using var backend = await HealthBackend.StartAsync("b");
        backend.Health.SetStatus(string.Empty, ServingStatus.Serving);
        var endpoint = Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port);
        using var probe = new Lodestar.Grpc.Health.Internal.GrpcHealthProbe(new HealthCheckOptions { Protocol = HealthCheckProtocols.Grpc });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // Act: three probes, then the endpoint leaves, then it is probed again as a new endpoint.
        var results = new List<HealthProbeResult>();
        for (var i = 0; i < 3; i++)
        {
            results.Add(await probe.ProbeAsync(endpoint, cts.Token));
        }

        var channelsWhileKnown = probe.ChannelCount;
        var connectionsWhileKnown = backend.Connections;
        probe.ReleaseEndpoint(endpoint);
        var channelsAfterRelease = probe.ChannelCount;
        await probe.ProbeAsync(endpoint, cts.Token);

        // Assert: one channel and one connection served the three probes; the next one needed a new connection.
        Assert.All(results, r => Assert.Same(HealthProbeResult.Healthy, r));
        Assert.Equal(4, backend.Checks(string.Empty));
        Assert.Equal(1, channelsWhileKnown);
        Assert.Equal(1, connectionsWhileKnown);
        Assert.Equal(0, channelsAfterRelease);
        Assert.Equal(2, backend.Connections);
    }

    [Theory]
    [InlineData(ServingStatus.NotServing, "NOT_SERVING")]
    [InlineData(ServingStatus.ServiceUnknown, "SERVICE_UNKNOWN")]
    [InlineData(ServingStatus.Unknown, "UNKNOWN")]
    public async Task Probe_StatusOtherThanServing_UnhealthyNamingTheStatusAndService(ServingStatus status, string expected)
    {
        // Arrange
        await using var backend = await HealthBackend.StartAsync("b");
        backend.Health.SetStatus(HealthName, status);
        backend.Health.SetStatus(string.Empty, ServingStatus.Serving);
        using var probe = CreateProbe(HealthName);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // Act
        var result = await probe.ProbeAsync(Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port), cts.Token);

        // Assert
        Assert.False(result.IsHealthy);
        Assert.StartsWith(expected + ":", result.Reason, StringComparison.Ordinal);
        Assert.Contains($"'{HealthName}'", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_ServerEchoesACredentialInItsError_ReasonNamesTheStatusWithoutTheCredential()
    {
        // Arrange
        await using var backend = await HealthBackend.StartAsync("b");
        backend.FailChecksWith = new Status(StatusCode.PermissionDenied, "rejected Authorization: Bearer sekret-token-123");
        using var probe = CreateProbe(string.Empty);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // Act
        var result = await probe.ProbeAsync(Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port), cts.Token);

        // Assert
        Assert.False(result.IsHealthy);
        Assert.StartsWith("PERMISSION_DENIED: rejected", result.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("sekret-token-123", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_SameFailingStatusTwice_ReturnsTheSameResultInstance()
    {
        // Arrange
        await using var backend = await HealthBackend.StartAsync("b");
        backend.Health.SetStatus(HealthName, ServingStatus.NotServing);
        using var probe = CreateProbe(HealthName);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var endpoint = Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port);

        // Act
        var first = await probe.ProbeAsync(endpoint, cts.Token);
        var second = await probe.ProbeAsync(endpoint, cts.Token);

        // Assert: the request and the known failures are built once per probe, not per check.
        Assert.False(first.IsHealthy);
        Assert.Same(first, second);
    }

    [Fact]
    public async Task Probe_EmptyServiceName_AsksAboutTheServerAsAWhole()
    {
        // Arrange
        await using var backend = await HealthBackend.StartAsync("b");
        backend.Health.SetStatus(string.Empty, ServingStatus.Serving);
        backend.Health.SetStatus(HealthName, ServingStatus.NotServing);
        using var probe = CreateProbe(string.Empty);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // Act
        var result = await probe.ProbeAsync(Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port), cts.Token);

        // Assert
        Assert.True(result.IsHealthy);
        Assert.Equal(1, backend.Checks(string.Empty));
        Assert.Equal(0, backend.Checks(HealthName));
    }

    [Fact]
    public async Task Probe_NameTheHealthServiceDoesNotKnow_UnhealthyWithNotFound()
    {
        // Arrange: Grpc.HealthCheck answers NOT_FOUND for a name it has no status for, as the protocol says.
        await using var backend = await HealthBackend.StartAsync("b");
        using var probe = CreateProbe("nobody.Knows");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // Act
        var result = await probe.ProbeAsync(Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port), cts.Token);

        // Assert
        Assert.False(result.IsHealthy);
        Assert.Equal("NOT_FOUND: the health service does not know service 'nobody.Knows'", result.Reason);
    }

    [Fact]
    public async Task Probe_NothingListens_UnhealthyWithUnavailable()
    {
        // Arrange: a port that was just free.
        var port = LoopbackPorts.Free(1)[0];
        using var probe = CreateProbe(string.Empty);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // Act
        var result = await probe.ProbeAsync(Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", port), cts.Token);

        // Assert
        Assert.False(result.IsHealthy);
        Assert.StartsWith("UNAVAILABLE", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Probe_HttpsEndpoint_SpeaksTlsAndValidatesTheCertificate()
    {
        // Arrange: a TLS-only server whose certificate chains to a test authority nobody trusts.
        using var authority = TestCertificates.CreateAuthority();
        using var certificate = TestCertificates.CreateServer(authority, dnsNames: ["localhost"]);
        await using var backend = await HealthBackend.StartAsync("tls", certificate: certificate);
        backend.Health.SetStatus(string.Empty, ServingStatus.Serving);
        using var probe = CreateProbe(string.Empty);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        // Act
        var result = await probe.ProbeAsync(Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port, "https"), cts.Token);

        // Assert: the probe connected and began a TLS handshake, whose untrusted certificate failed the check before any call.
        Assert.False(result.IsHealthy);
        Assert.Contains("SSL connection could not be established", result.Reason, StringComparison.Ordinal);
        Assert.Equal(1, backend.Connections);
        Assert.Equal(0, backend.Checks(string.Empty));
    }

    [Fact]
    public async Task Probe_Cancelled_UnhealthyWithCancelled()
    {
        // Arrange
        await using var backend = await HealthBackend.StartAsync("b");
        using var probe = CreateProbe(string.Empty);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        // Act
        var result = await probe.ProbeAsync(Lodestar.Endpoints.DiscoveredEndpoint.Create("127.0.0.1", backend.Port), cts.Token);

        // Assert: the checker reports this as a timeout when its timeout fired.
        Assert.False(result.IsHealthy);
        Assert.StartsWith("CANCELLED", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AddLodestarGrpc_CalledTwice_RegistersTheGrpcProbeOnce()
    {
        // Arrange
        var services = new ServiceCollection();

        // Act
        services.AddLodestarGrpc();
        services.AddLodestarGrpc();
        await using var provider = services.BuildServiceProvider();

        // Assert
        var factory = Assert.Single(provider.GetServices<HealthProbeFactory>());
        Assert.Equal(HealthCheckProtocols.Grpc, factory.Protocol);
    }

    private static Lodestar.Grpc.Health.Internal.GrpcHealthProbe CreateProbe(string serviceName)
        => new(new HealthCheckOptions { Protocol = HealthCheckProtocols.Grpc, GrpcServiceName = serviceName });
}
