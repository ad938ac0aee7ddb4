using Lodestar.Health;
using Lodestar.Testing;
using Lodestar.Tests.Resilience;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Tests.Health;

public sealed class HealthProbeTests
{
    private const string A = "127.0.0.1:9101";
    private const string B = "127.0.0.1:9102";
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static ResilienceTestHost Host(ScriptedProbeFactory factory, FakeTimeProvider clock, string protocol = ScriptedProbeFactory.Name, int unhealthy = 3, int healthy = 2)
        => ResilienceTestHost.Create(o =>
        {
            o.HealthChecks.Enabled = true;
            o.HealthChecks.Protocol = protocol;
            o.HealthChecks.Interval = Interval;
            o.HealthChecks.IntervalJitter = TimeSpan.Zero;
            o.HealthChecks.Timeout = TimeSpan.FromSeconds(1);
            o.HealthChecks.UnhealthyThreshold = unhealthy;
            o.HealthChecks.HealthyThreshold = healthy;
            o.OutlierDetection.Enabled = false;
        }, clock, services: s => s.TryAddEnumerable(ServiceDescriptor.Singleton<HealthProbeFactory>(factory)));

    /// <summary>Waits until every endpoint was probed at least once and no round is in flight, then returns the counts.</summary>
    private static async Task<(int A, int B)> SettleAsync(ScriptedProbeFactory factory)
    {
        await Eventually.TrueAsync(() => factory.Created.Count == 1 && factory.Single.Probes(A) > 0 && factory.Single.Probes(B) > 0, Wait, "the first round probes both endpoints");
        var probe = factory.Single;
        return (probe.Probes(A), probe.Probes(B));
    }

    /// <summary>
    /// Moves the clock one interval once the checker has armed its next round. It re-arms only after a round has
    /// published its results, so a move made as soon as they show could come before that and be lost.
    /// </summary>
    private static async Task NextRoundAsync(CheckerClock clock)
    {
        await Eventually.TrueAsync(() => clock.NextRoundArmed, Wait, "the checker armed its next round");
        clock.Advance(Interval);
    }

    [Fact]
    public async Task Protocol_RegisteredProbe_ProbesEveryEndpointOncePerInterval()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        var clock = new CheckerClock();
        await using var host = Host(factory, clock, protocol: "scripted");
        host.SetEndpoints(A, B);
        await host.GetBalancerAsync();
        var (a0, b0) = await SettleAsync(factory);

        // Act
        for (var i = 0; i < 3; i++)
        {
            await NextRoundAsync(clock);
        }

        // Assert: the protocol name matched without regard to case, and each interval probed each endpoint once.
        var probe = factory.Single;
        await Eventually.TrueAsync(() => probe.Probes(A) == a0 + 3 && probe.Probes(B) == b0 + 3, Wait, "three intervals, three probes each");
        Assert.Equal(ResilienceTestHost.Service, probe.ServiceName);
        Assert.Equal("scripted", probe.Options.Protocol);
    }

    [Fact]
    public async Task Protocol_ProbeSaysUnhealthy_EndpointLeavesAfterUnhealthyThresholdAndReturnsAfterHealthyThreshold()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        var clock = new CheckerClock();
        await using var host = Host(factory, clock, unhealthy: 3, healthy: 2);
        host.SetEndpoints(A, B);
        var balancer = await host.GetBalancerAsync();
        await SettleAsync(factory);
        var state = (await host.FindStateAsync(B))!;
        var probe = factory.Single;

        // Act: two failed probes leave it in, the third takes it out.
        factory.Answer(B, HealthProbeResult.Unhealthy("not serving"));
        var inAfter = new List<bool>();
        for (var i = 1; i <= 3; i++)
        {
            var before = probe.Probes(B);
            await NextRoundAsync(clock);
            await Eventually.TrueAsync(() => probe.Probes(B) == before + 1 && state.CheckFailures == i, Wait, $"failed probe {i} applied");
            inAfter.Add(balancer.Routable.Contains(state));
        }

        // Then one passing probe is not enough, the second brings it back.
        factory.Answer(B, HealthProbeResult.Healthy);
        var backAfter = new List<bool>();
        for (var i = 1; i <= 2; i++)
        {
            var before = probe.Probes(B);
            await NextRoundAsync(clock);
            await Eventually.TrueAsync(() => probe.Probes(B) == before + 1 && state.CheckSuccesses == i, Wait, $"passing probe {i} applied");
            backAfter.Add(balancer.Routable.Contains(state));
        }

        // Assert
        Assert.Equal([true, true, false], inAfter);
        Assert.Equal([false, true], backAfter);
        Assert.Contains("not serving", host.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Protocol_ProbeThrows_CountsAsFailedCheckWithTheExceptionMessage()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        var clock = new CheckerClock();
        await using var host = Host(factory, clock, unhealthy: 1);
        host.SetEndpoints(A, B);
        var balancer = await host.GetBalancerAsync();
        await SettleAsync(factory);
        var state = (await host.FindStateAsync(B))!;

        // Act
        factory.Answers[B] = _ => throw new InvalidOperationException("probe exploded");
        await NextRoundAsync(clock);

        // Assert
        await Eventually.TrueAsync(() => !state.IsActiveHealthy && !balancer.Routable.Contains(state), Wait, "a throwing probe fails the check");
        Assert.Contains("probe exploded", host.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Protocol_ReasonCarriesACredential_LogMasksIt()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        var clock = new CheckerClock();
        await using var host = Host(factory, clock, unhealthy: 1);
        host.SetEndpoints(A, B);
        var balancer = await host.GetBalancerAsync();
        await SettleAsync(factory);
        var state = (await host.FindStateAsync(B))!;

        // Act: a probe passes on what a server echoed.
        factory.Answer(B, HealthProbeResult.Unhealthy("denied: Authorization: Bearer sekret-token-123"));
        await NextRoundAsync(clock);

        // Assert
        await Eventually.TrueAsync(() => !balancer.Routable.Contains(state), Wait, "the failed check takes the endpoint out");
        Assert.Contains("denied: Authorization: Bearer ***", host.Logs.AllText, StringComparison.Ordinal);
        Assert.DoesNotContain("sekret-token-123", host.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Protocol_ProbeNeverAnswers_FailsWhenTheTimeoutElapses()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        var clock = new CheckerClock();
        await using var host = Host(factory, clock, unhealthy: 1);
        host.SetEndpoints(A, B);
        var balancer = await host.GetBalancerAsync();
        await SettleAsync(factory);
        var state = (await host.FindStateAsync(B))!;
        var probe = factory.Single;
        factory.Answers[B] = static async ct =>
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            return HealthProbeResult.Healthy;
        };

        // Act: the round starts and waits on B; the timeout (1 s) elapses on the fake clock.
        var before = probe.Probes(B);
        await NextRoundAsync(clock);
        await Eventually.TrueAsync(() => probe.Probes(B) == before + 1, Wait, "the hanging probe started");
        var healthyBeforeTimeout = state.IsActiveHealthy;
        clock.Advance(TimeSpan.FromSeconds(1));

        // Assert
        await Eventually.TrueAsync(() => !state.IsActiveHealthy && !balancer.Routable.Contains(state), Wait, "the timeout fails the check");
        Assert.True(healthyBeforeTimeout);
        Assert.Contains("timeout after", host.Logs.AllText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Protocol_HoldNewEndpoints_NewEndpointTakesNoTrafficUntilItsProbesPass()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        var clock = new CheckerClock();
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.HealthChecks.Enabled = true;
            o.HealthChecks.Protocol = ScriptedProbeFactory.Name;
            o.HealthChecks.Interval = Interval;
            o.HealthChecks.IntervalJitter = TimeSpan.Zero;
            o.HealthChecks.HoldNewEndpointsUntilHealthy = true;
            o.OutlierDetection.Enabled = false;
        }, clock, services: s => s.TryAddEnumerable(ServiceDescriptor.Singleton<HealthProbeFactory>(factory)));
        factory.Answer(B, HealthProbeResult.Unhealthy("not yet"));
        host.SetEndpoints(A, B);
        var balancer = await host.GetBalancerAsync();
        await SettleAsync(factory);
        var state = (await host.FindStateAsync(B))!;
        var other = (await host.FindStateAsync(A))!;

        // Both results applied: A (held too, as new) admitted by its pass, B's failure counted. Before A is admitted
        // both are held, and with no healthy endpoint the panic threshold routes to all of them.
        await Eventually.TrueAsync(() => balancer.Routable.Contains(other) && state.CheckFailures == 1, Wait, "the first round's results applied");
        var heldAfterFailedProbe = !balancer.Routable.Contains(state);

        // Act: it failed its first probe, so it is unhealthy and needs HealthyThreshold (2) passes, as in Envoy.
        factory.Answer(B, HealthProbeResult.Healthy);
        await NextRoundAsync(clock);
        await Eventually.TrueAsync(() => state.CheckSuccesses == 1, Wait, "one passing probe applied");
        var heldAfterOnePass = !balancer.Routable.Contains(state);
        await NextRoundAsync(clock);

        // Assert
        await Eventually.TrueAsync(() => balancer.Routable.Contains(state), Wait, "the second passing probe admits the endpoint");
        Assert.True(heldAfterFailedProbe);
        Assert.True(heldAfterOnePass);
    }

    [Fact]
    public async Task ReleaseEndpoint_EndpointLeavesTheSet_ProbeReleasesItAndIsDisposedWithTheStage()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        var clock = new FakeTimeProvider();
        var host = Host(factory, clock);
        host.SetEndpoints(A, B);
        await host.GetBalancerAsync();
        await SettleAsync(factory);
        var probe = factory.Single;

        // Act
        host.SetEndpoints(A);
        await Eventually.TrueAsync(() => probe.Released.Count > 0, Wait, "the departed endpoint is released");
        var disposedBefore = probe.Disposed;
        await host.DisposeAsync();

        // Assert
        Assert.Equal([B], probe.Released.Distinct());
        Assert.False(disposedBefore);
        Assert.True(probe.Disposed);
    }

    [Fact]
    public async Task Protocol_FactoryNamedHttp_ReplacesTheBuiltInProbe()
    {
        // Arrange
        var factory = new ScriptedProbeFactory(HealthCheckProtocols.Http);
        var clock = new FakeTimeProvider();
        await using var host = Host(factory, clock, protocol: HealthCheckProtocols.Http);
        host.SetEndpoints(A, B);

        // Act
        await host.GetBalancerAsync();

        // Assert: nothing listens on A or B; only the registered probe can have answered.
        await SettleAsync(factory);
        Assert.True((await host.FindStateAsync(A))!.IsActiveHealthy);
    }

    [Fact]
    public async Task Validate_ServiceChoosesGrpcWithoutTheGrpcPackage_FailsAtStartupNamingServiceAndWhatToAdd()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create(settings: new Dictionary<string, string?>
        {
            ["Lodestar:Services:orders:HealthChecks:Enabled"] = "true",
            ["Lodestar:Services:orders:HealthChecks:Protocol"] = "Grpc",
        });

        // Act
        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IStartupValidator>().Validate());

        // Assert
        Assert.Contains("service 'orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Protocol 'Grpc'", error.Message, StringComparison.Ordinal);
        Assert.Contains("AddLodestarGrpc()", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_ClientChoosesUnknownProtocol_FailsAtStartupNamingClientAndHowToRegisterOne()
    {
        // Arrange
        await using var host = ResilienceTestHost.Create(o => o.HealthChecks.Protocol = "Thrift");

        // Act
        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IStartupValidator>().Validate());

        // Assert
        Assert.Contains("client 'test'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Protocol 'Thrift'", error.Message, StringComparison.Ordinal);
        Assert.Contains(nameof(HealthProbeFactory), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_ServiceConfiguredInCodeChoosesGrpcWithoutTheGrpcPackage_FirstUseFailsNamingServiceAndWhatToAdd()
    {
        // Arrange: settings made in code are not under Lodestar:Services, so startup cannot see them.
        await using var host = ResilienceTestHost.Create(services: s => s.Configure<HealthCheckOptions>(ResilienceTestHost.Service, o =>
        {
            o.Enabled = true;
            o.Protocol = HealthCheckProtocols.Grpc;
        }));
        host.SetEndpoints(A);

        // Act
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.GetBalancerAsync());

        // Assert
        Assert.Contains("service 'orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("AddLodestarGrpc()", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_RegisteredProtocol_Passes()
    {
        // Arrange
        var factory = new ScriptedProbeFactory();
        await using var host = Host(factory, new FakeTimeProvider());

        // Act
        var error = Record.Exception(() => host.Services.GetRequiredService<IStartupValidator>().Validate());

        // Assert
        Assert.Null(error);
    }

    [Fact]
    public void Unhealthy_EmptyReason_Throws()
    {
        Assert.Throws<ArgumentException>(() => HealthProbeResult.Unhealthy(string.Empty));
        Assert.Throws<ArgumentNullException>(() => HealthProbeResult.Unhealthy(null!));
    }

    [Fact]
    public void Unhealthy_Reason_IsKeptAndHealthyHasNone()
    {
        var result = HealthProbeResult.Unhealthy("NOT_SERVING");

        Assert.False(result.IsHealthy);
        Assert.Equal("NOT_SERVING", result.Reason);
        Assert.True(HealthProbeResult.Healthy.IsHealthy);
        Assert.Null(HealthProbeResult.Healthy.Reason);
    }

    [Fact]
    public async Task ProbeAsync_NullEndpoint_Throws()
    {
        using var probe = new ScriptedProbeFactory().Create("svc", new HealthCheckOptions());

        await Assert.ThrowsAsync<ArgumentNullException>(async () => await probe.ProbeAsync(null!, CancellationToken.None));
        Assert.Throws<ArgumentNullException>(() => probe.ReleaseEndpoint(null!));
    }

    /// <summary>A fake clock that knows when the active health checker's next round falls due.</summary>
    private sealed class CheckerClock : FakeTimeProvider
    {
        private long _checkerDueTicks = long.MinValue;

        /// <summary>Gets whether the checker's timer is armed for a time still ahead: its next round waits for the clock.</summary>
        public bool NextRoundArmed => Volatile.Read(ref _checkerDueTicks) > GetUtcNow().UtcTicks;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            return state is Lodestar.Health.Internal.ActiveHealthChecker ? new Watched(timer, this) : timer;
        }

        private sealed class Watched(ITimer inner, CheckerClock clock) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    Volatile.Write(ref clock._checkerDueTicks, (clock.GetUtcNow() + dueTime).UtcTicks);
                }

                return inner.Change(dueTime, period);
            }

            public void Dispose() => inner.Dispose();

            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }

    [Fact]
    public void Protocol_Default_IsHttpAndGrpcServiceNameIsEmpty()
    {
        var options = new HealthCheckOptions();

        Assert.Equal(HealthCheckProtocols.Http, options.Protocol);
        Assert.Equal(string.Empty, options.GrpcServiceName);
    }
}
