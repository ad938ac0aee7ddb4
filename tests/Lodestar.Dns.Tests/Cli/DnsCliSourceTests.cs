using System.Diagnostics;
using System.Text.Json;
using Lodestar.Testing.Dns;

namespace Lodestar.Dns.Tests.Cli;

/// <summary>Runs the real <c>lodestar</c> command against dnsmasq.</summary>
public sealed class DnsCliSourceTests : IClassFixture<ZoneFixture>
{
    private readonly ZoneFixture _zone;

    public DnsCliSourceTests(ZoneFixture zone) => _zone = zone;

    [Fact]
    public async Task Resolve_HostNameWithPortOption_PrintsAddressesAsJson()
    {
        var (exitCode, output) = await RunAsync("resolve", "a.lodestar.test", "--source", "dns", "--server", _zone.Dns.Server, "--port", "8080", "--json");

        Assert.Equal(0, exitCode);
        using var json = JsonDocument.Parse(output);
        var endpoints = json.RootElement.GetProperty("endpoints").EnumerateArray()
            .Select(e => (e.GetProperty("address").GetString(), e.GetProperty("port").GetInt32())).OrderBy(e => e.Item1, StringComparer.Ordinal).ToList();
        Assert.Equal([("127.0.0.5", 8080), ("fd00::5", 8080)], endpoints);
    }

    [Fact]
    public async Task Resolve_SrvName_PrintsTargetsWithTheirPorts()
    {
        var (exitCode, output) = await RunAsync("resolve", "_http._tcp.svc.lodestar.test", "--source", "dns", "--server", _zone.Dns.Server, "--json");

        Assert.Equal(0, exitCode);
        using var json = JsonDocument.Parse(output);
        var ports = json.RootElement.GetProperty("endpoints").EnumerateArray()
            .Where(e => e.GetProperty("address").GetString() is "127.0.0.5" or "127.0.0.6")
            .Select(e => e.GetProperty("port").GetInt32()).Order().ToList();
        Assert.Equal([8080, 8081], ports);
    }

    [Fact]
    public async Task Resolve_ServerRefusesAaaaButAnswersA_PrintsTheAAddressAndWarnsAboutAaaa()
    {
        // A forwarder without upstream: it knows the name's A record from its hosts file and refuses the AAAA question.
        await using var dns = await DnsmasqServer.StartAsync(hostsLines: ["127.0.0.9 v4only.lodestar.test"], authoritative: false);

        var (exitCode, output, error) = await RunWithErrorsAsync("resolve", "v4only.lodestar.test", "--source", "dns", "--server", dns.Server, "--port", "8080", "--json");

        Assert.Equal(0, exitCode);
        using var json = JsonDocument.Parse(output);
        var endpoint = Assert.Single(json.RootElement.GetProperty("endpoints").EnumerateArray());
        Assert.Equal("127.0.0.9", endpoint.GetProperty("address").GetString());
        Assert.Equal(8080, endpoint.GetProperty("port").GetInt32());
        Assert.Contains("warning: Using the 1 A address(es) of v4only.lodestar.test for service 'v4only.lodestar.test' without its AAAA addresses", error, StringComparison.Ordinal);
        Assert.Contains($"DNS server {dns.Server} answered AAAA v4only.lodestar.test with Refused.", error, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(params string[] arguments)
    {
        var (exitCode, output, error) = await RunWithErrorsAsync(arguments);
        Assert.True(exitCode == 0, error);
        return (exitCode, output);
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunWithErrorsAsync(params string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Lodestar.Cli.dll"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var output = process.StandardOutput.ReadToEndAsync(cts.Token);
        var error = process.StandardError.ReadToEndAsync(cts.Token);
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await output, await error);
    }
}
