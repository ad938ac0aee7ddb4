using System.Text.Json;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Lodestar.Testing.Etcd;
using YamlDotNet.Serialization;

namespace Lodestar.Tests.Cli;

/// <summary>The CLI behaves as users of kubectl expect: its name in help, -o formats, -n, fast failures, exit codes, no colour in pipes.</summary>
public sealed class CliHabitsTests
{
    private const string Settings = """
        {"Lodestar":{"Services":{"orders":{"Endpoints":[
          "http://10.0.0.5:8080",
          {"Address":"https://10.0.0.6:8443","Weight":3,"Zone":"eu-west-1a","Priority":1,"Metadata":{"version":"v2","team":"shop"}}
        ]}}}}
        """;

    [Fact]
    public async Task Help_Root_UsageSaysLodestar()
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync("--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("lodestar [command] [options]", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("Lodestar.Cli", result.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("register")]
    [InlineData("deregister")]
    public async Task Help_Registration_ListsOnlyOptionsThatApply(string command)
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync(command, "--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"lodestar {command} <service> [options]", result.Out, StringComparison.Ordinal);
        Assert.Contains("<consul|etcd>", result.Out, StringComparison.Ordinal);
        Assert.All(["--output", "--json", "--kubeconfig", "--namespace", "--port-name", "--consul-tag", "--consul-dc", "--server", "--port "],
            option => Assert.DoesNotContain(option, result.Out, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Help_Resolve_ListsOutputFormatsAndShortAliases()
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync("resolve", "--help");

        Assert.Contains("-o, --output <table|wide|json|yaml>", result.Out, StringComparison.Ordinal);
        Assert.Contains("-n, --namespace", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("--ttl", result.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("--http-check", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_OutputJson_CarriesSchemePriorityWeightZoneAndMetadata()
    {
        using var cli = new CliHarness();
        var config = cli.File("settings.json", Settings);

        var result = await cli.RunAsync("resolve", "orders", "--config", config, "-o", "json");

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.Out);
        var root = json.RootElement;
        Assert.Equal("orders", root.GetProperty("service").GetString());
        Assert.Equal("configuration", root.GetProperty("source").GetString());
        var second = root.GetProperty("endpoints")[1];
        Assert.Equal("10.0.0.6", second.GetProperty("address").GetString());
        Assert.Equal(8443, second.GetProperty("port").GetInt32());
        Assert.Equal("https", second.GetProperty("scheme").GetString());
        Assert.Equal(3, second.GetProperty("weight").GetInt32());
        Assert.Equal(1, second.GetProperty("priority").GetInt32());
        Assert.Equal("eu-west-1a", second.GetProperty("zone").GetString());
        Assert.Equal("v2", second.GetProperty("metadata").GetProperty("version").GetString());
        Assert.Equal("http", root.GetProperty("endpoints")[0].GetProperty("scheme").GetString());
    }

    [Fact]
    public async Task Resolve_JsonFlag_IsTheSameAsOutputJson()
    {
        using var cli = new CliHarness();
        var config = cli.File("settings.json", Settings);

        var alias = await cli.RunAsync("resolve", "orders", "--config", config, "--json");
        var output = await cli.RunAsync("resolve", "orders", "--config", config, "-o", "json");

        Assert.Equal(0, alias.ExitCode);
        Assert.Equal(output.Out, alias.Out);
    }

    [Fact]
    public async Task Resolve_OutputYaml_ReadsBackWithTheSameValues()
    {
        using var cli = new CliHarness();
        var config = cli.File("settings.json", Settings);

        var result = await cli.RunAsync("resolve", "orders", "--config", config, "-o", "yaml");

        Assert.Equal(0, result.ExitCode);
        var document = new DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(result.Out);
        Assert.Equal("orders", document["service"]);
        var endpoints = (List<object>)document["endpoints"];
        var second = (Dictionary<object, object>)endpoints[1];
        Assert.Equal("https", second["scheme"]);
        Assert.Equal("3", second["weight"]);
        Assert.Equal("eu-west-1a", second["zone"]);
        Assert.Equal("shop", ((Dictionary<object, object>)second["metadata"])["team"]);
        Assert.Null(((Dictionary<object, object>)endpoints[0])["zone"]);
    }

    [Fact]
    public async Task Resolve_TableAndWide_WideAddsMetadata()
    {
        using var cli = new CliHarness();
        var config = cli.File("settings.json", Settings);

        var table = await cli.RunAsync("resolve", "orders", "--config", config);
        var wide = await cli.RunAsync("resolve", "orders", "--config", config, "-o", "wide");

        var lines = table.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("ADDRESS", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("METADATA", table.Out, StringComparison.Ordinal);
        Assert.Contains("METADATA", wide.Out, StringComparison.Ordinal);
        Assert.Contains("team=shop,version=v2", wide.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_Piped_WritesNoEscapeCodes()
    {
        using var cli = new CliHarness();
        var config = cli.File("settings.json", Settings);

        var piped = await cli.RunAsync("resolve", "orders", "--config", config);
        cli.Terminal = true;
        var terminal = await cli.RunAsync("resolve", "orders", "--config", config);
        var noColor = await cli.With("NO_COLOR", "1").RunAsync("resolve", "orders", "--config", config);

        Assert.DoesNotContain('\u001b', piped.All);
        Assert.Contains('\u001b', terminal.Out);
        Assert.DoesNotContain('\u001b', noColor.All);
    }

    [Fact]
    public async Task Resolve_RegistryRefusesConnection_FailsWithTheSourcesErrorInsteadOfWaiting()
    {
        // A minute of ResolutionTimeout: a run that waited for it would end with the timeout's message, not the refusal.
        using var cli = new CliHarness();
        var config = cli.File("settings.json", """{"Lodestar":{"ResolutionTimeout":"00:01:00"}}""");
        var address = $"http://127.0.0.1:{LoopbackPorts.Free(1)[0]}";

        var consul = await cli.RunAsync("resolve", "orders", "--source", "consul", "--address", address, "--config", config);
        var etcd = await cli.RunAsync("resolve", "orders", "--source", "etcd", "--address", address, "--config", config);

        Assert.Equal(2, consul.ExitCode);
        Assert.StartsWith($"error: Resolving 'orders' from consul failed: Consul at {address}", consul.Error, StringComparison.Ordinal);
        Assert.Equal(2, etcd.ExitCode);
        Assert.StartsWith("error: Resolving 'orders' from etcd failed: ", etcd.Error, StringComparison.Ordinal);
        Assert.Contains($"etcd at {address} is unreachable", etcd.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("within", consul.Error + etcd.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_SlowRegistry_WaitsForItsAnswer()
    {
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var agent = await ScriptedServer.StartAsync(async context =>
        {
            asked.TrySetResult();
            await answer.Task;
            context.Response.Headers["X-Consul-Index"] = "5";
            await ScriptedServer.WriteAsync(context, 200, """[{"Node":{"Node":"n1","Address":"10.0.0.5"},"Service":{"ID":"orders-1","Service":"orders","Address":"10.0.0.5","Port":8080},"Checks":[]}]""");
        });
        using var cli = new CliHarness();

        var run = cli.RunAsync("resolve", "orders", "--source", "consul", "--address", agent.Url, "-o", "json");
        await asked.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(run.IsCompleted, "resolve gave up on a registry that was still answering");
        answer.SetResult();
        var result = await run;

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("\"address\": \"10.0.0.5\"", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_KubeconfigMissing_FailsAtStartNamingWhereItLooked()
    {
        using var cli = new CliHarness();

        var result = await cli.RunAsync("resolve", "orders", "--source", "kubernetes", "-n", "shop");

        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"error: No kubeconfig found (looked for {Path.Combine(cli.WorkingDirectory, ".kube", "config")}). Give --kubeconfig, set KUBECONFIG, or run in a pod.\n", result.Error);
    }

    [Fact]
    public async Task Deregister_UnknownAndKnownInstance_ExitCodeSaysWhetherAnythingWasRemoved()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.Register("orders-1", "orders", "127.0.0.1", 5000);
        using var cli = new CliHarness();

        var unknown = await cli.RunAsync("deregister", "orders", "--source", "consul", "--address", agent.Address, "--id", "orders-9");
        var known = await cli.RunAsync("deregister", "orders", "--source", "consul", "--address", agent.Address, "--id", "orders-1");

        Assert.Equal(1, unknown.ExitCode);
        Assert.Equal("Nothing was removed: consul holds no instance 'orders-9' of service 'orders'.\n", unknown.Error);
        Assert.Equal(0, known.ExitCode);
        Assert.Equal("Deregistered orders-1 from consul.\n", known.Error);
        Assert.Null(agent.Find("orders-1"));
    }

    [Fact]
    public async Task Deregister_EtcdKeyThatIsNotThere_ExitsOne()
    {
        await using var etcd = await EtcdServer.StartAsync();
        await etcd.PutAsync("orders/orders-1", """{"Op":0,"Addr":"127.0.0.1:5000"}""");
        using var cli = new CliHarness();

        var unknown = await cli.RunAsync("deregister", "orders", "--source", "etcd", "--address", etcd.ClientUrl, "--id", "orders-9");
        var known = await cli.RunAsync("deregister", "orders", "--source", "etcd", "--address", etcd.ClientUrl, "--id", "orders-1");

        Assert.Equal(1, unknown.ExitCode);
        Assert.Equal(0, known.ExitCode);
        Assert.Null(await etcd.GetAsync("orders/orders-1"));
    }

    [Fact]
    public async Task Resolve_ReadmeCommand_WorksFromTheRepositoryRootWithTheSample()
    {
        // README: dotnet run --project src/Lodestar.Cli -c Release -- resolve orders --config samples/cli/appsettings.json
        using var cli = new CliHarness();
        var root = CliHarness.RepositoryRoot();
        var sample = Path.Combine(root, "samples", "cli", "appsettings.json");

        var result = await cli.RunAsync("resolve", "orders", "--config", sample);
        var basket = await cli.RunAsync("resolve", "basket", "--config", sample, "-o", "json");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("127.0.0.1:5101", result.Out, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:5102", result.Out, StringComparison.Ordinal);
        Assert.Equal(0, basket.ExitCode);
        Assert.Contains("\"scheme\": \"https\"", basket.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_ConfigurationEdited_PrintsEachVersionOnceAsJsonLines()
    {
        using var cli = new CliHarness();
        var config = cli.File("settings.json", """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80"]}}}}""");
        using var ctrlC = new CancellationTokenSource();
        var run = cli.RunAsync(ctrlC.Token, "watch", "orders", "--config", config, "-o", "json");
        await Eventually.TrueAsync(() => cli.LastOut.Contains("10.0.0.1", StringComparison.Ordinal) || run.IsCompleted, TimeSpan.FromSeconds(10), "first set printed");
        if (run.IsCompleted)
        {
            Assert.Fail("watch ended: " + await run);
        }

        // The file watcher behind reloadOnChange sees the edit; the watch prints the new version.
        await File.WriteAllTextAsync(config, """{"Lodestar":{"Services":{"orders":{"Endpoints":["10.0.0.1:80","10.0.0.2:80"]}}}}""");
        await Eventually.TrueAsync(() => cli.LastOut.Contains("10.0.0.2", StringComparison.Ordinal) || run.IsCompleted, TimeSpan.FromSeconds(20), "the edit was printed");
        await ctrlC.CancelAsync();
        var result = await run;

        Assert.Equal(0, result.ExitCode);
        var versions = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("version").GetInt64()).ToList();
        Assert.Equal([1, 2], versions);
    }
}
