using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Consul;

namespace Lodestar.Consul.Tests.Hostile;

/// <summary>
/// A client following service <c>orders</c> (one instance, port 7001) through the real wiring, parked in a blocking query,
/// ready for the agent to answer its next query with a fault.
/// </summary>
internal sealed class HostileScenario : IAsyncDisposable
{
    public const string HealthPath = "/v1/health/service/orders";

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private HostileScenario(FakeConsulAgent agent, ConsulClientHost host, ConsulClientHost.Watch watch)
    {
        Agent = agent;
        Host = host;
        Watch = watch;
    }

    public FakeConsulAgent Agent { get; }

    public ConsulClientHost Host { get; }

    public ConsulClientHost.Watch Watch { get; }

    /// <summary>Starts the agent and the client and waits until the client shows port 7001 and is parked.</summary>
    public static async Task<HostileScenario> StartAsync(Action<ConsulOptions>? configure = null)
    {
        var agent = await FakeConsulAgent.StartAsync();
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        var host = ConsulClientHost.Create(agent, configure);
        var scenario = new HostileScenario(agent, host, host.Follow("orders"));
        await Eventually.TrueAsync(() => scenario.Watch.Has(7001), Timeout, "the first set arrives");
        await scenario.ParkedAsync();
        return scenario;
    }

    /// <summary>Gets the ports of the current set, sorted.</summary>
    public int[] Ports => [.. Watch.Endpoints.Select(e => e.Port).Order()];

    /// <summary>Gets the index the last blocking query sent.</summary>
    public long? LastIndex => Agent.Requests.LastOrDefault(r => r.Path == HealthPath)?.Index;

    /// <summary>Waits until a blocking query is parked at the agent.</summary>
    public Task ParkedAsync() => Eventually.TrueAsync(() => Agent.ParkedQueries == 1, Timeout, "a blocking query is parked");

    /// <summary>
    /// Makes the client's next query meet <paramref name="fault"/>: the parked query is released (it answers the
    /// unchanged set), and the query after it takes the fault. Returns once the fault has been taken.
    /// </summary>
    public async Task InjectAsync(ConsulFault fault)
    {
        Agent.InjectHealthFault(fault);
        Agent.ReleaseParkedQueries();
        await Eventually.TrueAsync(() => Agent.PendingFaults == 0, Timeout, $"a query meets the fault ({fault})");
    }

    /// <summary>Waits until an error beyond the first <paramref name="before"/> arrives and returns it.</summary>
    public async Task<Exception> NextErrorAsync(int before)
    {
        await Eventually.TrueAsync(() => Watch.Errors.Count > before, Timeout, "the error is reported");
        return Watch.Errors[before];
    }

    /// <summary>Registers a second instance (port 7002) and waits until the client shows it beside 7001: the agent behaves again.</summary>
    public async Task RecoverAsync()
    {
        await ParkedAsync();
        Agent.Register("orders-7002", "orders", "127.0.0.1", 7002);
        await Eventually.TrueAsync(() => Ports.SequenceEqual([7001, 7002]), Timeout, "the client follows the agent again");
    }

    public async ValueTask DisposeAsync()
    {
        Watch.Dispose();
        await Host.DisposeAsync();
        await Agent.DisposeAsync();
    }
}
