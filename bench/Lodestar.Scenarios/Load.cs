using System.Diagnostics;
using System.Globalization;

namespace Lodestar.Scenarios;

/// <summary>The closed-loop load generator: a fixed number of callers, each sending its next request when the last one answered.</summary>
internal static class Load
{
    /// <summary>Sends requests from <paramref name="concurrency"/> callers for <paramref name="duration"/> or <paramref name="maxRequests"/> requests, whichever ends first.</summary>
    /// <remarks>
    /// CPU and bytes are this process's over the window: the setup's client process alone, the backends and proxies run
    /// elsewhere. With more than one of <paramref name="uris"/>, the requests take them in turn.
    /// </remarks>
    public static async Task<RunResult> RunAsync(HttpClient client, IReadOnlyList<string> uris, bool http2, int concurrency, TimeSpan duration, int maxRequests, CancellationToken cancellationToken)
    {
        var loadAverage = LoadAverage();
        using var self = Process.GetCurrentProcess();
        var cpuBefore = self.TotalProcessorTime;
        var userBefore = self.UserProcessorTime;
        var bytesBefore = GC.GetTotalAllocatedBytes(true);
        var workItemsBefore = ThreadPool.CompletedWorkItemCount;
        var switchesBefore = ContextSwitches();
        var jitBefore = System.Runtime.JitInfo.GetCompilationTime();
        var methodsBefore = System.Runtime.JitInfo.GetCompiledMethodCount();
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var issued = 0;
        var turn = 0;
        var workers = new Task<(List<long> Latencies, int Errors)>[concurrency];
        for (var w = 0; w < concurrency; w++)
        {
            workers[w] = Task.Run(async () =>
            {
                var latencies = new List<long>(4096);
                var errors = 0;
                while (Stopwatch.GetTimestamp() < deadline && Interlocked.Increment(ref issued) <= maxRequests)
                {
                    var uri = uris.Count == 1 ? uris[0] : uris[(int)((uint)Interlocked.Increment(ref turn) % (uint)uris.Count)];
                    using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                    if (http2)
                    {
                        request.Version = System.Net.HttpVersion.Version20;
                        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
                    }

                    // Hash policies see a new one of 100,000 users on every request, so a run's share per backend is the
                    // table's over as many keys as there were requests (1,000 keys alone spread ±7 % per backend); the other
                    // policies ignore the header.
                    request.Headers.Add("X-User", "user-" + HashKeys.Next().ToString(CultureInfo.InvariantCulture));
                    var start = Stopwatch.GetTimestamp();
                    try
                    {
                        using var response = await client.SendAsync(request, cancellationToken);
                        await response.Content.ReadAsByteArrayAsync(cancellationToken);
                        if (!response.IsSuccessStatusCode)
                        {
                            errors++;
                        }
                    }
                    catch (HttpRequestException)
                    {
                        errors++;
                    }

                    latencies.Add(Stopwatch.GetTimestamp() - start);
                }

                return (latencies, errors);
            }, cancellationToken);
        }

        var results = await Task.WhenAll(workers);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        self.Refresh();
        var cpu = (self.TotalProcessorTime - cpuBefore).TotalMilliseconds;
        var user = (self.UserProcessorTime - userBefore).TotalMilliseconds;
        var bytes = GC.GetTotalAllocatedBytes(true) - bytesBefore;
        var workItems = ThreadPool.CompletedWorkItemCount - workItemsBefore;
        var switches = ContextSwitches() - switchesBefore;
        var jit = System.Runtime.JitInfo.GetCompilationTime() - jitBefore;
        var methods = System.Runtime.JitInfo.GetCompiledMethodCount() - methodsBefore;
        var all = results.SelectMany(r => r.Latencies).Select(t => t * 1000.0 / Stopwatch.Frequency).ToArray();
        Array.Sort(all);
        double PerRequest(double total) => all.Length == 0 ? 0 : total / all.Length;
        return new RunResult
        {
            Requests = all.Length,
            Errors = results.Sum(r => r.Errors),
            Seconds = elapsed,
            RequestsPerSecond = all.Length / elapsed,
            P50Ms = Percentile(all, 0.50),
            P90Ms = Percentile(all, 0.90),
            P99Ms = Percentile(all, 0.99),
            P999Ms = Percentile(all, 0.999),
            MaxMs = all.Length == 0 ? 0 : all[^1],
            Curve = Svg.Quantiles.Select(q => Percentile(all, q)).ToArray(),
            CpuMicrosecondsPerRequest = PerRequest(cpu * 1000),
            UserCpuMicrosecondsPerRequest = PerRequest(user * 1000),
            BytesPerRequest = all.Length == 0 ? 0 : bytes / all.Length,
            WorkItemsPerRequest = PerRequest(workItems),
            ContextSwitchesPerRequest = switches < 0 ? 0 : PerRequest(switches),
            LoadAverage = loadAverage,
            JitMilliseconds = jit.TotalMilliseconds,
            JitMethods = methods,
        };
    }

    /// <summary>
    /// Runs short windows until two in a row agree on throughput within 5 % and the last spent at most 1 % of its time
    /// compiling (at most fifty windows, 20 s); returns how many it took.
    /// </summary>
    /// <remarks>
    /// Throughput settles within a few windows, compilation does not: tiered JIT and dynamic PGO go on recompiling hot
    /// methods in the background for seconds (after a warm-up that stopped at a steady throughput alone, the compiler's
    /// time came to a third of the first 1.7 s measured pass), and longer for a setup with more code on its path (a hedged
    /// one), whose measured window then paid for compilation its steady state never does.
    /// </remarks>
    public static async Task<int> WarmUntilSteadyAsync(HttpClient client, IReadOnlyList<string> uris, bool http2, int callers, CancellationToken cancellationToken)
    {
        const int MaxWindows = 50;
        const double MaxCompilingShare = 0.01;
        var previous = 0.0;
        for (var window = 1; window <= MaxWindows; window++)
        {
            var run = await RunAsync(client, uris, http2, callers, TimeSpan.FromMilliseconds(400), 200_000, cancellationToken);
            var steady = window > 1 && previous > 0 && Math.Abs(run.RequestsPerSecond - previous) <= 0.05 * previous;
            if (steady && run.JitMilliseconds <= MaxCompilingShare * run.Seconds * 1000)
            {
                return window;
            }

            previous = run.RequestsPerSecond;
        }

        return MaxWindows;
    }

    /// <summary>
    /// Gets the context switches of this process's threads so far (voluntary and involuntary, summed over the threads
    /// alive now), or -1 where /proc cannot be read: a thread woken for nothing shows here before it shows in CPU.
    /// </summary>
    public static long ContextSwitches()
    {
        try
        {
            var total = 0L;
            foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
            {
                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        total += long.Parse(line.AsSpan(line.IndexOf(':', StringComparison.Ordinal) + 1).Trim(), CultureInfo.InvariantCulture);
                    }
                }
            }

            return total;
        }
        catch (IOException)
        {
            return -1;
        }
        catch (UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>Gets the machine's 1, 5 and 15 minute load averages, or "n/a".</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "n/a";
        }
    }

    /// <summary>Gets the value at <paramref name="quantile"/> of sorted values (nearest rank).</summary>
    public static double Percentile(double[] sorted, double quantile)
        => sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];
}
