using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Lodestar.LoadBalancing;
using Lodestar.Scenarios;
using Lodestar.Testing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

// Runs the same closed-loop traffic, side by side in one process run, through a plain HttpClient on one address, Lodestar
// policies with and without hedging, Microsoft.Extensions.ServiceDiscovery's round robin bare and with the standard
// resilience handler, YARP 2.3 (a reverse-proxy process of its own: PowerOfTwoChoices, RoundRobin) and HAProxy
// (roundrobin, leastconn), all in front of the same loopback Kestrel backends. Every scenario first warms every setup
// until its throughput is steady, then measures them in alternating passes (forward, reverse, forward, ...) and reports
// each setup's median and spread over the passes. Bounded in time and count; only the proxy processes started here are
// stopped.
//
//   dotnet run -c Release --project bench/Lodestar.Scenarios -- [--duration 3] [--passes 3] [--out docs/benchmarks-tail] [--only id,id]
//
// --duration is the measured seconds per setup, split evenly over the passes.
var seconds = 3.0;
var passes = 3;
var output = Path.Combine("docs", "benchmarks-tail");
string[]? only = null;
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
    }
}

var duration = TimeSpan.FromSeconds(Math.Clamp(seconds, 1, 60));
passes = Math.Clamp(passes, 1, 9);
var wallClock = Stopwatch.StartNew();
using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(40));
string[] allPolicies =
[
    LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.Random, LoadBalancingPolicies.LeastRequest, LoadBalancingPolicies.WeightedRoundRobin,
    LoadBalancingPolicies.PeakEwma, LoadBalancingPolicies.RingHash, LoadBalancingPolicies.Maglev,
];
string[] tailPolicies = [LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.LeastRequest, LoadBalancingPolicies.PeakEwma];

var report = new Report
{
    Command = "dotnet run -c Release --project bench/Lodestar.Scenarios -- " + string.Join(' ', args),
    Machine = $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}",
    SecondsPerSetup = duration.TotalSeconds,
    Passes = passes,
};

var scenarios = new List<Scenario>
{
    new("throughput", "5 equal backends answering at once, HTTP/1.1, 32 callers: throughput, CPU and bytes per request", 5, HttpProtocols.Http1, 32, 0, 1, allPolicies),
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

foreach (var scenario in scenarios.Where(s => only is null || only.Contains(s.Id)))
{
    report.Scenarios.Add(await RunScenarioAsync(scenario, duration / passes, passes, 2_000_000, stop.Token));
}

Summarise(report);
Print(report);
PrintSummary(report);
Console.WriteLine($"Total run time {wallClock.Elapsed.TotalMinutes:F1} min");
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output + ".json"))!);
await File.WriteAllTextAsync(output + ".json", JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase }));
await File.WriteAllTextAsync(output + ".svg", Svg.Render(report));
Console.WriteLine($"Wrote {output}.json and {output}.svg");
return 0;

async Task<ScenarioResult> RunScenarioAsync(Scenario scenario, TimeSpan runFor, int passCount, int maxRequests, CancellationToken cancellationToken)
{
    Console.WriteLine($"Scenario ({scenario.Id}): {scenario.Description}; load average {LoadAverage()}");
    var backends = new TestBackend[scenario.Backends];
    for (var i = 0; i < backends.Length; i++)
    {
        backends[i] = await TestBackend.StartAsync("b" + i, scenario.Protocols);
        backends[i].Delay = TimeSpan.FromMilliseconds(scenario.DelayMs * (i == backends.Length - 1 ? scenario.SlowFactor : 1));
    }

    var http2 = scenario.Protocols == HttpProtocols.Http2;
    var result = new ScenarioResult { Id = scenario.Id, Description = scenario.Description, LoadAverageAtStart = LoadAverage() };
    var proxies = new List<IAsyncDisposable>();
    try
    {
        var haproxy = await HaProxy.StartAsync(backends.Select(b => b.Port).ToArray(), cancellationToken);
        proxies.Add(haproxy);
        var yarpP2c = await YarpProcess.StartAsync("PowerOfTwoChoices", backends.Select(b => b.Url).ToArray(), http2, cancellationToken);
        proxies.Add(yarpP2c);
        var yarpRoundRobin = await YarpProcess.StartAsync("RoundRobin", backends.Select(b => b.Url).ToArray(), http2, cancellationToken);
        proxies.Add(yarpRoundRobin);
        var settings = backends.Select((b, i) => new KeyValuePair<string, string?>($"Lodestar:Services:svc:Endpoints:{i}", b.Url))
            .Concat(backends.Select((b, i) => new KeyValuePair<string, string?>($"Services:svc:http:{i}", b.Address)))
            .Append(new KeyValuePair<string, string?>("Lodestar:LoadBalancing:Defaults:HashKeyHeader", "X-User"));
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddServiceDiscovery();
        foreach (var policy in scenario.Policies)
        {
            services.AddHttpClient("lodestar-" + policy).AddLodestar(o => o.Policy = policy);
        }

        foreach (var policy in new[] { LoadBalancingPolicies.RoundRobin, LoadBalancingPolicies.PeakEwma })
        {
            // One option group a user turns on: hedge a request whose first attempt is slower than the service's p98.
            services.AddHttpClient("lodestar-hedged-" + policy).AddLodestar(o =>
            {
                o.Policy = policy;
                o.Hedging.Enabled = true;
                o.Hedging.DelayPercentile = 0.98;
            });
        }

        services.AddHttpClient("mesd").AddServiceDiscovery();
        services.AddHttpClient("mesd-resilience").AddStandardResilienceHandler();
        services.AddHttpClient("mesd-resilience").AddServiceDiscovery();
        await using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IHttpClientFactory>();
        var setups = new List<(string Name, HttpClient Client, string Uri)>
        {
            ("plain HttpClient (1 address)", Plain(), backends[0].Url + "/"),
        };

        foreach (var policy in scenario.Policies)
        {
            setups.Add(("lodestar " + policy, factory.CreateClient("lodestar-" + policy), "http://svc/"));
        }

        setups.Add(("lodestar round-robin + hedging p98", factory.CreateClient("lodestar-hedged-" + LoadBalancingPolicies.RoundRobin), "http://svc/"));
        setups.Add(("lodestar peak-ewma + hedging p98", factory.CreateClient("lodestar-hedged-" + LoadBalancingPolicies.PeakEwma), "http://svc/"));
        setups.Add(("M.E.SD round robin", factory.CreateClient("mesd"), "http://svc/"));
        setups.Add(("M.E.SD round robin + standard resilience", factory.CreateClient("mesd-resilience"), "http://svc/"));
        setups.Add(("yarp PowerOfTwoChoices", Plain(), $"http://127.0.0.1:{yarpP2c.Port}/"));
        setups.Add(("yarp RoundRobin", Plain(), $"http://127.0.0.1:{yarpRoundRobin.Port}/"));
        foreach (var balance in new[] { "roundrobin", "leastconn" })
        {
            setups.Add(("haproxy " + balance, Plain(), $"http://127.0.0.1:{haproxy.Ports[http2 ? balance + "-h2" : balance]}/"));
        }

        // Warm up before anything is measured: one round over every setup (connections, estimates, JIT at tier 0), then
        // every setup again in short windows until two windows in a row agree on throughput within 5 % (tiered JIT and
        // dynamic PGO recompile the hot methods in the background for a while; the first pass used to run 35-45 %
        // slower than a later pass of the same setup).
        foreach (var (_, client, uri) in setups)
        {
            await LoadAsync(client, uri, http2, scenario.Callers, TimeSpan.FromMilliseconds(500), 5_000, cancellationToken);
        }

        foreach (var (name, client, uri) in setups)
        {
            var windows = await WarmUntilSteadyAsync(client, uri, http2, scenario.Callers, cancellationToken);
            if (windows > 3)
            {
                Console.WriteLine($"  warm-up  {name,-42} steady after {windows} windows");
            }
        }

        // Then the passes, alternating in order and reverse order so that a drift in the machine's load does not favour
        // whoever runs first; each setup's figures are the median over the passes.
        for (var number = 1; number <= passCount; number++)
        {
            var pass = number % 2 == 1 ? "forward" : "reverse";
            var ordered = pass == "forward" ? setups : Enumerable.Reverse(setups).ToList();
            foreach (var (name, client, uri) in ordered)
            {
                var before = backends.Select(b => b.Requests).ToArray();
                var run = await LoadAsync(client, uri, http2, scenario.Callers, runFor, maxRequests, cancellationToken);
                run.Setup = name;
                run.Pass = pass;
                run.PassNumber = number;
                var attempts = 0L;
                for (var i = 0; i < backends.Length; i++)
                {
                    var count = backends[i].Requests - before[i];
                    attempts += count;
                    run.Shares[BackendName(scenario, backends, i)] = count;
                }

                run.ExtraAttemptsPercent = run.Requests == 0 ? 0 : 100.0 * (attempts - run.Requests) / run.Requests;
                result.Results.Add(run);
                Console.WriteLine($"  {number} {pass,-7} {name,-42} {run.RequestsPerSecond,8:F0} req/s  p50 {run.P50Ms,6:F2}  p99 {run.P99Ms,6:F2}  p99.9 {run.P999Ms,6:F2} ms  extra {run.ExtraAttemptsPercent,5:F2} %  errors {run.Errors}  load {run.LoadAverage}");
            }
        }

        foreach (var (name, client, _) in setups)
        {
            if (!name.StartsWith("lodestar", StringComparison.Ordinal) && !name.StartsWith("M.E.SD", StringComparison.Ordinal))
            {
                client.Dispose();
            }
        }
    }
    finally
    {
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

static string BackendName(Scenario scenario, TestBackend[] backends, int index)
    => backends[index].Name + (scenario.SlowFactor > 1 && index == backends.Length - 1 ? " (slow)" : string.Empty);

static async Task<int> WarmUntilSteadyAsync(HttpClient client, string uri, bool http2, int callers, CancellationToken cancellationToken)
{
    const int MaxWindows = 5;
    var previous = 0.0;
    for (var window = 1; window <= MaxWindows; window++)
    {
        var run = await LoadAsync(client, uri, http2, callers, TimeSpan.FromMilliseconds(400), 200_000, cancellationToken);
        if (window > 1 && previous > 0 && Math.Abs(run.RequestsPerSecond - previous) <= 0.05 * previous)
        {
            return window;
        }

        previous = run.RequestsPerSecond;
    }

    return MaxWindows;
}

static string LoadAverage()
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
    Console.WriteLine("max/min = share of the busiest over the least busy backend that is not slow (all passes); slow % = share sent to the slow one; extra % = hedges and retries.");
    foreach (var scenario in report.Scenarios)
    {
        Console.WriteLine();
        Console.WriteLine($"({scenario.Id}) {scenario.Description}; load average at start {scenario.LoadAverageAtStart}");
        Console.WriteLine($"{"setup",-42} {"req/s",8} {"spread",6} {"x M.E.SD",8} {"p99 ms",7} {"spread",6} {"p99/leastconn",13} {"p99/P2C",7} {"max/min",7} {"slow %",6} {"extra %",7} {"cpu us",6} {"B/req",6}");
        foreach (var s in scenario.Summary)
        {
            Console.WriteLine($"{s.Setup,-42} {s.RequestsPerSecond,8:F0} {s.RequestsPerSecondSpreadPercent,5:F1}% {Format(s.ThroughputVsMesd),8} {s.P99Ms,7:F2} {s.P99SpreadPercent,5:F1}% {Format(s.P99VsHaproxyLeastconn),13} {Format(s.P99VsYarpP2c),7} {Format(s.MaxMinShare),7} {s.SlowSharePercent,6:F2} {s.ExtraAttemptsPercent,7:F2} {s.CpuMicrosecondsPerRequest,6:F0} {s.BytesPerRequest,6:F0}");
        }
    }

    static string Format(double? ratio) => ratio is { } value ? value.ToString("F3", CultureInfo.InvariantCulture) : "-";
}

static HttpClient Plain() => new(new SocketsHttpHandler
{
    PooledConnectionLifetime = TimeSpan.FromMinutes(2),
    EnableMultipleHttp2Connections = true,
    ConnectTimeout = TimeSpan.FromSeconds(3),
});

static async Task<RunResult> LoadAsync(HttpClient client, string uri, bool http2, int concurrency, TimeSpan duration, int maxRequests, CancellationToken cancellationToken)
{
    var loadAverage = LoadAverage();
    var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
    var bytesBefore = GC.GetTotalAllocatedBytes(false);
    var started = Stopwatch.GetTimestamp();
    var deadline = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var issued = 0;
    var workers = new Task<(List<long> Latencies, int Errors)>[concurrency];
    for (var w = 0; w < concurrency; w++)
    {
        var worker = w;
        workers[w] = Task.Run(async () =>
        {
            var latencies = new List<long>(4096);
            var errors = 0;
            while (Stopwatch.GetTimestamp() < deadline && Interlocked.Increment(ref issued) <= maxRequests)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, uri);
                if (http2)
                {
                    request.Version = System.Net.HttpVersion.Version20;
                    request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
                }

                // Hash policies see a new one of 100,000 users on every request, process-wide, so a run's share per backend
                // is the table's over as many keys as there were requests (1,000 keys alone spread ±7 % per backend); the
                // other policies ignore the header.
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
    var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds;
    var bytes = GC.GetTotalAllocatedBytes(false) - bytesBefore;
    var all = results.SelectMany(r => r.Latencies).Select(t => t * 1000.0 / Stopwatch.Frequency).ToArray();
    Array.Sort(all);
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
        CpuMicrosecondsPerRequest = all.Length == 0 ? 0 : cpu * 1000 / all.Length,
        BytesPerRequest = all.Length == 0 ? 0 : bytes / all.Length,
        LoadAverage = loadAverage,
    };
}

static double Percentile(double[] sorted, double quantile)
    => sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(quantile * sorted.Length) - 1, 0, sorted.Length - 1)];

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
            Console.WriteLine($"{run.PassNumber + " " + run.Pass,-9} {run.Setup,-42} {run.RequestsPerSecond,8:F0} {run.P50Ms,7:F2} {run.P99Ms,7:F2} {run.P999Ms,7:F2} {run.ExtraAttemptsPercent,6:F2} {run.CpuMicrosecondsPerRequest,7:F0} {run.BytesPerRequest,7:F0} {maxMin,7:F3}  {shares}  ({run.LoadAverage})");
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

internal sealed record Scenario(string Id, string Description, int Backends, HttpProtocols Protocols, int Callers, double DelayMs, double SlowFactor, string[] Policies);

internal sealed class ScenarioResult
{
    public string Id { get; set; } = string.Empty;

    public string Description { get; set; } = string.Empty;

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

    public long BytesPerRequest { get; set; }

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

    public double P99Ms { get; set; }

    public double P99SpreadPercent { get; set; }

    public double? P99VsHaproxyLeastconn { get; set; }

    public double? P99VsYarpP2c { get; set; }

    public double CpuMicrosecondsPerRequest { get; set; }

    public double BytesPerRequest { get; set; }

    /// <summary>Gets or sets the busiest fast backend's requests over the least busy one's, over all passes.</summary>
    public double? MaxMinShare { get; set; }

    public double SlowSharePercent { get; set; }

    public double ExtraAttemptsPercent { get; set; }

    public int Errors { get; set; }
}

/// <summary>The setups the goals compare Lodestar with.</summary>
internal static class Peers
{
    public const string Mesd = "M.E.SD round robin";
    public const string HaproxyLeastconn = "haproxy leastconn";
    public const string YarpP2c = "yarp PowerOfTwoChoices";
}

/// <summary>The hash keys of the requests: a new one of 100,000 users on each, process-wide.</summary>
internal static class HashKeys
{
    private static long s_next;

    public static long Next() => Interlocked.Increment(ref s_next) % 100_000;
}
