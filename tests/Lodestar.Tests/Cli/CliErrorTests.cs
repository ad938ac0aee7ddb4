using Lodestar.Testing;
using Lodestar.Testing.Consul;

namespace Lodestar.Tests.Cli;

/// <summary>Every failure ends in exit code 2 and one clear line, never a stack trace, and never a secret.</summary>
public sealed class CliErrorTests
{
    [Fact]
    public async Task Resolve_ConfigFileMissing_ExitsTwoWithOneLine()
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync("resolve", "orders", "--config", "missing.json");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("error: --config: the file 'missing.json' does not exist.\n", result.Error);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task Resolve_ConfigFileNotJson_ExitsTwoNamingTheFileAndPosition()
    {
        using var cli = new CliHarness();
        var path = cli.File("broken.json", "{ \"Lodestar\": { \"Services\": ");

        var result = await cli.RunAsync("resolve", "orders", "--config", path);

        Assert.Equal(2, result.ExitCode);
        AssertOneErrorLine(result);
        Assert.Contains(path + " is not valid JSON configuration", result.Error, StringComparison.Ordinal);
        Assert.Contains("LineNumber", result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("banana")]
    [InlineData("00:99:xx")]
    public async Task Resolve_ResolutionTimeoutNotATimeSpan_ExitsTwoNamingTheKey(string value)
    {
        using var cli = new CliHarness();
        var path = cli.File("settings.json", """{"Lodestar":{"ResolutionTimeout":"VALUE","Services":{"orders":{"Endpoints":["10.0.0.1:80"]}}}}""".Replace("VALUE", value, StringComparison.Ordinal));

        var result = await cli.RunAsync("resolve", "orders", "--config", path);

        Assert.Equal(2, result.ExitCode);
        AssertOneErrorLine(result);
        Assert.Contains("'Lodestar:ResolutionTimeout'", result.Error, StringComparison.Ordinal);
        Assert.Contains("TimeSpan", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_EtcdUnreachable_ExitsTwoNamingTheAddress()
    {
        using var cli = new CliHarness();
        var address = $"http://127.0.0.1:{LoopbackPorts.Free(1)[0]}";

        var result = await cli.RunAsync("register", "orders", "--source", "etcd", "--address", address, "--endpoint", "127.0.0.1:5000");

        Assert.Equal(2, result.ExitCode);
        AssertOneErrorLine(result);
        Assert.StartsWith("error: Could not register orders-127.0.0.1-5000 (127.0.0.1:5000) in etcd: ", result.Error, StringComparison.Ordinal);
        Assert.Contains(address, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_ConsulAclRefuses_ExitsTwoWithTheAgentsAnswerAndNoToken()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.RequiredToken = "the-right-token";
        using var cli = new CliHarness();
        var config = cli.File("consul.json", """{"Lodestar":{"Consul":{"Token":"a-wrong-secret-token"}}}""");

        var result = await cli.RunAsync("register", "orders", "--source", "consul", "--address", agent.Address, "--endpoint", "127.0.0.1:5000", "--config", config);

        Assert.Equal(2, result.ExitCode);
        AssertOneErrorLine(result);
        Assert.Contains("403", result.Error, StringComparison.Ordinal);
        Assert.Contains("ACL not found", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("a-wrong-secret-token", result.All, StringComparison.Ordinal);
        Assert.Null(agent.Find("orders-127.0.0.1-5000"));
    }

    [Fact]
    public async Task Register_AgentEchoesTheToken_TokenIsMaskedInTheOutput()
    {
        // A proxy in front of the agent that quotes the request back, token and all.
        await using var proxy = await ScriptedServer.StartAsync(context =>
            ScriptedServer.WriteAsync(context, 403, $"denied: X-Consul-Token: {context.Request.Headers["X-Consul-Token"]} (token {context.Request.Headers["X-Consul-Token"]} unknown)"));
        using var cli = new CliHarness();
        var config = cli.File("consul.json", """{"Lodestar":{"Consul":{"Token":"echoed-secret-token"}}}""");

        var result = await cli.RunAsync("register", "orders", "--source", "consul", "--address", proxy.Url, "--endpoint", "127.0.0.1:5000", "--config", config);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("denied", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("echoed-secret-token", result.All, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Register_AgentAnswersWithEscapeSequences_ErrorLineCarriesNone()
    {
        await using var agent = await ScriptedServer.StartAsync(context => ScriptedServer.WriteAsync(context, 500, "\u001b]0;pwned\u0007\u001b[2Jinternal\r\nerror"));
        using var cli = new CliHarness { Terminal = true };

        var result = await cli.RunAsync("register", "orders", "--source", "consul", "--address", agent.Url, "--endpoint", "127.0.0.1:5000");

        Assert.Equal(2, result.ExitCode);
        Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("internal error", result.Error, StringComparison.Ordinal);
        // The only escape codes are the CLI's own colour around "error:".
        Assert.Equal("\u001b[31merror:\u001b[0m ", result.Error[..16]);
        Assert.DoesNotContain('\u001b', result.Error[16..]);
        Assert.DoesNotContain('\u0007', result.Error);
    }

    [Fact]
    public async Task Register_AgentUnreachableAtCtrlC_ExitsTwoNamingWhatIsLeftBehind()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        using var cli = new CliHarness();
        using var ctrlC = new CancellationTokenSource();
        var run = cli.RunAsync(ctrlC.Token, "register", "orders", "--source", "consul", "--address", agent.Address, "--endpoint", "127.0.0.1:5000", "--ttl", "30");
        await Eventually.TrueAsync(() => cli.LastError.Contains("Registered", StringComparison.Ordinal) || run.IsCompleted, TimeSpan.FromSeconds(10), "registered");
        Assert.NotNull(agent.Find("orders-127.0.0.1-5000"));
        if (run.IsCompleted)
        {
            Assert.Fail("register ended before Ctrl+C: " + await run);
        }

        await agent.StopAsync();
        await ctrlC.CancelAsync();
        var result = await run;

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Registered orders-127.0.0.1-5000 (127.0.0.1:5000) in consul", result.Error, StringComparison.Ordinal);
        var error = result.Error.Split('\n').Single(l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains("Could not deregister orders-127.0.0.1-5000 from consul", error, StringComparison.Ordinal);
        Assert.Contains("Left behind: service 'orders-127.0.0.1-5000' stays registered with the agent", error, StringComparison.Ordinal);
        Assert.Contains("lodestar deregister orders --source consul --id orders-127.0.0.1-5000", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("register")]
    [InlineData("deregister")]
    public async Task Registration_ConsulAddressNotHttp_RejectedBeforeAnythingIsSent(string command)
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync(command, "orders", "--source", "consul", "--address", "ftp://127.0.0.1:8500", "--endpoint", "127.0.0.1:5000");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("error: --address 'ftp://127.0.0.1:8500' is not an http or https URL of a Consul agent, such as http://127.0.0.1:8500.\n", result.Error);
    }

    [Fact]
    public async Task Deregister_AgentUnreachable_ExitsTwoSayingNothingWasRemoved()
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync("deregister", "orders", "--source", "consul", "--address", $"http://127.0.0.1:{LoopbackPorts.Free(1)[0]}", "--id", "orders-1");

        Assert.Equal(2, result.ExitCode);
        AssertOneErrorLine(result);
        Assert.StartsWith("error: Could not deregister orders-1 from consul: ", result.Error, StringComparison.Ordinal);
        Assert.EndsWith("Nothing was removed: if consul holds instance 'orders-1' of service 'orders', it stays there.\n", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parse_UnknownOutputFormat_ExitsTwoListingTheFormats()
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync("resolve", "orders", "-o", "xml");

        Assert.Equal(2, result.ExitCode);
        AssertOneErrorLine(result);
        Assert.Contains("'xml'", result.Error, StringComparison.Ordinal);
        Assert.All(["'table'", "'wide'", "'json'", "'yaml'"], format => Assert.Contains(format, result.Error, StringComparison.Ordinal));
        Assert.Contains("lodestar resolve --help", result.Error, StringComparison.Ordinal);
    }

    private static void AssertOneErrorLine(CliResult result)
    {
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal), result.ToString());
        Assert.DoesNotContain("   at ", result.All, StringComparison.Ordinal);
    }
}
