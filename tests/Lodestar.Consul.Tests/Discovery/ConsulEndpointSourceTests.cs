using System.Diagnostics;
using Lodestar.Consul.Tests.Infrastructure;
using Lodestar.Registration;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Xunit.Abstractions;

namespace Lodestar.Consul.Tests.Discovery;

public sealed class ConsulEndpointSourceTests(ITestOutputHelper output)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Watch_InstanceRegisteredByAnotherClient_AppearsWellWithinOneSecond()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var watcherHost = ConsulClientHost.Create(agent);
        await using var registrarHost = ConsulClientHost.Create(agent);
        using var watch = watcherHost.Follow("orders");
        await Eventually.TrueAsync(() => watch.Current is not null, s_timeout, "the first (empty) set arrives");

        // Let the watcher's blocking query park at the agent.
        await Eventually.TrueAsync(() => agent.Requests.Count(r => r.Path == "/v1/health/service/orders" && r.Query.Contains("index=", StringComparison.Ordinal)) >= 1,
            s_timeout, "a blocking query is parked");
        var clock = Stopwatch.StartNew();
        await using var handle = await registrarHost.Registrar.RegisterAsync(
            new ServiceRegistration { ServiceName = "orders", Host = "127.0.0.1", Port = 5001, Ttl = TimeSpan.FromSeconds(2) }, CancellationToken.None);
        var registered = clock.Elapsed;
        await Eventually.TrueAsync(() => watch.Has(5001), s_timeout, "the registered instance appears");
        var seen = clock.Elapsed;

        output.WriteLine($"registration call took {registered.TotalMilliseconds:0.0} ms; visible to the other client {seen.TotalMilliseconds:0.0} ms after the call started");
        Assert.True(seen < TimeSpan.FromSeconds(1), $"took {seen.TotalMilliseconds} ms");
    }

    [Fact]
    public async Task Watch_EntryDetails_MapWeightsMetadataZoneAndNodeAddressFallback()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.NodeMeta["rack"] = "r7";
        agent.Register("orders-1", "orders", address: null, port: 7001, tags: ["v2", "blue"],
            meta: new() { ["zone"] = "eu-1a", ["version"] = "2.3" }, passingWeight: 7);
        agent.Register("orders-2", "orders", address: "127.0.0.2", port: 7002);
        await using var host = ConsulClientHost.Create(agent);

        var set = await host.Resolver.GetEndpointsAsync("orders", "consul");

        var first = Assert.Single(set.Endpoints, e => e.Port == 7001);
        Assert.Equal("127.0.0.1", first.Host); // Service.Address empty: Node.Address
        Assert.Equal(7, first.Weight);
        Assert.Equal("eu-1a", first.Zone);
        Assert.Equal("2.3", first.Metadata["version"]);
        Assert.Equal("r7", first.Metadata["consul.node-meta.rack"]);
        Assert.Equal("fake-node", first.Metadata["consul.node"]);
        Assert.Equal("dc1", first.Metadata["consul.datacenter"]);
        Assert.Equal("orders-1", first.Metadata["consul.service-id"]);
        Assert.Equal("v2,blue", first.Metadata["consul.tags"]);
        Assert.Equal("127.0.0.2", Assert.Single(set.Endpoints, e => e.Port == 7002).Host);
    }

    [Fact]
    public async Task Watch_PassingOnly_LeavesOutWarningAndCritical()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        agent.Register("b", "orders", "127.0.0.1", 7002, status: "warning");
        agent.Register("c", "orders", "127.0.0.1", 7003, status: "critical");
        await using var host = ConsulClientHost.Create(agent);

        var set = await host.Resolver.GetEndpointsAsync("orders", "consul");

        Assert.Equal([7001], set.Endpoints.Select(e => e.Port));
        Assert.Contains(agent.Requests, r => r.Path == "/v1/health/service/orders" && r.Query.Contains("passing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_PassingOnlyOff_IncludesWarningWithWarningWeight()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001, passingWeight: 10, warningWeight: 2);
        agent.Register("b", "orders", "127.0.0.1", 7002, passingWeight: 10, warningWeight: 2, status: "warning");
        agent.Register("c", "orders", "127.0.0.1", 7003, status: "critical");
        await using var host = ConsulClientHost.Create(agent, o => o.PassingOnly = false);

        var set = await host.Resolver.GetEndpointsAsync("orders", "consul");

        Assert.Equal(10, Assert.Single(set.Endpoints, e => e.Port == 7001).Weight);
        Assert.Equal(2, Assert.Single(set.Endpoints, e => e.Port == 7002).Weight);
        Assert.DoesNotContain(set.Endpoints, e => e.Port == 7003);
    }

    [Fact]
    public async Task Watch_TagsAndDatacenter_SentAsQueryAndFilter()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001, tags: ["v2", "blue"]);
        agent.Register("b", "orders", "127.0.0.1", 7002, tags: ["v2"]);
        await using var host = ConsulClientHost.Create(agent, o =>
        {
            o.Tags.Add("v2");
            o.Tags.Add("blue");
            o.Datacenter = "dc1";
        });

        var set = await host.Resolver.GetEndpointsAsync("orders", "consul");

        Assert.Equal([7001], set.Endpoints.Select(e => e.Port));
        Assert.Contains(agent.Requests, r => r.Query.Contains("tag=v2&tag=blue", StringComparison.Ordinal) && r.Query.Contains("dc=dc1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_UnknownDatacenter_ReportsErrorNamingTheAgent()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        await using var host = ConsulClientHost.Create(agent, o => o.Datacenter = "mars");
        using var watch = host.Follow("orders");

        await Eventually.TrueAsync(() => watch.Errors.Count > 0, s_timeout, "the error is reported");

        Assert.Contains(agent.Address, watch.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("No path to datacenter", watch.Errors[0].Message, StringComparison.Ordinal);
        Assert.Null(watch.Current);
    }

    [Fact]
    public async Task Watch_ChangesWhileBlocked_FollowsAddAndRemove()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var host = ConsulClientHost.Create(agent);
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001), s_timeout, "a appears");

        agent.Register("b", "orders", "127.0.0.1", 7002);
        await Eventually.TrueAsync(() => watch.Has(7002), s_timeout, "b appears");
        agent.Deregister("a");
        await Eventually.TrueAsync(() => !watch.Has(7001), s_timeout, "a leaves");
        agent.SetStatus("b", "critical");
        await Eventually.TrueAsync(() => watch.Current!.Count == 0, s_timeout, "critical b leaves");

        var blocking = agent.Requests.Where(r => r.Path == "/v1/health/service/orders").Skip(1).ToList();
        Assert.All(blocking, r => Assert.Matches("index=[1-9][0-9]*&wait=5s", r.Query));
    }

    [Fact]
    public async Task Watch_IndexGoesBackwards_ResetsWithoutSpinningAndKeepsFollowing()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        agent.Register("filler-1", "billing", "127.0.0.1", 9001);
        agent.Register("filler-2", "billing", "127.0.0.1", 9002);
        await using var host = ConsulClientHost.Create(agent);
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001), s_timeout, "a appears");
        await Eventually.TrueAsync(() => agent.Requests.Any(r => r.Query.Contains("index=", StringComparison.Ordinal)), s_timeout, "a blocking query is parked");
        var highIndex = agent.CurrentIndex;

        agent.ResetIndex(2);
        var before = agent.CountRequests("/v1/health/service/orders");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var during = agent.CountRequests("/v1/health/service/orders") - before;
        agent.Register("b", "orders", "127.0.0.1", 7002);
        await Eventually.TrueAsync(() => watch.Has(7002), s_timeout, "b appears after the reset");

        output.WriteLine($"index reset {highIndex} -> 2; queries in the following second: {during}");
        Assert.True(during <= 5, $"{during} queries in one second after the reset: the watch spins"); // a loaded machine may send fewer, never more
        Assert.Contains(agent.Requests, r => r.Path == "/v1/health/service/orders" && r.Index >= 2 && r.Index < FakeConsulAgent.InitialIndex); // blocks on the reset index, not an old one
        Assert.Contains(host.Logs.Entries, e => e.EventId.Name == "ConsulIndexReset");
    }

    [Fact]
    public async Task Watch_AgentAnswersIndexZeroWithoutBlocking_SendsIndexOneAndDoesNotSpin()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        agent.BuggyZeroIndex = true;
        await using var host = ConsulClientHost.Create(agent, o => o.MinQueryInterval = TimeSpan.FromMilliseconds(50));
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001), s_timeout, "a appears");

        var before = agent.CountRequests("/v1/health/service/orders");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var perSecond = agent.CountRequests("/v1/health/service/orders") - before;

        output.WriteLine($"queries per second against an agent that never blocks: {perSecond} (minimum interval 50 ms)");
        Assert.True(perSecond <= 25, $"{perSecond} queries in one second against an agent that never blocks: the minimum interval is not kept");
        Assert.All(agent.Requests.Where(r => r.Path == "/v1/health/service/orders").Skip(1), r => Assert.Contains("index=1&", r.Query, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_AgentUnreachableForSeconds_KeepsLastSetAndCatchesUpAfterwards()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var host = ConsulClientHost.Create(agent);
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001), s_timeout, "a appears");

        await agent.StopAsync();
        agent.Register("b", "orders", "127.0.0.1", 7002); // the catalog changes while the agent is unreachable
        await Eventually.TrueAsync(() => watch.Errors.Count >= 2, s_timeout, "the outage is reported");
        await Task.Delay(TimeSpan.FromSeconds(2));
        var during = await host.Resolver.GetEndpointsAsync("orders", "consul");
        await agent.StartAgainAsync();
        await Eventually.TrueAsync(() => watch.Has(7002), s_timeout, "the change made during the outage arrives");

        Assert.Equal([7001], during.Endpoints.Select(e => e.Port));
        Assert.True(watch.Has(7001));
        Assert.All(watch.Errors, e => Assert.Contains(agent.Address, e.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_AgentAnswers500_ReportsAndKeepsLastSet()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var host = ConsulClientHost.Create(agent);
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001), s_timeout, "a appears");

        agent.FailWith500 = true;
        agent.Register("b", "orders", "127.0.0.1", 7002, status: "critical"); // wakes the parked query; the next ones fail
        await Eventually.TrueAsync(() => watch.Errors.Count >= 2, s_timeout, "the 500s are reported");
        agent.SetStatus("b", "passing");
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        Assert.Equal([7001], watch.Endpoints.Select(e => e.Port));
        agent.FailWith500 = false;
        await Eventually.TrueAsync(() => watch.Has(7002), s_timeout, "b arrives once the agent recovers");

        Assert.Contains("500", watch.Errors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_MalformedAnswer_ReportedSkippedAndLastSetStays()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var host = ConsulClientHost.Create(agent);
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001), s_timeout, "a appears");
        var sets = watch.Sets;

        agent.SendMalformed(2);
        agent.Register("b", "orders", "127.0.0.1", 7002, status: "critical"); // wakes the query; the answer is truncated
        await Eventually.TrueAsync(() => watch.Errors.Count >= 2, s_timeout, "both malformed answers are reported");
        Assert.Equal(sets, watch.Sets);
        Assert.Equal([7001], watch.Endpoints.Select(e => e.Port));
        agent.SetStatus("b", "passing");
        await Eventually.TrueAsync(() => watch.Has(7002), s_timeout, "later answers are used again");

        Assert.Contains("malformed JSON", watch.Errors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_InvalidEntry_SkippedAndReportedOthersPublished()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("a", "orders", "127.0.0.1", 7001);
        agent.Register("bad", "orders", "127.0.0.1", 0);
        await using var host = ConsulClientHost.Create(agent);
        using var watch = host.Follow("orders");

        await Eventually.TrueAsync(() => watch.Has(7001) && watch.Errors.Count > 0, s_timeout, "the good entry is published and the bad one reported");

        Assert.Single(watch.Endpoints);
        Assert.Contains("'bad'", watch.Errors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_AclToken_SentOnEveryRequestAndNeverLoggedOrInErrors()
    {
        const string Secret = "3f9a1c2e-5b7d-4e60-9a8b-c0ffee5ec4e7";
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.RequiredToken = Secret;
        agent.Register("a", "orders", "127.0.0.1", 7001);
        await using var good = ConsulClientHost.Create(agent, o => o.Token = Secret);
        await using var bad = ConsulClientHost.Create(agent, o => o.Token = Secret + "-wrong");
        using var goodWatch = good.Follow("orders");
        using var badWatch = bad.Follow("orders");

        await Eventually.TrueAsync(() => goodWatch.Has(7001), s_timeout, "the right token is accepted");
        await Eventually.TrueAsync(() => badWatch.Errors.Count >= 2, s_timeout, "the wrong token is reported");
        await using (var handle = await good.Registrar.RegisterAsync(new ServiceRegistration { ServiceName = "orders", Host = "127.0.0.1", Port = 7002, Ttl = TimeSpan.FromMilliseconds(600) }, CancellationToken.None))
        {
            await Eventually.TrueAsync(() => agent.Find("orders-127.0.0.1-7002")?.Passes >= 2, s_timeout, "heartbeats carry the token");
        }

        Assert.All(agent.Requests.Where(r => r.Token is not null && r.Token.StartsWith(Secret, StringComparison.Ordinal)), _ => { });
        Assert.DoesNotContain(agent.Requests, r => r.Token is null);
        Assert.Contains("403", badWatch.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains("ACL not found", badWatch.Errors[0].Message, StringComparison.Ordinal);
        Assert.Contains(agent.Address, badWatch.Errors[0].Message, StringComparison.Ordinal);
        foreach (var error in badWatch.Errors)
        {
            Assert.DoesNotContain(Secret, error.ToString(), StringComparison.Ordinal);
        }

        Assert.NotEmpty(bad.Logs.Entries);
        Assert.DoesNotContain(Secret, good.Logs.AllText, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, bad.Logs.AllText, StringComparison.Ordinal);
    }
}
