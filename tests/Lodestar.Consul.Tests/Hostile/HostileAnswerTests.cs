using System.Text;
using Lodestar.Testing;
using Lodestar.Testing.Consul;

namespace Lodestar.Consul.Tests.Hostile;

/// <summary>
/// The Consul source against an agent that answers a health query with garbage, broken or hostile data. Every case
/// asserts a clear error naming the agent and what was wrong, the last good set (or the valid rest) in force, and the
/// source following the agent again once it behaves.
/// </summary>
public sealed class HostileAnswerTests
{
    private const string HealthPath = HostileScenario.HealthPath;

    /// <summary>Answers that are rejected whole: the error names the agent, the request and what was wrong.</summary>
    public static TheoryData<string> RejectedAnswers => [.. s_rejected.Keys];

    /// <summary>Answers with one bad entry between two good ones: the bad one is skipped and named, the good ones published.</summary>
    public static TheoryData<string> BadEntries => [.. s_badEntries.Keys];

    private static readonly Dictionary<string, (ConsulFault Fault, string Expected)> s_rejected = new()
    {
        ["html page"] = (ConsulFault.Body("html", "<html><body>502 Bad Gateway</body></html>"), "malformed JSON: '<' is an invalid start of a value"),
        ["truncated"] = (ConsulFault.Body("truncated", "[" + Good(7003) + ",{\"Node\":{\"Node\":\"n1\"},\"Service\":{\"ID\":\"x\",\"Po"), "malformed JSON"),
        ["object"] = (ConsulFault.Body("object", "{\"Nodes\":[]}"), "malformed JSON: the answer is not a JSON array (it is an object)"),
        ["null"] = (ConsulFault.Body("null", "null"), "malformed JSON: the answer is not a JSON array (it is null)"),
        ["empty"] = (ConsulFault.Body("empty", ""), "the answer is empty"),
        ["white space"] = (ConsulFault.Body("white space", " \r\n\t "), "the answer is empty"),
        ["trailing garbage"] = (ConsulFault.Body("trailing garbage", "[" + Good(7003) + "]}{"), "malformed JSON"),
        ["nested too deep"] = (ConsulFault.Body("nested", "[" + new string('[', 500) + new string(']', 500) + "]"), "malformed JSON"),
        ["not UTF-8"] = (ConsulFault.Bytes("not UTF-8", [0xFF, 0xFE, 0x5B, 0x5D]), "malformed JSON: '0xFF' is an invalid start of a value"),
        ["index not a number"] = (ConsulFault.Index("abc"), "X-Consul-Index that is not a number ('abc')"),
        ["index negative"] = (ConsulFault.Index("-5"), "X-Consul-Index that is not a number ('-5')"),
        ["index exponent"] = (ConsulFault.Index("1e3"), "X-Consul-Index that is not a number ('1e3')"),
        ["index overflow"] = (ConsulFault.Index("99999999999999999999999"), "X-Consul-Index that is not a number ('99999999999999999999999')"),
        ["index empty"] = (ConsulFault.Index(""), "X-Consul-Index that is not a number ('')"),
        ["connection cut"] = (ConsulFault.Cut(), $"GET {HealthPath} failed"),
        ["connection cut mid-body"] = (ConsulFault.CutMidBody(), $"GET {HealthPath} failed"),
        ["8 MB error page"] = (ConsulFault.Body("8 MB error page", "rpc error: " + new string('x', 8 * 1024 * 1024), status: 500), "answered 500 InternalServerError: rpc error: xxx"),
    };

    private static readonly Dictionary<string, (string Json, string Expected)> s_badEntries = new()
    {
        ["null"] = ("null", "entry 1 is null"),
        ["number"] = ("42", "entry 1 is a number, not an object"),
        ["string"] = ("\"orders\"", "entry 1 is a string, not an object"),
        ["array"] = ("[1,2]", "entry 1 is an array, not an object"),
        ["boolean"] = ("true", "entry 1 is a boolean, not an object"),
        ["no service"] = ("{\"Node\":{\"Node\":\"n1\",\"Address\":\"127.0.0.1\"}}", "entry 1 has no Service"),
        ["service of the wrong type"] = ("{\"Service\":\"orders\"}", "entry 1 could not be read at $.Service "),
        ["port of the wrong type"] = ("{\"Service\":{\"ID\":\"bad\",\"Port\":\"eighty\"}}", "entry 1 could not be read at $.Service.Port "),
        ["port overflow"] = ("{\"Service\":{\"ID\":\"bad\",\"Port\":1e20}}", "entry 1 could not be read at $.Service.Port "),
        ["weight of the wrong type"] = ("{\"Service\":{\"ID\":\"bad\",\"Port\":80,\"Weights\":{\"Passing\":\"high\"}}}", "entry 1 could not be read at $.Service.Weights.Passing "),
        ["meta value of the wrong type"] = ("{\"Service\":{\"ID\":\"bad\",\"Port\":80,\"Meta\":{\"zone\":7}}}", "entry 1 could not be read at $.Service.Meta.zone "),
        ["tags of the wrong type"] = ("{\"Service\":{\"ID\":\"bad\",\"Port\":80,\"Tags\":\"v2\"}}", "entry 1 could not be read at $.Service.Tags "),
        ["checks of the wrong type"] = ("{\"Service\":{\"ID\":\"bad\",\"Port\":80},\"Checks\":{}}", "entry 1 could not be read at $.Checks "),
        ["null check"] = ("{\"Node\":{\"Node\":\"n1\"},\"Service\":{\"ID\":\"bad\",\"Address\":\"127.0.0.1\",\"Port\":80},\"Checks\":[null]}", "entry 1 (instance 'bad' on node 'n1') has a null check"),
        ["port zero"] = ("{\"Node\":{\"Node\":\"n1\"},\"Service\":{\"ID\":\"bad\",\"Address\":\"127.0.0.1\",\"Port\":0}}", "entry 1 (instance 'bad' on node 'n1'): port 0 is outside 1-65535"),
        ["host not a host"] = ("{\"Node\":{\"Node\":\"n1\"},\"Service\":{\"ID\":\"bad\",\"Address\":\"not a host!\",\"Port\":80}}", "entry 1 (instance 'bad' on node 'n1'): host 'not a host!' is neither"),
        ["no address anywhere"] = ("{\"Node\":{\"Node\":\"n1\"},\"Service\":{\"ID\":\"bad\",\"Port\":80}}", "entry 1 (instance 'bad' on node 'n1') has no address"),
    };

    [Theory]
    [MemberData(nameof(RejectedAnswers))]
    public async Task Watch_AnswerRejectedWhole_ReportsAgentAndCauseKeepsLastSetAndRecovers(string name)
    {
        // Arrange
        var (fault, expected) = s_rejected[name];
        await using var scenario = await HostileScenario.StartAsync();
        var index = scenario.LastIndex;

        // Act
        await scenario.InjectAsync(fault);
        var error = await scenario.NextErrorAsync(0);

        // Assert
        Assert.IsType<ConsulException>(error);
        Assert.Contains($"Consul at {scenario.Agent.Address}: GET {HealthPath}", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.True(error.Message.Length < 2048, $"the message stays short ({error.Message.Length} characters)");
        Assert.Equal([7001], scenario.Ports);
        await scenario.ParkedAsync();
        Assert.Equal(index, scenario.LastIndex); // retried on the index it had
        await scenario.RecoverAsync();
    }

    [Theory]
    [MemberData(nameof(BadEntries))]
    public async Task Watch_OneBadEntryBetweenGoodOnes_SkipsItNamingPositionAndAgentAndPublishesTheRest(string name)
    {
        // Arrange
        var (json, expected) = s_badEntries[name];
        await using var scenario = await HostileScenario.StartAsync();

        // Act
        await scenario.InjectAsync(ConsulFault.Body(name, "[" + Good(7001) + "," + json + "," + Good(7003) + "]"));
        await Eventually.TrueAsync(() => scenario.Ports.SequenceEqual([7001, 7003]), HostileScenario.Timeout, "the good entries are published");
        var error = await scenario.NextErrorAsync(0);

        // Assert
        Assert.Contains($"Consul at {scenario.Agent.Address}: 1 of 3 entries for service 'orders' were skipped (the others are published): ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        await scenario.RecoverAsync();
    }

    [Fact]
    public async Task Watch_EntryWhoseTextIsNotUtf8_SkipsItNamingPositionAndFieldAndPublishesTheRest()
    {
        // Arrange: the second entry's service ID holds bytes that are not UTF-8.
        await using var scenario = await HostileScenario.StartAsync();
        var bad = Encoding.UTF8.GetBytes("{\"Node\":{\"Node\":\"n1\"},\"Service\":{\"ID\":\"XX\",\"Address\":\"127.0.0.1\",\"Port\":80}}");
        var at = Array.IndexOf(bad, (byte)'X');
        bad[at] = 0xFF;
        bad[at + 1] = 0xFE;
        byte[] body = [.. "["u8, .. Encoding.UTF8.GetBytes(Good(7001)), .. ","u8, .. bad, .. ","u8, .. Encoding.UTF8.GetBytes(Good(7003)), .. "]"u8];

        // Act
        await scenario.InjectAsync(ConsulFault.Bytes("not UTF-8 inside an entry", body));
        await Eventually.TrueAsync(() => scenario.Ports.SequenceEqual([7001, 7003]), HostileScenario.Timeout, "the good entries are published");
        var error = await scenario.NextErrorAsync(0);

        // Assert
        Assert.Contains($"Consul at {scenario.Agent.Address}: 1 of 3 entries for service 'orders' were skipped (the others are published): entry 1 could not be read at $.Service.ID",
            error.Message, StringComparison.Ordinal);
        await scenario.RecoverAsync();
    }

    [Fact]
    public async Task Watch_NullEntryBesideValidOnesInTheFirstAnswer_PublishesTheValidOnesAndNamesTheEntryAndAgent()
    {
        // Arrange: the very first answer carries a null between two valid entries.
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("orders-7001", "orders", "127.0.0.1", 7001);
        agent.InjectHealthFault(ConsulFault.Body("null entry", "[" + Good(7001) + ",null," + Good(7003) + "]"));
        await using var host = Infrastructure.ConsulClientHost.Create(agent);

        // Act
        using var watch = host.Follow("orders");
        await Eventually.TrueAsync(() => watch.Has(7001) && watch.Has(7003) && watch.Errors.Count > 0, HostileScenario.Timeout, "the valid entries are published, the null reported");

        // Assert
        var error = Assert.IsType<ConsulException>(Assert.Single(watch.Errors));
        Assert.Contains($"Consul at {agent.Address}: 1 of 3 entries for service 'orders' were skipped (the others are published): entry 1 is null", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(host.Logs.Entries, e => e.Exception?.Contains(nameof(NullReferenceException), StringComparison.Ordinal) == true);
        Assert.DoesNotContain(host.Logs.Entries, e => e.EventId.Name == "SourceCrashed");
    }

    [Fact]
    public async Task Watch_EveryEntryBad_KeepsTheLastGoodSetAndSaysSo()
    {
        // Arrange
        await using var scenario = await HostileScenario.StartAsync();
        var sets = scenario.Watch.Sets;

        // Act
        await scenario.InjectAsync(ConsulFault.Body("all bad", "[null,42,{\"Service\":\"x\"}]"));
        var error = await scenario.NextErrorAsync(0);

        // Assert
        Assert.Contains($"Consul at {scenario.Agent.Address}: 3 of 3 entries for service 'orders' were skipped (the last good set stays in force): entry 0 is null; entry 1 is a number, not an object; entry 2 could not be read at $.Service",
            error.Message, StringComparison.Ordinal);
        Assert.Equal([7001], scenario.Ports);
        Assert.Equal(sets, scenario.Watch.Sets);
        await scenario.RecoverAsync();
    }

    [Fact]
    public async Task Watch_ThousandsOfBadEntries_NamesTheFirstTenAndCountsTheRest()
    {
        // Arrange
        await using var scenario = await HostileScenario.StartAsync();
        var body = new StringBuilder("[").Append(Good(7001));
        for (var i = 0; i < 5000; i++)
        {
            body.Append(",null");
        }

        // Act
        await scenario.InjectAsync(ConsulFault.Body("5000 nulls", body.Append(']').ToString()));
        var error = await scenario.NextErrorAsync(0);

        // Assert
        Assert.Contains("5000 of 5001 entries", error.Message, StringComparison.Ordinal);
        Assert.Contains("entry 10 is null; and 4990 more", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("entry 11 ", error.Message, StringComparison.Ordinal);
        Assert.Equal([7001], scenario.Ports);
        await scenario.RecoverAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Watch_AnswerOverMaxResponseBytes_ReportsAgentAndLimitKeepsLastSetAndRecovers(bool declareLength)
    {
        // Arrange
        await using var scenario = await HostileScenario.StartAsync(o => o.MaxResponseBytes = 64 * 1024);

        // Act
        await scenario.InjectAsync(ConsulFault.Oversized(1024 * 1024, declareLength));
        var error = await scenario.NextErrorAsync(0);

        // Assert
        Assert.Contains($"Consul at {scenario.Agent.Address}: GET {HealthPath}: the answer is larger than the limit of 65536 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("Lodestar:Consul:MaxResponseBytes", error.Message, StringComparison.Ordinal);
        Assert.Equal([7001], scenario.Ports);
        await scenario.RecoverAsync();
    }

    [Theory]
    [InlineData("0")]
    [InlineData("3")]
    public async Task Watch_IndexGoesBackwards_ForgetsItReadsAgainAndFollowsWithoutError(string index)
    {
        // Arrange
        await using var scenario = await HostileScenario.StartAsync();
        var before = scenario.LastIndex;

        // Act
        await scenario.InjectAsync(ConsulFault.Index(index));
        await Eventually.TrueAsync(() => scenario.Host.Logs.Entries.Any(e => e.EventId.Name == "ConsulIndexReset"), HostileScenario.Timeout, "the reset is logged");
        await scenario.ParkedAsync();

        // Assert: after the backwards answer, one read without an index, then blocking on the agent's real index.
        var health = scenario.Agent.Requests.Where(r => r.Path == HealthPath).ToList();
        Assert.Equal([before, before, null, scenario.Agent.CurrentIndex], health.TakeLast(4).Select(r => r.Index));
        Assert.Empty(scenario.Watch.Errors);
        Assert.Equal([7001], scenario.Ports);
        await scenario.RecoverAsync();
    }

    [Fact]
    public async Task Watch_IndexHeaderMissing_PollsOnIndexOneAtTheMinimumIntervalWithoutError()
    {
        // Arrange
        await using var scenario = await HostileScenario.StartAsync(o => o.MinQueryInterval = TimeSpan.FromMilliseconds(100));

        // Act: three answers without X-Consul-Index.
        scenario.Agent.InjectHealthFault(ConsulFault.Index(ConsulFault.OmitIndex), times: 3);
        scenario.Agent.ReleaseParkedQueries();
        await Eventually.TrueAsync(() => scenario.Agent.PendingFaults == 0, HostileScenario.Timeout, "the faults are taken");
        await scenario.ParkedAsync();

        // Assert: taken as index 0, which goes backwards: read again, then block on 1 until a real index arrives.
        Assert.Empty(scenario.Watch.Errors);
        Assert.Equal([7001], scenario.Ports);
        Assert.Equal(scenario.Agent.CurrentIndex, scenario.LastIndex);
        await scenario.RecoverAsync();
    }

    [Theory]
    [InlineData("stalled")]
    [InlineData("slow drip")]
    public async Task Watch_QueryNeverCompletes_IsEndedAfterWaitJitterAndMarginAndResumed(string kind)
    {
        // Arrange: a 1 s wait and a 2 s margin: a query is stalled after 1 s + 62.5 ms + 20 ms + 2 s.
        await using var scenario = await HostileScenario.StartAsync(o =>
        {
            o.WaitTime = TimeSpan.FromSeconds(1);
            o.RequestTimeout = TimeSpan.FromSeconds(2);
        });
        var index = scenario.LastIndex;

        // Act
        await scenario.InjectAsync(kind == "stalled" ? ConsulFault.Stall() : ConsulFault.Drip(TimeSpan.FromMilliseconds(50)));
        var error = await scenario.NextErrorAsync(0);

        // Assert
        Assert.Contains($"Consul at {scenario.Agent.Address}: the blocking query for service 'orders' at index {index} did not answer within 3.083 s", error.Message, StringComparison.Ordinal);
        Assert.Equal([7001], scenario.Ports);
        await Eventually.TrueAsync(() => scenario.Agent.StalledQueries == 0, HostileScenario.Timeout, "the client closed the stalled query");
        await scenario.ParkedAsync();
        Assert.Equal(index, scenario.LastIndex);
        await scenario.RecoverAsync();
    }

    /// <summary>A passing entry in Consul's shape for <c>orders</c> on 127.0.0.1.</summary>
    internal static string Good(int port)
        => $$"""{"Node":{"Node":"n1","Address":"127.0.0.1","Datacenter":"dc1"},"Service":{"ID":"orders-{{port}}","Address":"127.0.0.1","Port":{{port}}},"Checks":[{"Status":"passing"}]}""";
}
