using System.Text.Json;
using Lodestar.Cli;
using Lodestar.Testing.Xds;
using Lodestar.Xds.Resources;
using Xunit.Abstractions;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Cli;

public sealed class XdsCliTests(ITestOutputHelper testOutput) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("lodestar-xds-cli-").FullName;

    [Fact]
    public async Task Dump_Wide_PrintsOneRowPerResourceAndTheLastNack()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Listener, "orders.test:8080", ApiListener("orders.test:8080", "orders-routes"));
        server.SetResource(XdsTypeUrls.RouteConfiguration, "orders-routes", Routes("orders-routes", Host("orders", ["*"], PrefixRoute("/", "orders"))));
        var bad = EdsCluster("broken");
        bad.LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.ClusterProvided;
        server.SetResources(XdsTypeUrls.Cluster, [("orders", EdsCluster("orders", policy: Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.LeastRequest)), ("broken", bad)]);
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", Assignment("orders", ("10.0.0.1", 8080), ("10.0.0.2", 8080)));
        var bootstrap = Path.Combine(_folder, "bootstrap.json");
        await File.WriteAllTextAsync(bootstrap, server.Bootstrap());

        var (code, output, error) = await RunAsync("xds", "dump", "--bootstrap", bootstrap, "--wait", "1500ms", "-o", "wide");
        testOutput.WriteLine(output);

        Assert.True(code == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("server: 127.0.0.1:", lines[0], StringComparison.Ordinal);
        Assert.Matches("^TYPE +NAME +STATUS +VERSION +SUMMARY$", lines[1]);
        Assert.Equal(4, lines.Count(l => l.Contains(" accepted ", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.StartsWith("last NACK of CDS", StringComparison.Ordinal) && l.Contains("Cluster 'broken'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Dump_ServerWithListenerRoutesClusterAndEndpoints_PrintsEachWithVersionAndTheLastNack()
    {
        // Arrange: a listener with RDS routes to a cluster with EDS endpoints, plus a cluster the client must reject.
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Listener, "orders.test:8080", ApiListener("orders.test:8080", "orders-routes"));
        server.SetResource(XdsTypeUrls.RouteConfiguration, "orders-routes", Routes("orders-routes", Host("orders", ["*"], PrefixRoute("/", "orders"))));
        var bad = EdsCluster("broken");
        bad.LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.ClusterProvided;
        server.SetResources(XdsTypeUrls.Cluster, [("orders", EdsCluster("orders", policy: Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.LeastRequest)), ("broken", bad)]);
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", Assignment("orders", ("10.0.0.1", 8080), ("10.0.0.2", 8080)));
        var bootstrap = Path.Combine(_folder, "bootstrap.json");
        await File.WriteAllTextAsync(bootstrap, server.Bootstrap());

        // Act
        var (code, output, error) = await RunAsync("xds", "dump", "--bootstrap", bootstrap, "--wait", "1500ms", "-o", "json");

        // Assert
        Assert.True(code == 0, error);
        using var json = JsonDocument.Parse(output);
        var resources = json.RootElement.GetProperty("resources").EnumerateArray()
            .ToDictionary(r => r.GetProperty("type").GetString() + "/" + r.GetProperty("name").GetString(), r => r);
        Assert.Equal("accepted", resources["LDS/orders.test:8080"].GetProperty("status").GetString());
        Assert.Contains("RDS 'orders-routes'", resources["LDS/orders.test:8080"].GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.Contains("1 virtual hosts, 1 routes", resources["RDS/orders-routes"].GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.Contains("least-request", resources["CDS/orders"].GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.Contains("2 routable endpoints", resources["EDS/orders"].GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.False(resources.ContainsKey("CDS/broken"));
        var cds = json.RootElement.GetProperty("types").EnumerateArray().Single(t => t.GetProperty("type").GetString() == "CDS");
        Assert.Contains("Cluster 'broken'", cds.GetProperty("lastNack").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resolve_SourceXds_PrintsTheClustersEndpoints()
    {
        await using var server = await FakeXdsServer.StartAsync();
        server.SetResource(XdsTypeUrls.Cluster, "orders", EdsCluster("orders"));
        server.SetResource(XdsTypeUrls.ClusterLoadAssignment, "orders", Assignment("orders", ("10.0.0.7", 8080)));
        var bootstrap = Path.Combine(_folder, "bootstrap.json");
        await File.WriteAllTextAsync(bootstrap, server.Bootstrap());

        var (code, output, error) = await RunAsync("resolve", "orders", "--source", "xds", "--bootstrap", bootstrap);

        Assert.True(code == 0, error);
        Assert.Contains("10.0.0.7:8080", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dump_MissingBootstrapFile_FailsNamingTheFile()
    {
        var missing = Path.Combine(_folder, "nope.json");

        var (code, _, error) = await RunAsync("xds", "dump", "--bootstrap", missing, "--wait", "0s");

        Assert.NotEqual(0, code);
        Assert.Contains("nope.json", error, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<(int Code, string Out, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal) { ["HOME"] = _folder };
        var console = new CliConsole(TextWriter.Synchronized(output), TextWriter.Synchronized(error), false, false, name => environment.GetValueOrDefault(name), _folder);
        var code = await Task.Run(() => CliApp.RunAsync(args, console, CancellationToken.None));
        return (code, output.ToString(), error.ToString());
    }
}
