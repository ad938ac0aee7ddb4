using System.Diagnostics;

namespace Lodestar.Scenarios;

/// <summary>
/// A YARP 2.3 reverse proxy in a process of its own (bench/Lodestar.YarpProxy) in front of the scenario's backends,
/// started here and stopped, by this process's handle on it, at the end.
/// </summary>
internal sealed class YarpProcess : IAsyncDisposable
{
    private readonly Process _process;

    private YarpProcess(Process process)
    {
        _process = process;
    }

    /// <summary>Gets the port the proxy listens on, chosen by the system as the proxy bound it.</summary>
    public int Port { get; private set; }

    public static async Task<YarpProcess> StartAsync(string policy, IReadOnlyList<string> backendUrls, bool http2, CancellationToken cancellationToken)
    {
        // Built beside this project (a project reference without its assembly): .../Lodestar.Scenarios/bin/<config>/<tfm>/.
        var dll = Path.Combine(AppContext.BaseDirectory.Replace("Lodestar.Scenarios", "Lodestar.YarpProxy", StringComparison.Ordinal), "Lodestar.YarpProxy.dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"The YARP proxy is not built: {dll}. Build bench/Lodestar.YarpProxy first.", dll);
        }

        // Port 0: the proxy's listener takes a free port as it binds and reports it, so no other process can take the
        // port between a choice made here and the proxy's bind.
        var arguments = new List<string> { dll, "--port", "0", "--policy", policy, "--backends", string.Join(',', backendUrls) };
        if (http2)
        {
            arguments.Add("--h2");
        }

        // The proxy ends when its standard input closes: when this runner exits, however it exits, the proxy follows.
        arguments.Add("--exit-with-stdin");
        var process = OwnedProcesses.Start(new ProcessStartInfo("dotnet", arguments) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true });
        var proxy = new YarpProcess(process);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.StartsWith("listening ", StringComparison.Ordinal))
                {
                    proxy.Port = int.Parse(line["listening ".Length..], System.Globalization.CultureInfo.InvariantCulture);
                    return proxy;
                }
            }

            throw new InvalidOperationException($"The YARP proxy exited before listening: {await process.StandardError.ReadToEndAsync(cancellationToken)}");
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await OwnedProcesses.StopAsync(_process);
    }
}
