using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Lodestar.LoadBalancing;
using Lodestar.Scenarios;
using Lodestar.Testing;
using Microsoft.AspNetCore.Server.Kestrel.Core;

// Runs the same closed-loop traffic through a plain HttpClient on one address, Lodestar policies with and without
// hedging, Microsoft.Extensions.ServiceDiscovery's round robin bare and with the standard resilience handler, YARP 2.3 (a
// reverse-proxy process of its own: PowerOfTwoChoices, RoundRobin) and HAProxy (roundrobin, leastconn), all in front of
// the same loopback Kestrel backends. The backends and the proxies run in this process and its proxy processes, shared
// by every setup; each setup's client runs in a process of its own (this program re-invoked with --child), so every
// setup starts from the same state (JIT, GC heap, thread pool, connection pools) whatever ran before it, and its CPU and
// bytes per request are its client's alone. Every scenario first warms every setup until its throughput is steady,
// then measures them in alternating passes (forward, reverse, forward, ...) and reports each setup's median and spread
// over the passes. Bounded in time and count. Ctrl+C or SIGTERM stops it: it kills the processes it started (by
// handle, never by name), stops the backends and exits non-zero.
//
//   dotnet run -c Release --project bench/Lodestar.Scenarios -- [--duration 3] [--passes 3] [--out docs/benchmarks-tail] [--only id,id]
//       [--setups "name,name"] [--hedge-delay-ms 3] [--max-hedge-ratio 0.02]
//
// --setups runs only the named setups (as the tables name them), in the order given, so that two setups compared with
// each other can run next to each other in every pass; the paired ratios (x unhedged, x M.E.SD paired) are medians of
// per-pass ratios, each pass comparing two runs made within seconds of each other. --hedge-delay-ms gives the hedged
// setups a fixed delay in place of the p98, and --max-hedge-ratio another cap than 2 %; their names say so.
// --duration is the measured seconds per setup, split evenly over the passes. Environment variables prefixed SCENARIO_
// reach every client process's configuration (SCENARIO_Lodestar__RetireRemovedConnections=false, for instance).
if (args.Contains("--child"))
{
    return await SetupChild.RunAsync(args);
}

var seconds = 3.0;
var passes = 3;
var output = Path.Combine("docs", "benchmarks-tail");
string[]? only = null;
string[]? onlySetups = null;
double? hedgeDelayMs = null;
double? maxHedgeRatio = null;
for (var i = 0; i < args.Length - 1; i++)
{
    switch (args[i])
    {
        case "--duration":
            seconds = double.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--passes":
            passes = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--out":
            output = args[++i];
            break;
        case "--only":
            only = args[++i].Split(',');
            break;
        case "--setups":
            onlySetups = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            break;
        case "--hedge-delay-ms":
            hedgeDelayMs = Math.Clamp(double.Parse(args[++i], CultureInfo.InvariantCulture), 0.1, 60_000);
            break;
        case "--max-hedge-ratio":
            maxHedgeRatio = Math.Clamp(double.Parse(args[++i], CultureInfo.InvariantCulture), 0.0001, 1);
            break;
    }
}

var duration = TimeSpan.FromSeconds(Math.Clamp(seconds, 1, 60));
passes = Math.Clamp(passes, 1, 9);
var wallClock = Stopwatch.StartNew();
using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(40));

// Ctrl+C and SIGTERM cancel the run: the scenario's finally blocks kill the client and proxy processes and stop the
// backends, and the runner exits with 128 + the signal. A second signal while that runs ends the process at once (the
// exit handler still kills the processes started here).
var stoppedBy = 0;
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => OnSignal(c, 130));
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => OnSignal(c, 143));

string[] allPolicies =
[
    LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.Random, LoadBalancingPolicies.LeastRequest, LoadBalancingPolicies.WeightedRoundRobin,
    LoadBalancingPolicies.PeakEwma, LoadBalancingPolicies.RingHash, LoadBalancingPolicies.Maglev,
];
string[] tailPolicies = [LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.LeastRequest, LoadBalancingPolicies.PeakEwma];

var report = new Report
{
    Command = "dotnet run -c Release --project bench/Lodestar.Scenarios -- " + string.Join(' ', args),
    Machine = $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}",
    SecondsPerSetup = duration.TotalSeconds,
    Passes = passes,
};

var scenarios = new List<Scenario>
{
    new("throughput", "5 equal backends answering at once, HTTP/1.1, 32 callers: throughput, CPU and bytes per request", 5, HttpProtocols.Http1, 32, 0, 1, allPolicies),
    new("throughput-16", "5 equal backends answering at once, HTTP/1.1, 16 callers: throughput, CPU and bytes per request under contention", 5, HttpProtocols.Http1, 16, 0, 1, tailPolicies, WithPeers: false),
    new("equal", "5 equal backends at 5 ms, HTTP/1.1, 20 callers: shares, and hedges when nothing is slow", 5, HttpProtocols.Http1, 20, 5, 1, allPolicies),
    new("slow5x-8", "5 backends at 5 ms, one 5x slower, HTTP/1.1, 8 callers", 5, HttpProtocols.Http1, 8, 5, 5, tailPolicies),
    new("slow5x-20", "5 backends at 5 ms, one 5x slower, HTTP/1.1, 20 callers", 5, HttpProtocols.Http1, 20, 5, 5, tailPolicies),
    new("slow10x-8", "5 backends at 5 ms, one 10x slower, HTTP/1.1, 8 callers", 5, HttpProtocols.Http1, 8, 5, 10, tailPolicies),
    new("slow10x-20", "5 backends at 5 ms, one 10x slower, HTTP/1.1, 20 callers", 5, HttpProtocols.Http1, 20, 5, 10, tailPolicies),
    new("h2-equal", "4 equal backends at 5 ms, HTTP/2 (h2c), 16 callers: shares", 4, HttpProtocols.Http2, 16, 5, 1, allPolicies),
    new("h2-slow5x-8", "5 backends at 5 ms, one 5x slower, HTTP/2 (h2c), 8 callers", 5, HttpProtocols.Http2, 8, 5, 5, tailPolicies),
    new("h2-slow5x-20", "5 backends at 5 ms, one 5x slower, HTTP/2 (h2c), 20 callers", 5, HttpProtocols.Http2, 20, 5, 5, tailPolicies),
    new("h2-slow10x-8", "5 backends at 5 ms, one 10x slower, HTTP/2 (h2c), 8 callers", 5, HttpProtocols.Http2, 8, 5, 10, tailPolicies),
    new("h2-slow10x-20", "5 backends at 5 ms, one 10x slower, HTTP/2 (h2c), 20 callers", 5, HttpProtocols.Http2, 20, 5, 10, tailPolicies),
};

try
{
    foreach (var scenario in scenarios.Where(s => only is null || only.Contains(s.Id)))
    {
        report.Scenarios.Add(await RunScenarioAsync(scenario, duration / passes, passes, 2_000_000, stop.Token));
    }
}
catch (Exception) when (stop.IsCancellationRequested)
{
    // Cancelled, or a failure that the stop caused (a client process ended by the terminal's Ctrl+C before this
    // process's handler cancelled the run): the scenario's finally blocks have already cleaned up.
    OwnedProcesses.KillAll();
    var left = OwnedProcesses.Running();
    Console.Error.WriteLine(stoppedBy != 0
        ? $"Stopped by signal after {wallClock.Elapsed.TotalMinutes:F1} min; backends stopped, started processes killed{(left.Length == 0 ? string.Empty : ", still exiting: " + string.Join(' ', left))}."
        : $"Stopped: the run exceeded its 40 minute bound; backends stopped, started processes killed.");
    return stoppedBy != 0 ? stoppedBy : 1;
}

Summarise(report);
Print(report);
PrintSummary(report);
Console.WriteLine($"Total run time {wallClock.Elapsed.TotalMinutes:F1} min");
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output + ".json"))!);
await File.WriteAllTextAsync(output + ".json", JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
await File.WriteAllTextAsync(output + ".svg", Svg.Render(report));
Console.WriteLine($"Wrote {output}.json and {output}.svg");
return stoppedBy;

void OnSignal(PosixSignalContext context, int exitCode)
{
    if (Interlocked.CompareExchange(ref stoppedBy, exitCode, 0) == 0)
    {
        context.Cancel = true;
        Console.Error.WriteLine($"{context.Signal}: stopping (the started processes are killed, the backends stopped); send it again to end at once.");
        stop.Cancel();
    }
}

async Task<ScenarioResult> RunScenarioAsync(Scenario scenario, TimeSpan runFor, int passCount, int maxRequests, CancellationToken cancellationToken)
{
    Console.WriteLine($"Scenario ({scenario.Id}): {scenario.Description}; load average {Load.LoadAverage()}");
    var backends = new List<TestBackend>();
    var http2 = scenario.Protocols == HttpProtocols.Http2;
    var result = new ScenarioResult { Id = scenario.Id, Description = scenario.Description, DelayMs = scenario.DelayMs, SlowFactor = scenario.SlowFactor, LoadAverageAtStart = Load.LoadAverage() };
    var proxies = new List<IAsyncDisposable>();
    var starting = new List<Task<SetupProcess>>();
    try
    {
        for (var i = 0; i < scenario.Backends; i++)
        {
            var backend = await TestBackend.StartAsync("b" + i, scenario.Protocols);
            backends.Add(backend);
            backend.Delay = TimeSpan.FromMilliseconds(scenario.DelayMs * (i == scenario.Backends - 1 ? scenario.SlowFactor : 1));
        }

        var backendUrls = backends.Select(b => b.Url).ToArray();
        var specs = new List<SetupSpec> { new(Peers.Plain, SetupKind.Plain, backends[0].Url + "/"), new(Peers.PlainRotated, SetupKind.PlainRotated, backends[0].Url + "/"), new(Peers.Factory, SetupKind.Factory, backends[0].Url + "/") };
        specs.AddRange(scenario.Policies.Select(p => new SetupSpec("lodestar " + p, SetupKind.Lodestar, "http://svc/", p)));
        if (scenario.WithPeers)
        {
            // The hedged setups' names say how they hedge: "+ hedging p98" by default.
            var hedging = Peers.Hedged + (hedgeDelayMs is { } fixedDelay ? string.Create(CultureInfo.InvariantCulture, $" {fixedDelay} ms") : " p98")
                          + (maxHedgeRatio is { } cap ? string.Create(CultureInfo.InvariantCulture, $" (cap {cap:P2})") : string.Empty);
            foreach (var policy in new[] { LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.PeakEwma })
            {
                specs.Add(new("lodestar " + policy + hedging, SetupKind.Lodestar, "http://svc/", policy, Hedged: true, HedgeDelayMs: hedgeDelayMs, MaxHedgeRatio: maxHedgeRatio));
            }
        }

        if (scenario.DelayMs == 0)
        {
            // Where CPU per request is measured: the factory client and Lodestar's round robin again without the factory's
            // own logging handlers, so that the factory's share of a factory client's cost is told apart from Lodestar's.
            specs.Add(new(Peers.FactoryNoLoggers, SetupKind.Factory, backends[0].Url + "/", NoFactoryLoggers: true));
            specs.Add(new("lodestar " + LoadBalancingPolicies.RoundRobin + Peers.NoLoggers, SetupKind.Lodestar, "http://svc/", LoadBalancingPolicies.RoundRobin, NoFactoryLoggers: true));
        }

        specs.Add(new(Peers.Mesd, SetupKind.Mesd, "http://svc/"));
        specs.Add(new("M.E.SD round robin + standard resilience", SetupKind.MesdResilience, "http://svc/"));
        var proxied = onlySetups is null || onlySetups.Any(name => name.StartsWith("yarp ", StringComparison.Ordinal) || name.StartsWith("haproxy ", StringComparison.Ordinal));

        // One client process per setup, started together (they idle until told to send), so no setup inherits another's
        // JIT, GC heap, thread pool or connections; each answers only while the parent drives it, one at a time. The
        // proxies start meanwhile, and their clients once they listen.
        starting.AddRange(Selected(specs).Select(spec => SetupProcess.StartAsync(spec, scenario, backendUrls, cancellationToken)));
        if (scenario.WithPeers && proxied)
        {
            // HAProxy binds the ports it was given; the YARP processes start once it listens on them, and take free
            // ports as they bind (port 0), which therefore cannot be one of HAProxy's.
            var haproxyStart = Started(HaProxy.StartAsync(backends.Select(b => b.Port).ToArray(), cancellationToken));
            Task<IAsyncDisposable>[] proxyStarts =
            [
                haproxyStart,
                StartedAfter(haproxyStart, () => YarpProcess.StartAsync("PowerOfTwoChoices", backendUrls, http2, cancellationToken)),
                StartedAfter(haproxyStart, () => YarpProcess.StartAsync("RoundRobin", backendUrls, http2, cancellationToken)),
            ];
            try
            {
                await Task.WhenAll(proxyStarts);
            }
            finally
            {
                // Whichever started is stopped at the end, even when another failed to.
                proxies.AddRange(proxyStarts.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result));
            }

            var haproxy = (HaProxy)proxies[0];
            var yarpP2c = (YarpProcess)proxies[1];
            var yarpRoundRobin = (YarpProcess)proxies[2];
            List<SetupSpec> peers =
            [
                new(Peers.YarpP2c, SetupKind.Plain, $"http://127.0.0.1:{yarpP2c.Port}/"),
                new("yarp RoundRobin", SetupKind.Plain, $"http://127.0.0.1:{yarpRoundRobin.Port}/"),
            ];
            foreach (var balance in new[] { "roundrobin", "leastconn" })
            {
                peers.Add(new("haproxy " + balance, SetupKind.Plain, $"http://127.0.0.1:{haproxy.Ports[http2 ? balance + "-h2" : balance]}/"));
            }

            starting.AddRange(Selected(peers).Select(spec => SetupProcess.StartAsync(spec, scenario, backendUrls, cancellationToken)));
        }

        var setups = await Task.WhenAll(starting);
        if (onlySetups is not null)
        {
            // In the order given, so that setups compared with each other run next to each other.
            setups = [.. setups.OrderBy(setup => Array.IndexOf(onlySetups, setup.Spec.Name))];
            var missing = onlySetups.Where(name => !setups.Any(setup => setup.Spec.Name == name)).ToArray();
            if (missing.Length > 0)
            {
                Console.WriteLine($"  --setups: no setup named {string.Join(", ", missing.Select(name => "'" + name + "'"))} in this scenario");
            }
        }

        // Warm up before anything is measured: every setup in short windows until two windows in a row agree on throughput
        // within 5 % and the last spent at most 1 % of its time compiling (connections, estimates, tier-0 JIT in the first
        // window; tiered JIT and dynamic PGO recompile the hot methods in the background for seconds). Each client has a
        // process of its own, so a round over all of them first, as when they shared one, would only warm each twice; the
        // first setup's windows warm the backends and proxies.
        foreach (var setup in setups)
        {
            var windows = await setup.WarmAsync(cancellationToken);
            if (windows > 3)
            {
                Console.WriteLine($"  warm-up  {setup.Spec.Name,-42} steady after {windows} windows");
            }
        }

        // Then the passes, alternating in order and reverse order so that a drift in the machine's load does not favour
        // whoever runs first; each setup's figures are the median over the passes.
        for (var number = 1; number <= passCount; number++)
        {
            var pass = number % 2 == 1 ? "forward" : "reverse";
            var ordered = pass == "forward" ? setups : setups.Reverse().ToArray();
            foreach (var setup in ordered)
            {
                var before = backends.Select(b => b.Requests).ToArray();
                var run = await setup.RunAsync(runFor, maxRequests, cancellationToken);
                run.Setup = setup.Spec.Name;
                run.Pass = pass;
                run.PassNumber = number;
                var attempts = 0L;
                for (var i = 0; i < backends.Count; i++)
                {
                    var count = backends[i].Requests - before[i];
                    attempts += count;
                    run.Shares[BackendName(scenario, backends, i)] = count;
                }

                run.ExtraAttemptsPercent = run.Requests == 0 ? 0 : 100.0 * (attempts - run.Requests) / run.Requests;
                result.Results.Add(run);
                Console.WriteLine($"  {number} {pass,-7} {setup.Spec.Name,-42} {run.RequestsPerSecond,8:F0} req/s  p50 {run.P50Ms,6:F2}  p99 {run.P99Ms,6:F2}  p99.9 {run.P999Ms,6:F2} ms  cpu {run.CpuMicrosecondsPerRequest,5:F1} us (user {run.UserCpuMicrosecondsPerRequest,5:F1})  {run.BytesPerRequest,6} B  items {run.WorkItemsPerRequest,4:F2}  switches {run.ContextSwitchesPerRequest,4:F2}  jit {run.JitMethods,4} in {run.JitMilliseconds,5:F0} ms  extra {run.ExtraAttemptsPercent,5:F2} %  errors {run.Errors}  load {run.LoadAverage}");
            }
        }
    }
    finally
    {
        // Whatever ended the scenario (its end, a failure, Ctrl+C): the client processes first, then the proxies, then
        // the backends they talk to.
        foreach (var task in starting)
        {
            try
            {
                await (await task).DisposeAsync();
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // A setup that failed to start has already been killed and disposed by its own start.
            }
        }

        foreach (var proxy in proxies)
        {
            await proxy.DisposeAsync();
        }

        foreach (var backend in backends)
        {
            await backend.DisposeAsync();
        }
    }

    return result;
}

IEnumerable<SetupSpec> Selected(IEnumerable<SetupSpec> specs) => onlySetups is null ? specs : specs.Where(spec => onlySetups.Contains(spec.Name));

static async Task<IAsyncDisposable> Started<T>(Task<T> start)
    where T : IAsyncDisposable
    => await start;

static async Task<IAsyncDisposable> StartedAfter<T>(Task first, Func<Task<T>> start)
    where T : IAsyncDisposable
{
    await first;
    return await start();
}

static string BackendName(Scenario scenario, List<TestBackend> backends, int index)
    => backends[index].Name + (scenario.SlowFactor > 1 && index == backends.Count - 1 ? " (slow)" : string.Empty);

static void Summarise(Report report)
{
    // Each setup's median over the passes; ratios to the peers the goals name, per scenario.
    foreach (var scenario in report.Scenarios)
    {
        foreach (var group in scenario.Results.GroupBy(r => r.Setup))
        {
            var runs = group.ToList();
            var shares = new Dictionary<string, long>();
            foreach (var run in runs)
            {
                foreach (var (backend, count) in run.Shares)
                {
                    shares[backend] = shares.GetValueOrDefault(backend) + count;
                }
            }

            var total = Math.Max(1, shares.Values.Sum());
            var fast = shares.Where(s => !s.Key.EndsWith("(slow)", StringComparison.Ordinal)).Select(s => s.Value).ToArray();
            var slow = shares.Where(s => s.Key.EndsWith("(slow)", StringComparison.Ordinal)).Sum(s => s.Value);
            var requests = runs.Sum(r => (long)r.Requests);
            scenario.Summary.Add(new SetupSummary
            {
                Setup = group.Key,
                RequestsPerSecond = Median(runs.Select(r => r.RequestsPerSecond)),
                RequestsPerSecondSpreadPercent = Spread(runs.Select(r => r.RequestsPerSecond)),
                P99Ms = Median(runs.Select(r => r.P99Ms)),
                P99SpreadPercent = Spread(runs.Select(r => r.P99Ms)),
                CpuMicrosecondsPerRequest = Median(runs.Select(r => r.CpuMicrosecondsPerRequest)),
                UserCpuMicrosecondsPerRequest = Median(runs.Select(r => r.UserCpuMicrosecondsPerRequest)),
                BytesPerRequest = Median(runs.Select(r => (double)r.BytesPerRequest)),
                MaxMinShare = fast.Length < 2 || fast.Min() == 0 ? null : Math.Round(fast.Max() / (double)fast.Min(), 3),
                SlowSharePercent = Math.Round(100.0 * slow / total, 2),
                ExtraAttemptsPercent = requests == 0 ? 0 : Math.Round(100.0 * (total - requests) / requests, 2),
                Errors = runs.Sum(r => r.Errors),
            });
        }

        var bySetup = scenario.Summary.ToDictionary(s => s.Setup);
        foreach (var summary in scenario.Summary)
        {
            summary.ThroughputVsMesd = Ratio(summary.RequestsPerSecond, bySetup.GetValueOrDefault(Peers.Mesd)?.RequestsPerSecond);
            summary.P99VsHaproxyLeastconn = Ratio(summary.P99Ms, bySetup.GetValueOrDefault(Peers.HaproxyLeastconn)?.P99Ms);
            summary.P99VsYarpP2c = Ratio(summary.P99Ms, bySetup.GetValueOrDefault(Peers.YarpP2c)?.P99Ms);
            summary.CpuVsPlain = Ratio(summary.CpuMicrosecondsPerRequest, bySetup.GetValueOrDefault(Peers.Plain)?.CpuMicrosecondsPerRequest);
            summary.BytesVsPlain = Ratio(summary.BytesPerRequest, bySetup.GetValueOrDefault(Peers.Plain)?.BytesPerRequest);
            summary.CpuVsPlainRotated = Ratio(summary.CpuMicrosecondsPerRequest, bySetup.GetValueOrDefault(Peers.PlainRotated)?.CpuMicrosecondsPerRequest);
            summary.CpuVsFactory = Ratio(summary.CpuMicrosecondsPerRequest, bySetup.GetValueOrDefault(Peers.Factory)?.CpuMicrosecondsPerRequest);
            if (summary.Setup.StartsWith("lodestar", StringComparison.Ordinal))
            {
                summary.ThroughputVsMesdPaired = PairedRatio(scenario, summary.Setup, Peers.Mesd, r => r.RequestsPerSecond);
                summary.CpuVsPlainPaired = PairedRatio(scenario, summary.Setup, Peers.Plain, r => r.CpuMicrosecondsPerRequest);
                summary.CpuVsPlainRotatedPaired = PairedRatio(scenario, summary.Setup, Peers.PlainRotated, r => r.CpuMicrosecondsPerRequest);
                // Over the factory client with the same logging handlers: what Lodestar's handler adds to the client it is in.
                var factory = summary.Setup.EndsWith(Peers.NoLoggers, StringComparison.Ordinal) ? Peers.FactoryNoLoggers : Peers.Factory;
                summary.CpuVsFactoryPaired = PairedRatio(scenario, summary.Setup, factory, r => r.CpuMicrosecondsPerRequest);
                summary.UserCpuVsPlainPaired = PairedRatio(scenario, summary.Setup, Peers.Plain, r => r.UserCpuMicrosecondsPerRequest);
                summary.UserCpuVsFactoryPaired = PairedRatio(scenario, summary.Setup, factory, r => r.UserCpuMicrosecondsPerRequest);
                if (summary.Setup.IndexOf(Peers.Hedged, StringComparison.Ordinal) is var at and > 0)
                {
                    var unhedged = summary.Setup[..at];
                    summary.ThroughputVsUnhedged = PairedRatio(scenario, summary.Setup, unhedged, r => r.RequestsPerSecond);
                    summary.CpuVsUnhedged = PairedRatio(scenario, summary.Setup, unhedged, r => r.CpuMicrosecondsPerRequest);
                    summary.BytesVsUnhedged = PairedRatio(scenario, summary.Setup, unhedged, r => r.BytesPerRequest);
                }
            }

            if (summary.Setup.StartsWith("lodestar", StringComparison.Ordinal))
            {
                foreach (var (peer, ratio) in new[] { (Peers.HaproxyLeastconn, summary.P99VsHaproxyLeastconn), (Peers.YarpP2c, summary.P99VsYarpP2c) })
                {
                    if (ratio is { } value)
                    {
                        scenario.P99Ratios[$"{summary.Setup} / {peer}"] = value;
                    }
                }
            }
        }
    }

    static double? Ratio(double value, double? reference) => reference is > 0 ? Math.Round(value / reference.Value, 3) : null;

    // The median over the passes of the setup's figure over the reference's in the same pass.
    static double? PairedRatio(ScenarioResult scenario, string setup, string reference, Func<RunResult, double> figure)
    {
        var ratios = scenario.Results.Where(r => r.Setup == setup)
            .Select(r => (Run: r, Reference: scenario.Results.FirstOrDefault(o => o.Setup == reference && o.PassNumber == r.PassNumber)))
            .Where(pair => pair.Reference is not null && figure(pair.Reference) > 0)
            .Select(pair => figure(pair.Run) / figure(pair.Reference!))
            .ToList();
        return ratios.Count == 0 ? null : Math.Round(Median(ratios), 3);
    }
}

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length == 0 ? 0 : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}

static double Spread(IEnumerable<double> values)
{
    // (max - min) / median, in percent: how far apart the passes of one setup were.
    var list = values.ToList();
    var median = Median(list);
    return list.Count < 2 || median <= 0 ? 0 : Math.Round(100.0 * (list.Max() - list.Min()) / median, 1);
}

static void PrintSummary(Report report)
{
    Console.WriteLine();
    Console.WriteLine($"Summary: median of {report.Passes} passes per setup ({report.SecondsPerSetup / report.Passes:F2} s each), spread = (max-min)/median over the passes.");
    Console.WriteLine("x M.E.SD = throughput over bare M.E.SD round robin's; p99/leastconn and p99/P2C = p99 over HAProxy leastconn's and YARP PowerOfTwoChoices';");
    Console.WriteLine("max/min = share of the busiest over the least busy backend that is not slow (all passes); slow % = share sent to the slow one; extra % = hedges and retries;");
    Console.WriteLine("cpu us and B/req = the setup's client process per request (for the proxies: their client only); cpu/plain and B/plain = over the plain HttpClient's.");
    foreach (var scenario in report.Scenarios)
    {
        Console.WriteLine();
        Console.WriteLine($"({scenario.Id}) {scenario.Description}; load average at start {scenario.LoadAverageAtStart}");
        Console.WriteLine($"{"setup",-42} {"req/s",8} {"spread",6} {"x M.E.SD",8} {"p99 ms",7} {"spread",6} {"p99/leastconn",13} {"p99/P2C",7} {"max/min",7} {"slow %",6} {"extra %",7} {"cpu us",6} {"cpu/plain",9} {"B/req",6} {"B/plain",7}");
        foreach (var s in scenario.Summary)
        {
            Console.WriteLine($"{s.Setup,-42} {s.RequestsPerSecond,8:F0} {s.RequestsPerSecondSpreadPercent,5:F1}% {Format(s.ThroughputVsMesd),8} {s.P99Ms,7:F2} {s.P99SpreadPercent,5:F1}% {Format(s.P99VsHaproxyLeastconn),13} {Format(s.P99VsYarpP2c),7} {Format(s.MaxMinShare),7} {s.SlowSharePercent,6:F2} {s.ExtraAttemptsPercent,7:F2} {s.CpuMicrosecondsPerRequest,6:F1} {Format(s.CpuVsPlain),9} {s.BytesPerRequest,6:F0} {Format(s.BytesVsPlain),7}");
        }

        var paired = scenario.Summary.Where(summary => summary.ThroughputVsMesdPaired is not null || summary.ThroughputVsUnhedged is not null || summary.CpuVsPlainPaired is not null).ToList();
        if (paired.Count > 0)
        {
            Console.WriteLine("paired (median over the passes of the ratio within each pass); cpu x plain, x rotated, x factory = CPU over the plain HttpClient's,");
            Console.WriteLine("the rotating plain HttpClient's and the factory client's with the same logging handlers; user x plain, x factory = the same for");
            Console.WriteLine("CPU in user mode alone (the process's own code, without the kernel's work for its sockets and threads):");
            Console.WriteLine($"{"setup",-55} {"x M.E.SD",8} {"x unhedged: req/s",17} {"cpu",6} {"B",6} {"cpu x plain",11} {"x rotated",9} {"x factory",9} {"user x plain",12} {"x factory",9}");
            foreach (var p in paired)
            {
                Console.WriteLine($"{p.Setup,-55} {Format(p.ThroughputVsMesdPaired),8} {Format(p.ThroughputVsUnhedged),17} {Format(p.CpuVsUnhedged),6} {Format(p.BytesVsUnhedged),6} {Format(p.CpuVsPlainPaired),11} {Format(p.CpuVsPlainRotatedPaired),9} {Format(p.CpuVsFactoryPaired),9} {Format(p.UserCpuVsPlainPaired),12} {Format(p.UserCpuVsFactoryPaired),9}");
            }
        }
    }

    // The goals in one place: over the Lodestar setups of every scenario, the worst of each ratio the goals name.
    Console.WriteLine();
    Console.WriteLine("Goals, per scenario, over the Lodestar setups without hedging (worst / best): throughput x M.E.SD (>= 1); cpu/plain (<= 1.05) and B/plain");
    Console.WriteLine("where the backends answer at once (with a delay, CPU per request is mostly the idle thread pool's, spread over fewer requests);");
    Console.WriteLine("peak-ewma p99 over HAProxy leastconn and YARP P2C (<= 0.5) where one backend is slow; hedges % when nothing is slow; max/min share (<= 1.1);");
    Console.WriteLine("cpu/rotated and cpu/factory = CPU over the plain HttpClient and over the IHttpClientFactory client with nothing added, each");
    Console.WriteLine("rotating over every backend itself (the same connections, no balancing library).");
    Console.WriteLine($"{"scenario",-14} {"x M.E.SD",15} {"cpu/plain",15} {"B/plain",15} {"p99/leastconn",13} {"p99/P2C",7} {"hedges %",15} {"max/min",15} {"cpu/rotated",15} {"cpu/factory",15}");
    foreach (var scenario in report.Scenarios)
    {
        // A client whose factory loggers were removed is a user's choice, shown beside the goals rather than in them.
        var lodestar = scenario.Summary.Where(s => s.Setup.StartsWith("lodestar", StringComparison.Ordinal) && !s.Setup.Contains("hedging", StringComparison.Ordinal)
                                                   && !s.Setup.EndsWith(Peers.NoLoggers, StringComparison.Ordinal)).ToList();
        var hedged = scenario.Summary.Where(s => s.Setup.Contains("hedging", StringComparison.Ordinal)).ToList();
        var peakEwma = scenario.Summary.FirstOrDefault(s => s.Setup == "lodestar " + LoadBalancingPolicies.PeakEwma);
        var slow = scenario.SlowFactor > 1;
        var immediate = scenario.DelayMs == 0;
        Console.WriteLine($"{scenario.Id,-14} {Range(lodestar.Select(s => s.ThroughputVsMesd), worstIsMin: true),15} {AtOnce(s => s.CpuVsPlain),15} {AtOnce(s => s.BytesVsPlain),15} {(slow ? Format(peakEwma?.P99VsHaproxyLeastconn) : "-"),13} {(slow ? Format(peakEwma?.P99VsYarpP2c) : "-"),7} {(slow || hedged.Count == 0 ? "-" : Range(hedged.Select(s => (double?)s.ExtraAttemptsPercent), worstIsMin: false)),15} {Range(lodestar.Concat(hedged).Select(s => s.MaxMinShare), worstIsMin: false),15} {AtOnce(s => s.CpuVsPlainRotated),15} {AtOnce(s => s.CpuVsFactory),15}");

        // A cost ratio (higher is worse), shown only where the backends answer at once.
        string AtOnce(Func<SetupSummary, double?> ratio) => immediate ? Range(lodestar.Select(ratio), worstIsMin: false) : "-";
    }

    static string Format(double? ratio) => ratio is { } value ? value.ToString("F3", CultureInfo.InvariantCulture) : "-";

    static string Range(IEnumerable<double?> values, bool worstIsMin)
    {
        var known = values.OfType<double>().ToArray();
        if (known.Length == 0)
        {
            return "-";
        }

        var (worst, best) = worstIsMin ? (known.Min(), known.Max()) : (known.Max(), known.Min());
        return string.Create(CultureInfo.InvariantCulture, $"{worst:F3} / {best:F3}");
    }
}

static void Print(Report report)
{
    Console.WriteLine();
    Console.WriteLine(report.Machine);
    foreach (var scenario in report.Scenarios)
    {
        Console.WriteLine();
        Console.WriteLine($"({scenario.Id}) {scenario.Description}; load average at start {scenario.LoadAverageAtStart}");
        Console.WriteLine($"{"pass",-9} {"setup",-42} {"req/s",8} {"p50 ms",7} {"p99 ms",7} {"p99.9",7} {"extra%",6} {"cpu us",7} {"B/req",7} {"max/min",7}  share per backend  (load)");
        foreach (var run in scenario.Results)
        {
            var total = Math.Max(1, run.Shares.Values.Sum());
            var shares = string.Join(" ", run.Shares.Select(s => $"{s.Key}:{100.0 * s.Value / total:F1}%"));
            var fast = run.Shares.Where(s => !s.Key.EndsWith("(slow)", StringComparison.Ordinal)).Select(s => s.Value).ToArray();
            var maxMin = fast.Length == 0 || fast.Min() == 0 ? double.NaN : fast.Max() / (double)fast.Min();
            Console.WriteLine($"{run.PassNumber + " " + run.Pass,-9} {run.Setup,-42} {run.RequestsPerSecond,8:F0} {run.P50Ms,7:F2} {run.P99Ms,7:F2} {run.P999Ms,7:F2} {run.ExtraAttemptsPercent,6:F2} {run.CpuMicrosecondsPerRequest,7:F1} {run.BytesPerRequest,7:F0} {maxMin,7:F3}  {shares}  ({run.LoadAverage})");
        }

    }
}

internal sealed class Report
{
    public string Command { get; set; } = string.Empty;

    public string Machine { get; set; } = string.Empty;

    /// <summary>Gets or sets the measured seconds per setup, over all passes.</summary>
    public double SecondsPerSetup { get; set; }

    public int Passes { get; set; }

    public List<ScenarioResult> Scenarios { get; } = [];
}

/// <summary>One scenario: backends, protocol, callers, delays, the Lodestar policies to run, and whether the proxies and hedged setups run too.</summary>
internal sealed record Scenario(string Id, string Description, int Backends, HttpProtocols Protocols, int Callers, double DelayMs, double SlowFactor, string[] Policies, bool WithPeers = true);

internal sealed class ScenarioResult
{
    public string Id { get; set; } = string.Empty;

    public string Description { get; set; } = string.Empty;

    /// <summary>Gets or sets the backends' answer delay in milliseconds (0: at once).</summary>
    public double DelayMs { get; set; }

    /// <summary>Gets or sets how many times slower the last backend answers (1: none is slow).</summary>
    public double SlowFactor { get; set; }

    public string LoadAverageAtStart { get; set; } = string.Empty;

    /// <summary>Gets each Lodestar setup's p99 (median of the passes) over a peer's.</summary>
    public Dictionary<string, double> P99Ratios { get; } = [];

    /// <summary>Gets each setup's medians over the passes and its ratios to the peers.</summary>
    public List<SetupSummary> Summary { get; } = [];

    public List<RunResult> Results { get; } = [];
}

internal sealed class RunResult
{
    public string Setup { get; set; } = string.Empty;

    public string Pass { get; set; } = string.Empty;

    public int PassNumber { get; set; }

    public string LoadAverage { get; set; } = string.Empty;

    public double ExtraAttemptsPercent { get; set; }

    public double CpuMicrosecondsPerRequest { get; set; }

    /// <summary>Gets or sets the client process's CPU per request in user mode alone (its own code, not the kernel's work for it).</summary>
    public double UserCpuMicrosecondsPerRequest { get; set; }

    public long BytesPerRequest { get; set; }

    /// <summary>Gets or sets the thread-pool work items completed in the client process per request.</summary>
    public double WorkItemsPerRequest { get; set; }

    /// <summary>Gets or sets the context switches of the client process's threads per request (0 where unknown).</summary>
    public double ContextSwitchesPerRequest { get; set; }

    /// <summary>Gets or sets the time the client process spent compiling methods during the run (tiering up included).</summary>
    public double JitMilliseconds { get; set; }

    /// <summary>Gets or sets the number of methods the client process compiled during the run.</summary>
    public long JitMethods { get; set; }

    public int Requests { get; set; }

    public int Errors { get; set; }

    public double Seconds { get; set; }

    public double RequestsPerSecond { get; set; }

    public double P50Ms { get; set; }

    public double P90Ms { get; set; }

    public double P99Ms { get; set; }

    public double P999Ms { get; set; }

    public double MaxMs { get; set; }

    /// <summary>Gets the requests each backend received during the measured run.</summary>
    public Dictionary<string, int> Shares { get; } = [];

    /// <summary>Gets or sets the latency at each of <see cref="Svg.Quantiles"/>, for the plot.</summary>
    public double[] Curve { get; set; } = [];
}

internal sealed class SetupSummary
{
    public string Setup { get; set; } = string.Empty;

    public double RequestsPerSecond { get; set; }

    public double RequestsPerSecondSpreadPercent { get; set; }

    public double? ThroughputVsMesd { get; set; }

    /// <summary>Gets or sets the median over the passes of the throughput over bare M.E.SD round robin's in the same pass.</summary>
    public double? ThroughputVsMesdPaired { get; set; }

    /// <summary>Gets or sets, for a hedged setup, the median over the passes of its throughput over the same policy's without hedging in the same pass.</summary>
    public double? ThroughputVsUnhedged { get; set; }

    /// <summary>Gets or sets, for a hedged setup, the median over the passes of its CPU per request over the same policy's without hedging.</summary>
    public double? CpuVsUnhedged { get; set; }

    /// <summary>Gets or sets, for a hedged setup, the median over the passes of its bytes per request over the same policy's without hedging.</summary>
    public double? BytesVsUnhedged { get; set; }

    public double P99Ms { get; set; }

    public double P99SpreadPercent { get; set; }

    public double? P99VsHaproxyLeastconn { get; set; }

    public double? P99VsYarpP2c { get; set; }

    public double CpuMicrosecondsPerRequest { get; set; }

    /// <summary>Gets or sets the median CPU per request in user mode alone.</summary>
    public double UserCpuMicrosecondsPerRequest { get; set; }

    public double BytesPerRequest { get; set; }

    /// <summary>Gets or sets the CPU per request over the plain HttpClient's, in the same scenario.</summary>
    public double? CpuVsPlain { get; set; }

    /// <summary>Gets or sets the bytes allocated per request over the plain HttpClient's, in the same scenario.</summary>
    public double? BytesVsPlain { get; set; }

    /// <summary>Gets or sets the CPU per request over the plain HttpClient's that rotates over every backend itself.</summary>
    public double? CpuVsPlainRotated { get; set; }

    /// <summary>Gets or sets the CPU per request over the factory client's with nothing added, which rotates over every backend itself.</summary>
    public double? CpuVsFactory { get; set; }

    /// <summary>Gets or sets the median over the passes of the setup's CPU per request over the plain client's in the same pass.</summary>
    public double? CpuVsPlainPaired { get; set; }

    /// <summary>Gets or sets the median over the passes of the setup's CPU per request over the rotating plain client's in the same pass.</summary>
    public double? CpuVsPlainRotatedPaired { get; set; }

    /// <summary>
    /// Gets or sets the median over the passes of the setup's CPU per request over the factory client's with the same
    /// logging handlers in the same pass: what Lodestar's handler adds to the client it is in.
    /// </summary>
    public double? CpuVsFactoryPaired { get; set; }

    /// <summary>Gets or sets <see cref="CpuVsPlainPaired"/> for CPU in user mode alone.</summary>
    public double? UserCpuVsPlainPaired { get; set; }

    /// <summary>Gets or sets <see cref="CpuVsFactoryPaired"/> for CPU in user mode alone.</summary>
    public double? UserCpuVsFactoryPaired { get; set; }

    /// <summary>Gets or sets the busiest fast backend's requests over the least busy one's, over all passes.</summary>
    public double? MaxMinShare { get; set; }

    public double SlowSharePercent { get; set; }

    public double ExtraAttemptsPercent { get; set; }

    public int Errors { get; set; }
}

/// <summary>The setups the goals compare Lodestar with.</summary>
internal static class Peers
{
    public const string Plain = "plain HttpClient (1 address)";
    public const string PlainRotated = "plain HttpClient (caller rotates)";
    public const string Factory = "factory HttpClient (caller rotates)";

    /// <summary>The factory client with the factory's logging handlers removed (<c>RemoveAllLoggers()</c>).</summary>
    public const string FactoryNoLoggers = Factory + NoLoggers;

    /// <summary>The suffix of a setup whose factory client has the factory's logging handlers removed.</summary>
    public const string NoLoggers = " without factory loggers";
    public const string Mesd = "M.E.SD round robin";
    public const string HaproxyLeastconn = "haproxy leastconn";
    public const string YarpP2c = "yarp PowerOfTwoChoices";

    /// <summary>What a hedged Lodestar setup's name adds to the name of the same policy without hedging, before how it hedges.</summary>
    public const string Hedged = " + hedging";
}

/// <summary>The hash keys of the requests: a new one of 100,000 users on each, process-wide.</summary>
internal static class HashKeys
{
    private static long s_next;

    public static long Next() => Interlocked.Increment(ref s_next) % 100_000;
}
