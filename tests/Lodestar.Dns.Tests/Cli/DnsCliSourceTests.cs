using System.Diagnostics;
using System.Text.Json;

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

    private static async Task<(int ExitCode, string Output)> RunAsync(params string[] arguments)
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
        Assert.True(process.ExitCode == 0, await error);
        return (process.ExitCode, await output);
    }
}
