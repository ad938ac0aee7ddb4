using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Lodestar.Scenarios;

/// <summary>
/// The processes this runner started (HAProxy, the YARP proxies, the per-setup client processes), by handle: whatever
/// ends the run (the end of a scenario, Ctrl+C, SIGTERM, an unhandled exception, the process exiting) kills them, and
/// nothing else is ever killed.
/// </summary>
/// <remarks>
/// Where util-linux's <c>setpriv</c> is installed, every process is started through it with <c>--pdeathsig KILL</c>
/// (it sets the flag and then becomes the program, same process id), so the kernel kills it when this runner dies, even
/// by SIGKILL, which no handler here sees. The kernel sends that signal when the <em>thread</em> that started the process
/// ends, so every process is started from one dedicated thread that lives as long as the runner: a thread-pool thread
/// retiring after a quiet spell would otherwise kill a proxy in the middle of a run.
/// </remarks>
internal static class OwnedProcesses
{
    private const string Setpriv = "/usr/bin/setpriv";
    private static readonly Lock s_lock = new();
    private static readonly HashSet<Process> s_processes = [];
    private static readonly System.Collections.Concurrent.BlockingCollection<(ProcessStartInfo StartInfo, TaskCompletionSource<Process> Started)> s_starts = [];
    private static int s_hooked;

    /// <summary>Starts a process and records it as owned until <see cref="StopAsync"/>.</summary>
    public static Process Start(ProcessStartInfo startInfo)
    {
        Hook();
        if (File.Exists(Setpriv))
        {
            startInfo.ArgumentList.Insert(0, startInfo.FileName);
            startInfo.ArgumentList.Insert(0, "--");
            startInfo.ArgumentList.Insert(0, "KILL");
            startInfo.ArgumentList.Insert(0, "--pdeathsig");
            startInfo.FileName = Setpriv;
        }

        var started = new TaskCompletionSource<Process>(TaskCreationOptions.RunContinuationsAsynchronously);
        s_starts.Add((startInfo, started));
        return started.Task.GetAwaiter().GetResult();
    }

    /// <summary>Kills an owned process if it still runs, waits for it and forgets it.</summary>
    public static async ValueTask StopAsync(Process process)
    {
        Kill(process);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"Process {process.Id} did not exit within 10 s of being killed.");
        }

        lock (s_lock)
        {
            s_processes.Remove(process);
        }

        process.Dispose();
    }

    /// <summary>Kills every owned process that still runs (the last resort: on exit, on a signal, on a crash).</summary>
    public static void KillAll()
    {
        Process[] processes;
        lock (s_lock)
        {
            processes = [.. s_processes];
        }

        foreach (var process in processes)
        {
            Kill(process);
        }
    }

    /// <summary>Gets the ids of the owned processes still running.</summary>
    public static int[] Running()
    {
        lock (s_lock)
        {
            return [.. s_processes.Where(p => !HasExited(p)).Select(p => p.Id)];
        }
    }

    private static void Hook()
    {
        if (Interlocked.Exchange(ref s_hooked, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
            AppDomain.CurrentDomain.UnhandledException += (_, _) => KillAll();
            new Thread(StartLoop) { IsBackground = true, Name = "process starter" }.Start();
        }
    }

    private static void StartLoop()
    {
        foreach (var (startInfo, started) in s_starts.GetConsumingEnumerable())
        {
            try
            {
                lock (s_lock)
                {
                    // Started under the lock so that KillAll, racing with a start, either sees the process or runs before it exists.
                    var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start {startInfo.FileName}.");
                    s_processes.Add(process);
                    started.SetResult(process);
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                started.SetException(ex);
            }
        }
    }

    private static bool HasExited(Process process)
    {
        try
        {
            return process.HasExited;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or ExternalException or NotSupportedException)
        {
            // Exited (and possibly reaped) between the check and the kill, or already disposed: nothing left to stop.
        }
    }
}
