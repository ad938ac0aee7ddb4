using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Lodestar.Scenarios;

/// <summary>
/// The parent's handle on one setup's client process (the runner re-invoked with <c>--child</c>; see
/// <see cref="SetupChild"/>): every setup starts from the same process state, whatever ran before it, and its CPU and
/// bytes per request are its client's alone. Killed, by this handle, when the scenario ends or the runner stops.
/// </summary>
internal sealed class SetupProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _errors = new();

    private SetupProcess(SetupSpec spec, Process process)
    {
        Spec = spec;
        _process = process;
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                lock (_errors)
                {
                    // The last lines only: enough to say why a client process failed, bounded however much it writes.
                    _errors.Enqueue(line);
                    if (_errors.Count > 20)
                    {
                        _errors.Dequeue();
                    }
                }
            }
        };
        _process.BeginErrorReadLine();
    }

    public SetupSpec Spec { get; }

    public static async Task<SetupProcess> StartAsync(SetupSpec spec, Scenario scenario, IReadOnlyList<string> backendUrls, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        var host = Environment.ProcessPath ?? "dotnet";
        startInfo.FileName = host;
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            startInfo.ArgumentList.Add(typeof(SetupProcess).Assembly.Location);
        }

        foreach (var argument in spec.ToArguments(scenario, backendUrls))
        {
            startInfo.ArgumentList.Add(argument);
        }

        var setup = new SetupProcess(spec, OwnedProcesses.Start(startInfo));
        try
        {
            await setup.ReadAnswerAsync("@ready", TimeSpan.FromSeconds(60), cancellationToken);
            return setup;
        }
        catch
        {
            await setup.DisposeAsync();
            throw;
        }
    }

    /// <summary>Drives the client in short windows until its throughput is steady; returns the number of windows.</summary>
    public async Task<int> WarmAsync(CancellationToken cancellationToken)
    {
        await SendAsync("warm");
        return int.Parse(await ReadAnswerAsync("@warmed", TimeSpan.FromSeconds(60), cancellationToken), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs one measured window in the client process.</summary>
    public async Task<RunResult> RunAsync(TimeSpan duration, int maxRequests, CancellationToken cancellationToken)
    {
        await SendAsync(string.Create(CultureInfo.InvariantCulture, $"run {duration.TotalSeconds:R} {maxRequests}"));
        var json = await ReadAnswerAsync("@run", duration + TimeSpan.FromSeconds(60), cancellationToken);
        return JsonSerializer.Deserialize<RunResult>(json) ?? throw new InvalidOperationException($"Setup '{Spec.Name}' answered an empty run.");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            // Closing its input ends the client process by itself; the kill below is for one that does not listen.
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
            // Already gone.
        }

        await OwnedProcesses.StopAsync(_process);
    }

    private async Task SendAsync(string command)
    {
        await _process.StandardInput.WriteLineAsync(command);
        await _process.StandardInput.FlushAsync();
    }

    private async Task<string> ReadAnswerAsync(string prefix, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (await _process.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
            {
                if (line == prefix || line.StartsWith(prefix + " ", StringComparison.Ordinal))
                {
                    return line[prefix.Length..].Trim();
                }

                if (line.StartsWith('@'))
                {
                    throw new InvalidOperationException($"Setup '{Spec.Name}' answered '{line}' where '{prefix}' was expected.");
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"Setup '{Spec.Name}' did not answer '{prefix}' within {timeout.TotalSeconds:F0} s.{ErrorTail()}");
        }

        throw new InvalidOperationException($"Setup '{Spec.Name}' exited before answering '{prefix}'.{ErrorTail()}");
    }

    private string ErrorTail()
    {
        lock (_errors)
        {
            return _errors.Count == 0 ? string.Empty : " Its last error output: " + string.Join(Environment.NewLine, _errors);
        }
    }
}
