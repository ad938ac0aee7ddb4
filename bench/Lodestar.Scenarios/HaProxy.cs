using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Lodestar.Testing;

namespace Lodestar.Scenarios;

/// <summary>A local HAProxy in front of the scenario's backends, started with a generated configuration and stopped, by this process's handle on it, at the end.</summary>
internal sealed class HaProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _configPath;

    private HaProxy(Process process, string configPath, Dictionary<string, int> ports)
    {
        _process = process;
        _configPath = configPath;
        Ports = ports;
    }

    /// <summary>Gets the loopback port of each frontend, by name (<c>roundrobin</c>, <c>leastconn</c>, <c>roundrobin-h2</c>, ...).</summary>
    public Dictionary<string, int> Ports { get; }

    public static async Task<HaProxy> StartAsync(IReadOnlyList<int> backendPorts, CancellationToken cancellationToken)
    {
        // Looked up here, before a start through setpriv would fail with a message about setpriv.
        var executable = InstalledPrograms.Find("haproxy") ?? throw new InvalidOperationException(
            "HAProxy is not installed (no haproxy on the PATH, in /usr/bin or in /usr/sbin): install it (apt-get install haproxy; the README's test command does) or leave out the proxied setups with --setups.");
        var ports = new Dictionary<string, int>();
        var config = new StringBuilder();
        config.AppendLine("global\n  maxconn 4000\n  log stderr format raw local0 emerg\n");
        config.AppendLine("defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  option http-keep-alive\n  http-reuse always\n");
        foreach (var balance in new[] { "roundrobin", "leastconn" })
        {
            foreach (var h2 in new[] { false, true })
            {
                var name = h2 ? balance + "-h2" : balance;
                var port = FreePort();
                ports[name] = port;
                config.Append(CultureInfo.InvariantCulture, $"frontend fe-{name}\n  bind 127.0.0.1:{port}{(h2 ? " proto h2" : string.Empty)}\n  default_backend be-{name}\n\n");
                config.Append(CultureInfo.InvariantCulture, $"backend be-{name}\n  balance {balance}\n");
                for (var i = 0; i < backendPorts.Count; i++)
                {
                    config.Append(CultureInfo.InvariantCulture, $"  server s{i} 127.0.0.1:{backendPorts[i]}{(h2 ? " proto h2" : string.Empty)}\n");
                }

                config.AppendLine();
            }
        }

        var path = Path.Combine(Path.GetTempPath(), $"lodestar-scenarios-{Environment.ProcessId}.cfg");
        await File.WriteAllTextAsync(path, config.ToString(), cancellationToken);
        var check = OwnedProcesses.Start(new ProcessStartInfo(executable, ["-c", "-q", "-f", path]) { RedirectStandardError = true, RedirectStandardOutput = true });
        try
        {
            var errors = check.StandardError.ReadToEndAsync(cancellationToken);
            await check.WaitForExitAsync(cancellationToken);
            if (check.ExitCode != 0)
            {
                throw new InvalidOperationException($"HAProxy rejected its configuration: {await errors}");
            }
        }
        finally
        {
            await OwnedProcesses.StopAsync(check);
        }

        var process = OwnedProcesses.Start(new ProcessStartInfo(executable, ["-db", "-f", path]) { RedirectStandardError = true, RedirectStandardOutput = true });
        var proxy = new HaProxy(process, path, ports);
        try
        {
            foreach (var port in ports.Values)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"HAProxy exited with code {process.ExitCode}: {await process.StandardError.ReadToEndAsync(cancellationToken)}");
                }

                await WaitForPortAsync(port, cancellationToken);
            }
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }

        return proxy;
    }

    public async ValueTask DisposeAsync()
    {
        await OwnedProcesses.StopAsync(_process);
        File.Delete(_configPath);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitForPortAsync(int port, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50, cancellationToken);
            }
        }

        throw new TimeoutException($"HAProxy did not listen on port {port}.");
    }
}
