using System.Diagnostics;
using Lodestar.Testing;
using Lodestar.Testing.Consul;

namespace Lodestar.Consul.Tests.Cli;

/// <summary>Runs the real <c>lodestar</c> command (the built Lodestar.Cli.dll) against the fake agent.</summary>
public sealed class ConsulCliTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Resolve_SourceConsulWithAddress_PrintsInstancesUsingTokenFromEnvironment()
    {
        await using var agent = await FakeConsulAgent.StartAsync();
        agent.RequiredToken = "cli-secret-token";
        agent.Register("orders-1", "orders", "127.0.0.1", 7001);

        using var process = Start(["resolve", "orders", "--source", "consul", "--address", agent.Address, "--json"], "cli-secret-token");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(s_timeout);

        Assert.True(process.ExitCode == 0, await stderr);
        Assert.Contains("7001", await stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("cli-secret-token", await stdout + await stderr, StringComparison.Ordinal);
        Assert.All(agent.Requests, r => Assert.Equal("cli-secret-token", r.Token));
    }

    [Fact]
    public async Task Register_SourceConsulWithTtl_RegistersAndDeregisterCommandRemovesIt()
    {
        await using var agent = await FakeConsulAgent.StartAsync();

        using var process = Start(["register", "orders", "--source", "consul", "--address", agent.Address, "--endpoint", "127.0.0.1:5000", "--ttl", "10"], null);
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lines.Enqueue(e.Data);
            }
        };
        process.BeginErrorReadLine();
        string Stderr() => string.Join('\n', lines);
        await Eventually.TrueAsync(() => Stderr().Contains("Registered", StringComparison.Ordinal) || process.HasExited, s_timeout, "the CLI registers");
        var instance = agent.Find("orders-127.0.0.1-5000");
        Assert.True(instance is not null, Stderr());
        process.Kill(); // the registering process dies without deregistering
        await process.WaitForExitAsync().WaitAsync(s_timeout);

        using var deregister = Start(["deregister", "orders", "--source", "consul", "--address", agent.Address, "--endpoint", "127.0.0.1:5000"], null);
        var deregisterErrors = deregister.StandardError.ReadToEndAsync();
        await deregister.WaitForExitAsync().WaitAsync(s_timeout);

        Assert.Equal(TimeSpan.FromSeconds(10), instance.Ttl);
        Assert.Equal("ttl", instance.CheckKind);
        Assert.Equal("passing", instance.Status);
        Assert.True(deregister.ExitCode == 0, await deregisterErrors);
        Assert.Null(agent.Find("orders-127.0.0.1-5000"));
    }

    private static Process Start(string[] args, string? token)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "Lodestar.Cli.dll");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        info.ArgumentList.Add(cli);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Remove("CONSUL_HTTP_ADDR");
        info.Environment.Remove("CONSUL_HTTP_TOKEN");
        if (token is not null)
        {
            info.Environment["CONSUL_HTTP_TOKEN"] = token;
        }

        return Process.Start(info)!;
    }
}
