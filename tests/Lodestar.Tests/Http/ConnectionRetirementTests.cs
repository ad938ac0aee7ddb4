using System.Net;
using Lodestar.Endpoints;
using Lodestar.Http.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Testing;
using Lodestar.Tests.Infrastructure;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.Http;

/// <summary>
/// When an endpoint leaves its service's set (from any source; here the configuration source), its in-flight requests
/// finish, no new request goes to it, and its pooled connections close once idle instead of after the 30 s idle timeout.
/// </summary>
public sealed class ConnectionRetirementTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EndpointLeavesConfiguration_ItsIdleConnectionsCloseAndTheOthersStay(bool http2)
    {
        // Arrange: two backends, both with pooled connections.
        await using var leaving = await TestBackend.StartAsync("leaving", http2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
        await using var staying = await TestBackend.StartAsync("staying", http2 ? HttpProtocols.Http2 : HttpProtocols.Http1);
        await using var client = LodestarClient.Create(http2: http2, services: QuietPeriod(TimeSpan.FromMilliseconds(300)));
        client.Configuration.SetEndpoints("orders", leaving.Url, staying.Url);
        var retirer = client.Services.GetRequiredService<ConnectionRetirer>();
        for (var i = 0; i < 20; i++)
        {
            using var response = await client.Http.GetAsync("http://orders/");
            response.EnsureSuccessStatusCode();
        }

        Assert.True(retirer.CountOpen(leaving.Address) > 0, "connections are opened through the tracking connect callback");
        Assert.True(retirer.CountOpen(staying.Address) > 0);

        // Act: the endpoint leaves the configuration.
        client.Configuration.SetEndpoints("orders", staying.Url);
        await Eventually.TrueAsync(() => retirer.IsRetired(leaving.Address), s_wait, "the address is retired");
        var servedBefore = leaving.Requests;
        for (var i = 0; i < 20; i++)
        {
            using var response = await client.Http.GetAsync("http://orders/");
            response.EnsureSuccessStatusCode();
        }

        // Assert
        await Eventually.TrueAsync(() => retirer.CountOpen(leaving.Address) == 0, s_wait,
            "pooled connections to the removed endpoint close once idle, long before the 30 s idle timeout");
        Assert.Equal(servedBefore, leaving.Requests);
        Assert.True(retirer.CountOpen(staying.Address) > 0, "connections to the endpoint that stayed are kept");
    }

    [Fact]
    public async Task EndpointLeavesWhileARequestWaitsForItsResponse_TheRequestFinishesThenTheConnectionCloses()
    {
        // Arrange: the leaving backend holds its request far longer than the quiet period.
        await using var leaving = await TestBackend.StartAsync("leaving", HttpProtocols.Http1);
        await using var staying = await TestBackend.StartAsync("staying", HttpProtocols.Http1);
        await using var client = LodestarClient.Create(services: QuietPeriod(TimeSpan.FromMilliseconds(100)));
        client.Configuration.SetEndpoints("orders", leaving.Url);
        var retirer = client.Services.GetRequiredService<ConnectionRetirer>();
        leaving.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = client.Http.GetAsync("http://orders/");
        await Eventually.TrueAsync(() => leaving.InFlight == 1, s_wait, "the request reaches the backend");

        // Act: the endpoint leaves while the request waits; ten quiet periods pass.
        client.Configuration.SetEndpoints("orders", staying.Url);
        await Eventually.TrueAsync(() => retirer.IsRetired(leaving.Address), s_wait, "the address is retired");
        await Task.Delay(TimeSpan.FromSeconds(1));

        // Assert: the waiting request kept its connection, and got its answer.
        Assert.False(held.IsCompleted, "the request is still waiting");
        Assert.Equal(1, retirer.CountOpen(leaving.Address));
        leaving.Gate.SetResult();
        using (var response = await held.WaitAsync(s_wait))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("leaving", response.Headers.GetValues("X-Instance").Single());
        }

        await Eventually.TrueAsync(() => retirer.CountOpen(leaving.Address) == 0, s_wait, "the connection closes once the request is done");
    }

    [Fact]
    public void OnSetChanged_AddressInTwoServices_IsRetiredOnlyWhenNoSetHoldsIt()
    {
        // Arrange
        var options = Options.Create(new LodestarOptions());
        var retirer = new ConnectionRetirer(TimeProvider.System, new StaticOptionsMonitor<LodestarOptions>(options.Value), NullLogger<ConnectionRetirer>.Instance);
        var shared = DiscoveredEndpoint.Create("10.0.0.1", 8080);
        var other = DiscoveredEndpoint.Create("10.0.0.2", 8080);
        var orders1 = Set("orders", 1, shared, other);
        var billing1 = Set("billing", 1, shared);

        // Act + Assert: the address leaves orders but billing still holds it.
        retirer.OnSetChanged(null, orders1);
        retirer.OnSetChanged(null, billing1);
        var orders2 = Set("orders", 2, other);
        retirer.OnSetChanged(orders1, orders2);
        Assert.False(retirer.IsRetired(shared.Address));

        // It leaves billing too: now no set holds it.
        var billing2 = Set("billing", 2);
        retirer.OnSetChanged(billing1, billing2);
        Assert.True(retirer.IsRetired(shared.Address));
        Assert.False(retirer.IsRetired(other.Address));

        // It comes back in orders: restored.
        retirer.OnSetChanged(orders2, Set("orders", 3, other, shared));
        Assert.False(retirer.IsRetired(shared.Address));
    }

    [Fact]
    public void Options_BoundFromConfiguration_AndANegativeQuietPeriodFailsNamingIt()
    {
        // Arrange
        static ServiceProvider Build(string quiet) => new ServiceCollection()
            .AddSingleton<IConfiguration>(new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?> { ["Lodestar:RetireRemovedConnections"] = "false", ["Lodestar:RetireQuietPeriod"] = quiet })
                .Build())
            .AddLogging()
            .AddLodestar().Services.BuildServiceProvider();
        using var good = Build("00:00:05");
        using var bad = Build("-00:00:01");

        // Act
        var options = good.GetRequiredService<IOptions<LodestarOptions>>().Value;
        var error = Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<IOptions<LodestarOptions>>().Value);

        // Assert
        Assert.False(options.RetireRemovedConnections);
        Assert.Equal(TimeSpan.FromSeconds(5), options.RetireQuietPeriod);
        Assert.Contains(error.Failures, f => f.Contains("RetireQuietPeriod", StringComparison.Ordinal) && f.Contains("-00:00:01", StringComparison.Ordinal));
    }

    [Fact]
    public void Track_StateLeavesWithARequestInFlight_KeptAwaitingUntilTheRequestEndsThenForgotten()
    {
        // Arrange: two stages hold the same address (two services, or two clients with different health settings).
        var retirer = new ConnectionRetirer(TimeProvider.System, new StaticOptionsMonitor<LodestarOptions>(new LodestarOptions()), NullLogger<ConnectionRetirer>.Instance);
        var endpoint = DiscoveredEndpoint.Create("10.0.0.1", 8080);
        var first = new EndpointState(endpoint, 0);
        var second = new EndpointState(endpoint, 0);
        retirer.Track([first, second], null);
        var counted = first.OnRequestStarted();

        // Act: the first stage drops the endpoint while its request waits for headers.
        first.Departed = true;
        retirer.Track(null, [first]);
        var awaitingWhileInFlight = retirer.IsAwaitingResponse(endpoint.Address);
        var statesWhileInFlight = retirer.CountStates(endpoint.Address);
        first.OnRequestCompleted(true, TimeSpan.Zero, counted);
        var awaitingAfter = retirer.IsAwaitingResponse(endpoint.Address);

        // Assert
        Assert.True(awaitingWhileInFlight);
        Assert.Equal(2, statesWhileInFlight);
        Assert.False(awaitingAfter);
        Assert.Equal(1, retirer.CountStates(endpoint.Address));
    }

    [Fact]
    public void Revive_AttemptStartsOnAStateAlreadyForgotten_ItsRequestCountsAgain()
    {
        var retirer = new ConnectionRetirer(TimeProvider.System, new StaticOptionsMonitor<LodestarOptions>(new LodestarOptions()), NullLogger<ConnectionRetirer>.Instance);
        var state = new EndpointState(DiscoveredEndpoint.Create("10.0.0.2", 8080), 0);
        retirer.Track([state], null);
        state.Departed = true;
        retirer.Track(null, [state]);
        var forgotten = retirer.CountStates(state.Endpoint.Address) == 0;

        state.OnRequestStarted();
        retirer.Revive(state);

        Assert.True(forgotten);
        Assert.True(retirer.IsAwaitingResponse(state.Endpoint.Address));
    }

    private static EndpointSet Set(string service, long version, params DiscoveredEndpoint[] endpoints)
        => EndpointSet.Create(service, "test", endpoints, version, DateTimeOffset.UnixEpoch);

    private static Action<IServiceCollection> QuietPeriod(TimeSpan period)
        => services => services.Configure<LodestarOptions>(o => o.RetireQuietPeriod = period);

    private sealed class StaticOptionsMonitor<T>(T value) : IOptionsMonitor<T>
    {
        public T CurrentValue => value;

        public T Get(string? name) => value;

        public IDisposable? OnChange(Action<T, string?> listener) => null;
    }
}
